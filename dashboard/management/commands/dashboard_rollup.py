"""`manage.py dashboard_rollup`: rebuild the dashboard's daily rollups.

The schedules keep recent days current; run this once after loading or importing
history (e.g. after `generate_data`), with `--days` or an explicit range.
"""

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Min
from django.utils import timezone

from complaints.models import Ticket
from dashboard import rollups


class Command(BaseCommand):
    help = "Rebuild the dashboard rollups for a range of days (default: every ticket's day)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="The last N days up to today.")
        parser.add_argument("--first", type=dt.date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--last", type=dt.date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument(
            "--chunk", type=int, default=31, help="Days per transaction (default 31)."
        )

    def handle(self, *args, days=None, first=None, last=None, chunk=31, **options):
        today = timezone.localdate()
        if days is not None:
            if days < 1:
                raise CommandError("--days must be at least 1")
            first, last = today - dt.timedelta(days=days - 1), today
        elif first is None or last is None:
            span = Ticket.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
            if span["first"] is None:
                self.stdout.write("No tickets: nothing to roll up.")
                return
            first = first or timezone.localtime(span["first"]).date()
            last = last or max(timezone.localtime(span["last"]).date(), today)
        if first > last:
            raise CommandError("--first must not be after --last")
        started = time.monotonic()
        rows = 0
        day = first
        while day <= last:
            upto = min(day + dt.timedelta(days=chunk - 1), last)
            rows += rollups.refresh(first=day, last=upto).tickets
            day = upto + dt.timedelta(days=1)
        self.stdout.write(
            f"Rolled up {first}..{last}: {rows} ticket rows in {time.monotonic() - started:.1f} s."
        )
