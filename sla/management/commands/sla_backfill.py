"""Give SLA clocks to tickets that have none (e.g. after `seed_demo`)."""

from django.core.management.base import BaseCommand

from sla.services import backfill_clocks


class Command(BaseCommand):
    help = "Create the four SLA clocks for tickets without them; safe to run repeatedly."

    def handle(self, *args, **options):
        count = backfill_clocks()
        self.stdout.write(f"SLA clocks created for {count} tickets.")
