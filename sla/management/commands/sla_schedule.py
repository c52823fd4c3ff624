"""Create or update the django-q2 schedule that runs the SLA sweep every minute."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

# name: (task, every so many minutes)
SCHEDULES = {
    "sla-sweep": ("sla.tasks.sweep", 1),
    "sla-risk-scan": ("sla.tasks.risk_scan", 5),
    # The management dashboard's rollups (dashboard/rollups.py).
    "dashboard-rollup": ("dashboard.tasks.refresh_recent", 10),
    "dashboard-rollup-year": ("dashboard.tasks.refresh_year", 24 * 60),
}


def ensure_schedules() -> list[tuple[Schedule, bool]]:
    return [
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
        for name, (func, minutes) in SCHEDULES.items()
    ]


class Command(BaseCommand):
    help = "Create (or repair) the SLA sweep and risk-scan schedules; safe to run repeatedly."

    def handle(self, *args, **options):
        for schedule, created in ensure_schedules():
            verb = "Created" if created else "Kept"
            self.stdout.write(
                f"{verb} schedule {schedule.name!r}: {schedule.func} every {schedule.minutes} min"
            )
