"""Give SLA clocks and risk signals to tickets loaded past the services (e.g. `seed_demo`)."""

from django.core.management.base import BaseCommand

from complaints.models import OPEN_STATUSES, Ticket
from sla import risks
from sla.models import RiskAlert, RiskSettings
from sla.services import backfill_clocks


class Command(BaseCommand):
    help = (
        "Create the four SLA clocks for tickets without them, and check open tickets that "
        "have no risk alert yet for the intake-time signals; safe to run repeatedly."
    )

    def handle(self, *args, **options):
        count = backfill_clocks()
        self.stdout.write(f"SLA clocks created for {count} tickets.")
        settings = RiskSettings.load()
        checked = 0
        unchecked = (
            Ticket.objects.filter(status__in=OPEN_STATUSES)
            .exclude(pk__in=RiskAlert.objects.values("ticket_id"))
            .select_related("customer")
            .order_by("pk")
        )
        for ticket in unchecked.iterator(chunk_size=500):
            risks.on_ticket_created(ticket, settings)  # VIP, media words, back within 24 h
            checked += 1
        risks.scan()  # the set-based signals (tasks, reassignments, compensation…)
        self.stdout.write(
            f"Risk signals checked for {checked} open tickets; {RiskAlert.objects.count()} alerts."
        )
