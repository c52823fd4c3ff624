"""Train the category suggestion model on resolved tickets now and store it."""

from django.core.management.base import BaseCommand, CommandError

from triage import classifier, services


class Command(BaseCommand):
    help = "Train the category suggestion model on resolved tickets and store it in the database."

    def handle(self, *args, **options):
        try:
            result = services.train()
        except classifier.NotEnoughData as exc:
            raise CommandError(str(exc)) from exc
        accuracy = (
            f", held-out accuracy {result.holdout_accuracy:.3f}"
            if result.holdout_accuracy is not None
            else ""
        )
        self.stdout.write(
            f"Trained model #{result.model.pk} on {result.samples} resolved tickets, "
            f"{result.classes} categories{accuracy}."
        )
