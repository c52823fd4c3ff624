import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from channels import services
from channels.models import ChannelKind


def _fail(exc: ValidationError) -> CommandError:
    if hasattr(exc, "error_dict"):
        text = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    else:
        text = " ".join(exc.messages)
    return CommandError(text)


class Command(BaseCommand):
    help = (
        'Create an intake channel and print {"code", "key", "secret"} as JSON. '
        "The secret is shown only this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--code", required=True)
        parser.add_argument("--kind", required=True, choices=ChannelKind.values)
        parser.add_argument("--name", default="")

    def handle(self, *args, code, kind, name, **options):
        try:
            credentials = services.channel_create(code=code, kind=kind, name=name)
        except ValidationError as exc:
            raise _fail(exc) from exc
        self.stdout.write(json.dumps(credentials.as_dict()))
