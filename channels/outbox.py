"""Outbound delivery: every message the portal owes a customer, and its way to them.

The services of the outbox (rules live here, shared by pages, API, admin and worker):

- `message_queue` writes an `OutboundMessage` in the caller's transaction (a reply,
  a first response, a resolution…) and asks django-q2 to deliver it *after commit*:
  a rolled-back action leaves no message and sends nothing; no request ever waits for
  a channel.
- `deliver` (the q2 task) claims the message (an UPDATE that only one worker can win),
  sends it through the channel's adapter outside any transaction, and records the
  outcome. Failures are retried with exponential backoff and jitter by `deliver_due`
  (a q2 schedule every minute) until `CLOSELOOP_OUTBOX_MAX_ATTEMPTS`, then the message
  is dead-lettered: an event on the ticket timeline, a note to the assignee, and the
  admin's "retry now".
- `receipt_record` takes a channel's signed delivery receipt.
- A first response counts for the SLA only once it has been sent (`_first_response_sent`).
"""

import datetime as dt
import json
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from complaints.models import (
    CallbackState,
    CustomerIdentity,
    EventKind,
    FollowUpCall,
    IdentityKind,
    Ticket,
)

from .models import PENDING_STATES, Adapter, ChannelKind, MessageKind, MessageState, OutboundMessage

log = logging.getLogger(__name__)

# The identity a channel kind writes to, best first.
CHANNEL_IDENTITIES = {
    ChannelKind.WECHAT: (IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID),
    ChannelKind.MINIPROGRAM: (IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID),
    ChannelKind.APP: (IdentityKind.APP_USER_ID,),
    ChannelKind.WEIBO: (IdentityKind.WEIBO_UID,),
    ChannelKind.DOUYIN: (IdentityKind.DOUYIN_UID,),
}


class DeliveryError(Exception):
    """An attempt that did not reach the channel; `permanent` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Route:
    adapter: str
    recipient_kind: str = ""
    recipient: str = ""
    error: str = ""


# --- routing -----------------------------------------------------------------------


def _identities(ticket: Ticket) -> dict[str, str]:
    found = {}
    for kind, key in CustomerIdentity.objects.filter(customer_id=ticket.customer_id).values_list(
        "kind", "external_key"
    ):
        found.setdefault(kind, key)
    return found


def route_for(ticket: Ticket) -> Route:
    """The adapter and the customer's address on it, falling back to SMS, then e-mail.

    The channel the customer used comes first; a channel without a configured
    callback URL, or a customer it has no identity for, falls back to the phone (SMS)
    and then e-mail, so a message reaches the customer whenever any address is known.
    """
    channel = ticket.channel
    customer = ticket.customer
    phone, email = customer.phone, customer.email
    adapter = channel.delivery_adapter
    if adapter == Adapter.WEBHOOK and channel.callback_url:
        identities = _identities(ticket)
        for kind in CHANNEL_IDENTITIES.get(channel.kind, ()):
            if identities.get(kind):
                return Route(Adapter.WEBHOOK, kind, identities[kind])
        if phone:
            return Route(Adapter.WEBHOOK, IdentityKind.PHONE, phone)
    elif adapter == Adapter.EMAIL and email:
        return Route(Adapter.EMAIL, IdentityKind.EMAIL, email)
    elif adapter == Adapter.CALLBACK and phone:
        return Route(Adapter.CALLBACK, IdentityKind.PHONE, phone)
    if phone:
        return Route(Adapter.SMS, IdentityKind.PHONE, phone)
    if email:
        return Route(Adapter.EMAIL, IdentityKind.EMAIL, email)
    return Route(
        adapter,
        error=_(
            "The customer has no address this channel can reach (no identity, phone or e-mail)."
        ),
    )


# --- writing messages ------------------------------------------------------------------


def message_queue(*, ticket: Ticket, kind: str, body: str, event=None) -> OutboundMessage:
    """Write one outbound message in the current transaction; delivery starts after commit."""
    if kind not in MessageKind.values:
        raise ValidationError(_("Unknown message kind."))
    now = timezone.now()
    route = route_for(ticket)
    message = OutboundMessage(
        message_id=uuid.uuid4(),
        ticket=ticket,
        event=event,
        channel_id=ticket.channel_id,
        adapter=route.adapter,
        recipient_kind=route.recipient_kind,
        recipient=route.recipient,
        kind=kind,
        body=body,
        created_at=now,
        next_attempt_at=now,
    )
    if route.error:
        message.state = MessageState.DEAD
        message.last_error = route.error
        message.failed_at = now
        message.next_attempt_at = None
        message.save()
        _dead_lettered(message)
        return message
    _start_delivery(message)
    return message


def _start_delivery(message: OutboundMessage) -> None:
    """Save a queued message and set its delivery going: a worker after commit, or, on a
    phone channel, a call-back for the agent (the message waits for the call's record)."""
    if message.adapter == Adapter.CALLBACK:
        message.next_attempt_at = None
        message.save()
        ticket = message.ticket
        FollowUpCall.objects.create(
            ticket=ticket, day=0, due_at=timezone.now(), assignee=ticket.assignee, message=message
        )
        return
    message.save()
    transaction.on_commit(lambda: enqueue_delivery(message.pk))


def _script(ticket: Ticket, kind: str) -> str | None:
    from kb.selectors import sop_template_for

    template = sop_template_for(ticket.category)
    script = template.scripts.filter(kind=kind).first() if template else None
    return script.body if script else None


def _with_survey_link(script: str, ticket: Ticket, survey_link: str) -> str:
    """The script filled in; the link appended when the script has no {survey_url}."""
    from kb.services import render_script

    text = render_script(script, ticket, survey_url=survey_link)
    if "{survey_url}" not in script:
        text += "\n" + _("Rate us: %(url)s") % {"url": survey_link}
    return text


def resolution_messages(*, ticket: Ticket, event, survey_link: str) -> None:
    """On resolution: the solution and the survey link, worded by the SOP's scripts.

    Without a script the built-in wording is used, in the portal's customer language.
    """
    from kb.models import ScriptKind
    from kb.services import render_script

    with translation.override(settings.LANGUAGE_CODE):
        solution = _script(ticket, ScriptKind.SOLUTION) or _(
            "Dear {customer_name}, your complaint {ticket_number} has been resolved."
        )
        follow_up = _script(ticket, ScriptKind.FOLLOW_UP) or _(
            "Dear {customer_name}, how did we do on complaint {ticket_number}? "
            "Please rate us here: {survey_url}"
        )
        solution_text = render_script(solution, ticket) + "\n" + ticket.solution
        survey_text = _with_survey_link(follow_up, ticket, survey_link)
    message_queue(ticket=ticket, kind=MessageKind.SOLUTION, body=solution_text, event=event)
    message_queue(ticket=ticket, kind=MessageKind.SURVEY, body=survey_text, event=event)


def survey_reminder_message(*, ticket: Ticket, event, survey_link: str) -> OutboundMessage:
    """The follow-up reminder: the survey link once more, worded by the follow-up script."""
    from kb.models import ScriptKind

    with translation.override(settings.LANGUAGE_CODE):
        script = _script(ticket, ScriptKind.FOLLOW_UP) or _(
            "Dear {customer_name}, a reminder: how did we do on complaint {ticket_number}? "
            "Your rating helps us improve: {survey_url}"
        )
        text = _with_survey_link(script, ticket, survey_link)
    return message_queue(ticket=ticket, kind=MessageKind.FOLLOW_UP, body=text, event=event)


def enqueue_delivery(pk: int) -> None:
    from django_q.tasks import async_task

    async_task("channels.outbox.deliver", pk, task_name=f"outbox-{pk}", group="outbox")


# --- delivering ----------------------------------------------------------------------


def _claim(pk: int, now: dt.datetime) -> OutboundMessage | None:
    """Take the message for one attempt; only one worker's UPDATE can match."""
    lease = now + dt.timedelta(seconds=settings.CLOSELOOP_OUTBOX_TIMEOUT_SECONDS * 3 + 30)
    claimed = OutboundMessage.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        pk=pk,
        state__in=PENDING_STATES,
        next_attempt_at__lte=now,
    ).update(claimed_until=lease)
    if not claimed:
        return None
    return OutboundMessage.objects.select_related("ticket__customer", "channel").get(pk=pk)


def backoff(attempts: int) -> dt.timedelta:
    """Exponential backoff with jitter: base·2^(n−1), capped, times a random 0.5–1.5."""
    base = settings.CLOSELOOP_OUTBOX_BACKOFF_SECONDS
    delay = min(base * 2 ** max(attempts - 1, 0), settings.CLOSELOOP_OUTBOX_BACKOFF_MAX_SECONDS)
    return dt.timedelta(seconds=delay * random.uniform(0.5, 1.5))  # noqa: S311 - not crypto


def deliver(pk: int) -> str | None:
    """One delivery attempt of one message (the q2 task); returns the new state."""
    message = _claim(pk, timezone.now())
    if message is None:
        return None
    try:
        ref = ADAPTERS[message.adapter](message)
    except DeliveryError as exc:
        return _attempt_failed(message, str(exc), permanent=exc.permanent)
    except Exception as exc:  # an adapter bug must not leave the message claimed forever
        log.exception("outbox adapter %s crashed on message %s", message.adapter, pk)
        return _attempt_failed(message, f"{type(exc).__name__}: {exc}", permanent=False)
    return _attempt_sent(message, ref or "")


def deliver_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """The retry sweep (q2 schedule, every minute): every owed message whose time came."""
    now = now or timezone.now()
    due = list(
        OutboundMessage.objects.filter(state__in=PENDING_STATES, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in due if deliver(pk) is not None)


@transaction.atomic
def _attempt_sent(message: OutboundMessage, ref: str) -> str:
    now = timezone.now()
    message = OutboundMessage.objects.select_for_update().get(pk=message.pk)
    message.attempts += 1
    message.state = MessageState.SENT
    message.sent_at = now
    message.provider_ref = ref[:200]
    message.last_error = ""
    message.next_attempt_at = None
    message.claimed_until = None
    message.save()
    if message.kind == MessageKind.FIRST_RESPONSE:
        _first_response_sent(message, now)
    return message.state


@transaction.atomic
def _attempt_failed(message: OutboundMessage, error: str, *, permanent: bool) -> str:
    now = timezone.now()
    message = OutboundMessage.objects.select_for_update().get(pk=message.pk)
    message.attempts += 1
    message.last_error = error[:2000]
    message.failed_at = now
    message.claimed_until = None
    if permanent or message.attempts >= settings.CLOSELOOP_OUTBOX_MAX_ATTEMPTS:
        message.state = MessageState.DEAD
        message.next_attempt_at = None
        message.save()
        _dead_lettered(message)
    else:
        message.state = MessageState.FAILED
        message.next_attempt_at = now + backoff(message.attempts)
        message.save()
    return message.state


def _first_response_sent(message: OutboundMessage, at: dt.datetime) -> None:
    """The first-response SLA clock is met when the customer was actually told."""
    from complaints import services as ticket_services
    from sla import services as sla_services

    ticket = ticket_services._lock(Ticket(pk=message.ticket_id))
    if ticket.first_response_sent_at is None:
        ticket.first_response_sent_at = at
        sla_services.ticket_sync_clocks(ticket)
        # A background fact, not an edit: the version stays, so the agent's open forms
        # (which carry it) are not refused as stale.
        ticket.save(
            update_fields=[
                "first_response_sent_at",
                "first_response_due_at",
                "resolve_due_at",
                "close_due_at",
                "due_at",
                "updated_at",
            ]
        )


def _dead_lettered(message: OutboundMessage) -> None:
    """Nothing more will be tried: say so on the ticket and to whoever works it."""
    from complaints import services as ticket_services

    ticket = message.ticket
    text = _("%(kind)s did not reach the customer: %(error)s") % {
        "kind": message.get_kind_display(),
        "error": message.last_error,
    }
    ticket_services._record(
        ticket,
        None,
        EventKind.DELIVERY_FAILED,
        text,
        after={"message": message.pk, "kind": message.kind, "attempts": message.attempts},
    )
    if ticket.assignee_id:
        ticket_services._notify(
            [ticket.assignee], ticket=ticket, message=text, url=ticket_services._ticket_url(ticket)
        )


# --- admin and receipts ------------------------------------------------------------------


def retry_refusal(actor, message: OutboundMessage) -> str | None:
    """Why `actor` may not retry this message (None: they may)."""
    from complaints import policies

    if actor.is_superuser:
        return None
    if not policies.is_service_staff(actor) or not policies.can_view_ticket(actor, message.ticket):
        return _("Only customer-service staff of this ticket retry its deliveries.")
    return None


def message_retry(*, message: OutboundMessage | int, actor) -> OutboundMessage:
    """Retry now: a dead or failed message gets a fresh set of attempts."""
    pk = message.pk if isinstance(message, OutboundMessage) else message
    with transaction.atomic():
        message = OutboundMessage.objects.select_for_update().filter(pk=pk).first()
        if message is None:
            raise ValidationError(_("No such message."))
        refusal = retry_refusal(actor, message)
        if refusal:
            raise PermissionDenied(refusal)
        if message.state not in (MessageState.FAILED, MessageState.DEAD):
            raise ValidationError(
                _("Only failed or undeliverable messages are retried; this one is %(state)s.")
                % {"state": message.get_state_display()}
            )
        if message.adapter == Adapter.CALLBACK or not message.recipient:
            route = route_for(message.ticket)
            if route.error:
                raise ValidationError(route.error)
            message.adapter, message.recipient_kind, message.recipient = (
                route.adapter,
                route.recipient_kind,
                route.recipient,
            )
        message.state = MessageState.QUEUED
        message.attempts = 0
        message.next_attempt_at = timezone.now()
        message.claimed_until = None
        _start_delivery(message)
    return message


RECEIPT_STATES = (MessageState.DELIVERED, MessageState.FAILED)


@transaction.atomic
def receipt_record(*, channel, message_id, state: str, error: str = "") -> OutboundMessage:
    """A channel tells us what became of a message it was sent (idempotent)."""
    if state not in RECEIPT_STATES:
        raise ValidationError({"status": [_('Use "delivered" or "failed".')]})
    try:
        message_uuid = uuid.UUID(str(message_id))
    except ValueError:
        raise ValidationError({"message_id": [_("Not a message id.")]}) from None
    message = (
        OutboundMessage.objects.select_for_update()
        .filter(message_id=message_uuid, channel=channel)
        .first()
    )
    if message is None:
        from django.http import Http404

        raise Http404(_("This channel was sent no such message."))
    now = timezone.now()
    if message.state == state:
        return message  # the same receipt again
    if message.state == MessageState.DELIVERED:
        from complaints.services import Conflict

        raise Conflict(_("This message was already reported delivered."))
    message.claimed_until = None
    message.next_attempt_at = None
    if state == MessageState.DELIVERED:
        message.state = MessageState.DELIVERED
        message.delivered_at = now
        message.sent_at = message.sent_at or now
        message.last_error = ""
        message.save()
        if message.kind == MessageKind.FIRST_RESPONSE:
            _first_response_sent(message, message.sent_at)
    else:
        message.state = MessageState.FAILED
        message.failed_at = now
        message.last_error = (error or _("The channel reported the message undelivered."))[:2000]
        message.save()
        _dead_lettered(message)
    return message


def callback_recorded(call: FollowUpCall, outcome: str) -> None:
    """An agent's call delivered (or failed to deliver) the message it was made for."""
    from complaints.models import CallbackOutcome

    message = OutboundMessage.objects.select_for_update().get(pk=call.message_id)
    if message.state not in PENDING_STATES:
        return
    now = timezone.now()
    message.attempts += 1
    if outcome == CallbackOutcome.REACHED:
        message.state = MessageState.DELIVERED
        message.sent_at = message.delivered_at = now
        message.last_error = ""
        message.save()
        if message.kind == MessageKind.FIRST_RESPONSE:
            _first_response_sent(message, now)
    elif call.state == CallbackState.DONE:  # declined: the customer would not listen
        message.state = MessageState.FAILED
        message.failed_at = now
        message.last_error = call.get_outcome_display()
        message.save()
    else:
        message.last_error = call.get_outcome_display()
        message.save()


# --- adapters --------------------------------------------------------------------------


def _payload(message: OutboundMessage) -> dict:
    from complaints.services import status_url

    return {
        "message_id": str(message.message_id),
        "ticket_number": message.ticket.number,
        "kind": message.kind,
        "recipient": {"kind": message.recipient_kind, "id": message.recipient},
        "body": message.body,
        "status_url": status_url(message.ticket),
        "created_at": message.created_at.isoformat(),
    }


def webhook_adapter(message: OutboundMessage) -> str:
    """POST the message, signed like intake, to the channel's callback URL."""
    from .api import sign

    channel = message.channel
    if not channel.callback_url:
        raise DeliveryError(_("The channel has no callback URL."), permanent=True)
    body = json.dumps(_payload(message), ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - the URL is an admin's https/http setting
        channel.callback_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Closeloop-Outbox/1",
            "X-Closeloop-Key": channel.key,
            "X-Closeloop-Timestamp": timestamp,
            "X-Closeloop-Signature": sign(channel.secret, timestamp, body),
            "Idempotency-Key": str(message.message_id),
        },
    )
    timeout = settings.CLOSELOOP_OUTBOX_TIMEOUT_SECONDS
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            reply = response.read(4096)
    except urllib.error.HTTPError as exc:
        code = exc.code
        # A channel that refuses the message itself (4xx but timeouts and throttling)
        # will refuse it again: no retry.
        permanent = 400 <= code < 500 and code not in (408, 409, 425, 429)
        raise DeliveryError(
            _("The channel answered HTTP %(code)d.") % {"code": code}, permanent=permanent
        ) from None
    except OSError as exc:  # URLError, timeouts, refused connections
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(
            _("The channel could not be reached: %(reason)s") % {"reason": reason}
        ) from None
    try:
        return str(json.loads(reply or b"{}").get("id", ""))
    except (ValueError, AttributeError):
        return ""


def email_adapter(message: OutboundMessage) -> str:
    subject = _("[Closeloop] Your complaint %(number)s") % {"number": message.ticket.number}
    try:
        EmailMessage(subject=subject, body=message.body, to=[message.recipient]).send()
    except Exception as exc:  # SMTP errors, refused recipients
        raise DeliveryError(str(exc)) from None
    return ""


class ConsoleSmsProvider:
    """The development SMS provider: writes each message to the log (stdout)."""

    def send(self, *, phone: str, text: str, message_id: str) -> str:
        log.warning("SMS to %s [%s]: %s", phone, message_id, text)
        return f"console-{message_id}"


def sms_provider():
    return import_string(settings.CLOSELOOP_SMS_PROVIDER)()


def sms_adapter(message: OutboundMessage) -> str:
    try:
        return sms_provider().send(
            phone=message.recipient, text=message.body, message_id=str(message.message_id)
        )
    except DeliveryError:
        raise
    except Exception as exc:
        raise DeliveryError(str(exc)) from None


def callback_adapter(message: OutboundMessage) -> str:
    raise DeliveryError(_("Call-back messages are delivered by an agent's call."), permanent=True)


ADAPTERS = {
    Adapter.WEBHOOK: webhook_adapter,
    Adapter.EMAIL: email_adapter,
    Adapter.SMS: sms_adapter,
    Adapter.CALLBACK: callback_adapter,
}
