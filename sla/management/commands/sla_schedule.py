"""Create or update the django-q2 schedule that runs the SLA sweep every minute."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

SWEEP_SCHEDULE = "sla-sweep"


def ensure_sweep_schedule() -> tuple[Schedule, bool]:
    return Schedule.objects.update_or_create(
        name=SWEEP_SCHEDULE,
        defaults={
            "func": "sla.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )


class Command(BaseCommand):
    help = "Create (or repair) the every-minute SLA sweep schedule; safe to run repeatedly."

    def handle(self, *args, **options):
        schedule, created = ensure_sweep_schedule()
        verb = "Created" if created else "Kept"
        self.stdout.write(f"{verb} schedule {schedule.name!r}: {schedule.func} every minute")
