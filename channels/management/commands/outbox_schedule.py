"""Create or update the django-q2 schedule that retries due outbound messages every minute."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule


def ensure_schedule() -> tuple[Schedule, bool]:
    return Schedule.objects.update_or_create(
        name="outbox-retries",
        defaults={
            "func": "channels.outbox.deliver_due",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )


class Command(BaseCommand):
    help = "Create (or repair) the outbox retry schedule; safe to run repeatedly."

    def handle(self, *args, **options):
        schedule, created = ensure_schedule()
        verb = "Created" if created else "Kept"
        self.stdout.write(f"{verb} schedule {schedule.name!r}: {schedule.func} every minute")
