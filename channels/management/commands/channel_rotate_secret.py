import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from channels import services

from .channel_create import _fail


class Command(BaseCommand):
    help = (
        'Give a channel a new secret and print {"code", "key", "secret"} as JSON. '
        "The old secret stops working at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True)

    def handle(self, *args, code, **options):
        try:
            credentials = services.channel_rotate_secret(channel=code)
        except ValidationError as exc:
            raise _fail(exc) from exc
        self.stdout.write(json.dumps(credentials.as_dict()))
