"""Create or update the django-q2 schedule that retrains the category model nightly."""

import datetime as dt

from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

SCHEDULE_NAME = "triage-train"
TASK = "triage.tasks.train"


def ensure_schedule() -> tuple[Schedule, bool]:
    # The first run tonight at 02:30 local time; daily after that.
    now = timezone.localtime()
    first = now.replace(hour=2, minute=30, second=0, microsecond=0)
    if first <= now:
        first += dt.timedelta(days=1)
    existing = Schedule.objects.filter(name=SCHEDULE_NAME).first()
    defaults = {"func": TASK, "schedule_type": Schedule.DAILY, "repeats": -1}
    if existing is None:
        defaults["next_run"] = first
    return Schedule.objects.update_or_create(name=SCHEDULE_NAME, defaults=defaults)


class Command(BaseCommand):
    help = "Create (or repair) the nightly category-model training schedule; safe to repeat."

    def handle(self, *args, **options):
        schedule, created = ensure_schedule()
        verb = "Created" if created else "Kept"
        self.stdout.write(
            f"{verb} schedule {schedule.name!r}: {schedule.func} daily, next run "
            f"{timezone.localtime(schedule.next_run):%Y-%m-%d %H:%M}"
        )
