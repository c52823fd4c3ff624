"""Create or update the django-q2 schedules of outbound delivery: retries every minute,
survey reminders every hour."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

# name: (task, every so many minutes)
SCHEDULES = {
    "outbox-retries": ("channels.outbox.deliver_due", 1),
    "survey-reminders": ("complaints.services.survey_send_reminders", 60),
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
    help = (
        "Create (or repair) the outbox retry and survey-reminder schedules; safe to run repeatedly."
    )

    def handle(self, *args, **options):
        for schedule, created in ensure_schedules():
            verb = "Created" if created else "Kept"
            self.stdout.write(
                f"{verb} schedule {schedule.name!r}: {schedule.func} every {schedule.minutes} min"
            )
