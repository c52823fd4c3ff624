"""Reads for channels: the channel behind a signed request, the delivery state of a
ticket's outbound messages."""

from django.conf import settings

from complaints.refcache import ReferenceCache

from .models import Channel, MessageKind, MessageState, OutboundMessage


def _channels_by_key() -> dict[str, Channel]:
    return {channel.key: channel for channel in Channel.objects.all()}


# Every signed request looks its channel up by key. Saving a channel (deactivation, a
# rotated secret) reloads every process after commit through the shared cache (Redis
# in production); without a shared cache other processes notice within max_age.
channels_cache = ReferenceCache("channels", _channels_by_key, max_age=10)


def channel_for_key(key: str) -> Channel | None:
    """The channel with this API key (read-only; no query while the cache is fresh)."""
    return channels_cache.get().get(key)


def delivery_context(user, ticket, events) -> dict:
    """Each event's outbound messages (`event.outbound`) and the first-response warning.

    One query, whatever the number of events.
    """
    from . import outbox

    messages = list(OutboundMessage.objects.filter(ticket=ticket).order_by("created_at", "id"))
    by_event: dict[int, list] = {}
    for message in messages:
        message.ticket = ticket
        by_event.setdefault(message.event_id, []).append(message)
    for event in events:
        event.outbound = by_event.get(event.pk, [])
    undelivered_first_response = ticket.first_response_sent_at is None and any(
        m.kind == MessageKind.FIRST_RESPONSE
        and (m.state == MessageState.DEAD or (m.state == MessageState.FAILED and m.is_final))
        for m in messages
    )
    can_retry = bool(messages) and outbox.retry_refusal(user, messages[0]) is None
    return {
        "undelivered_first_response": undelivered_first_response,
        "can_retry": can_retry,
        "poll_seconds": settings.CLOSELOOP_DELIVERY_POLL_SECONDS,
    }
