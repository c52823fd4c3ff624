"""Create or update the django-q2 schedules of the channels: outbound delivery retries
every minute, survey reminders every hour, and every 5 minutes a look for store-register
imports that lost their worker."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

# name: (task, every so many minutes)
SCHEDULES = {
    "outbox-retries": ("channels.outbox.deliver_due", 1),
    "survey-reminders": ("complaints.services.survey_send_reminders", 60),
    "register-imports-resume": ("channels.registers.resume_stalled", 5),
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
        "Create (or repair) the outbox retry, survey-reminder and register-import resume "
        "schedules; safe to run repeatedly."
    )

    def handle(self, *args, **options):
        for schedule, created in ensure_schedules():
            verb = "Created" if created else "Kept"
            self.stdout.write(
                f"{verb} schedule {schedule.name!r}: {schedule.func} every {schedule.minutes} min"
            )
