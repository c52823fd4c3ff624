"""Writes for channels: credentials, and intake of contacts from every channel.

Every door (the signed API, the public web form, the store-register import)
calls `intake_submit`, so identity resolution, idempotency and the repeat rules
hold the same way on each of them.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Channel, ChannelKind, new_channel_secret

# --- credentials -----------------------------------------------------------------


@dataclass(frozen=True)
class ChannelCredentials:
    """What a channel's operator is told once: the code, the key and the secret."""

    code: str
    key: str
    secret: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "key": self.key, "secret": self.secret}


def channel_create(*, code: str, kind: str, name: str = "") -> ChannelCredentials:
    code, name = (code or "").strip(), (name or "").strip()
    errors = {}
    channel = Channel(code=code, kind=kind, name=name or code)
    try:
        channel.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if kind not in ChannelKind.values:
        errors["kind"] = [
            _("Unknown channel kind; use one of: %(kinds)s.")
            % {"kinds": ", ".join(ChannelKind.values)}
        ]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError as exc:
        # A concurrent creation with the same code won the race.
        raise ValidationError({"code": [_("A channel with this code already exists.")]}) from exc
    return ChannelCredentials(code=channel.code, key=channel.key, secret=channel.secret)


@transaction.atomic
def channel_rotate_secret(*, channel: Channel | str) -> ChannelCredentials:
    """Give the channel a new secret; requests signed with the old one fail from now on."""
    lookup = {"pk": channel.pk} if isinstance(channel, Channel) else {"code": channel}
    try:
        locked = Channel.objects.select_for_update().get(**lookup)
    except Channel.DoesNotExist as exc:
        raise ValidationError({"code": [_("No such channel.")]}) from exc
    locked.secret = new_channel_secret()
    locked.secret_rotated_at = timezone.now()
    locked.save(update_fields=["secret", "secret_rotated_at"])
    return ChannelCredentials(code=locked.code, key=locked.key, secret=locked.secret)
