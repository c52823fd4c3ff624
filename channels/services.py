"""Writes for channels: credentials, and intake of contacts from every channel.

Every door (the signed API, the public web form, the store-register import)
calls `intake_submit`, so identity resolution, idempotency and the repeat rules
hold the same way on each of them.
"""

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from complaints.models import OPEN_STATUSES, Category, Contact, EventKind, Status, Ticket
from complaints.services import _notify, _record, _ticket_url, ticket_create
from sla import risks
from triage import services as triage_services  # triage hook: routing rules, urgency

from .identity import CustomerKeys, customer_keys, resolve_customer
from .models import AttachmentLink, Channel, ChannelKind, IdentityConflict, new_channel_secret

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
    """Give the channel a new secret; requests signed with the old one fail from now on
    (in other processes once they reload the channels: at once with the shared Redis
    cache, within 10 s without it)."""
    lookup = {"pk": channel.pk} if isinstance(channel, Channel) else {"code": channel}
    try:
        locked = Channel.objects.select_for_update().get(**lookup)
    except Channel.DoesNotExist as exc:
        raise ValidationError({"code": [_("No such channel.")]}) from exc
    locked.secret = new_channel_secret()
    locked.secret_rotated_at = timezone.now()
    locked.save(update_fields=["secret", "secret_rotated_at"])
    return ChannelCredentials(code=locked.code, key=locked.key, secret=locked.secret)


# --- intake ----------------------------------------------------------------------

# A contact joins the customer's open ticket on the same category within this window.
JOIN_SAME_CATEGORY_WINDOW = dt.timedelta(days=7)
# A new complaint this soon after a closed ticket on the same issue is a repeat.
REPEAT_WINDOW = dt.timedelta(days=30)
# Two contacts of one customer this close together flag the ticket.
RECONTACT_WINDOW = dt.timedelta(hours=24)
# A clock difference the channel may have; later occurred_at values are refused.
CLOCK_SKEW = dt.timedelta(minutes=5)
# Older contacts are refused: a typo (year 0001) rather than a real complaint.
MAX_CONTACT_AGE = dt.timedelta(days=2 * 365)

MAX_BODY_CHARS = 10_000
MAX_ATTACHMENTS = 10
_URL = URLValidator(schemes=["http", "https"])


@dataclass(frozen=True)
class IntakeResult:
    ticket: Ticket
    contact: Contact
    created: bool  # this contact opened the ticket (False: it joined an existing one)
    replayed: bool  # the channel sent this contact before; nothing was written now


def _replay(channel: Channel, external_id: str) -> IntakeResult | None:
    # Every intake asks this and nearly every answer is "no": a narrow lookup on the
    # unique (channel, external_id) index, the ticket only when there is a contact.
    found = list(
        Contact.objects.filter(channel=channel, external_id=external_id).values_list("pk")[:1]
    )
    if not found:
        return None
    contact = Contact.objects.select_related("ticket").get(pk=found[0][0])
    opened = not Contact.objects.filter(ticket_id=contact.ticket_id, pk__lt=contact.pk).exists()
    return IntakeResult(ticket=contact.ticket, contact=contact, created=opened, replayed=True)


def category_from_hint(hint: str) -> Category | None:
    """The active category whose code or name is the hint, if any."""
    hint = (hint or "").strip()
    if not hint:
        return None
    return (
        Category.objects.filter(is_active=True)
        .filter(Q(code=hint) | Q(name=hint))
        .order_by("parent_id", "pk")
        .first()
    )


def check_occurred_at(occurred_at: dt.datetime | None) -> dict[str, list[str]]:
    """Refuse a contact time in the future or implausibly far in the past."""
    if occurred_at is None:
        return {}
    now = timezone.now()
    if occurred_at > now + CLOCK_SKEW:
        return {"occurred_at": [_("The contact cannot be in the future.")]}
    if occurred_at < now - MAX_CONTACT_AGE:
        return {"occurred_at": [_("The contact is more than two years old; check the date.")]}
    return {}


def _clean(
    *,
    channel: Channel,
    external_id: str,
    customer: dict,
    subject: str,
    body: str,
    order_no: str,
    occurred_at: dt.datetime | None,
    attachments,
) -> tuple[CustomerKeys, dict]:
    errors: dict[str, list[str]] = {}
    external_id = (external_id or "").strip()
    if not external_id:
        errors["external_id"] = [_("The channel's message id is required.")]
    elif len(external_id) > 128:
        errors["external_id"] = [_("At most %(n)d characters.") % {"n": 128}]
    body, subject, order_no = (
        (body or "").strip(),
        (subject or "").strip(),
        (order_no or "").strip(),
    )
    if not body:
        errors["body"] = [_("Describe the complaint.")]
    elif len(body) > MAX_BODY_CHARS:
        errors["body"] = [_("At most %(n)d characters.") % {"n": MAX_BODY_CHARS}]
    if len(subject) > 200:
        errors["subject"] = [_("At most %(n)d characters.") % {"n": 200}]
    if len(order_no) > 64:
        errors["order_no"] = [_("At most %(n)d characters.") % {"n": 64}]
    errors.update(check_occurred_at(occurred_at))
    urls = [str(u).strip() for u in attachments or ()]
    if len(urls) > MAX_ATTACHMENTS:
        errors["attachments"] = [_("At most %(n)d attachments.") % {"n": MAX_ATTACHMENTS}]
    for url in urls:
        try:
            if len(url) > 500:
                raise ValidationError("too long")
            _URL(url)
        except ValidationError:
            errors["attachments"] = [_("Each attachment must be an http(s) URL.")]
            break
    if not channel.is_active:
        errors["channel"] = [_("This channel is not active.")]
    keys = None
    try:
        keys = customer_keys(**(customer or {}))
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    if not subject:
        subject = Truncator(" ".join(body.split())).chars(40)
    return keys, {
        "external_id": external_id,
        "subject": subject,
        "body": body,
        "order_no": order_no,
        "attachments": urls,
    }


def intake_submit(
    *,
    channel: Channel,
    external_id: str,
    customer: dict,
    body: str,
    subject: str = "",
    order_no: str = "",
    occurred_at: dt.datetime | None = None,
    attachments=(),
    category_hint: str = "",
    category: Category | None = None,
    actor=None,
    extra: dict | None = None,
    order_amount=None,  # triage hook: rules on the order amount
) -> IntakeResult:
    """Take one contact from a channel: a new ticket, or a contact on an existing one.

    Idempotent on (channel, external_id): a contact seen before returns its ticket
    and writes nothing. `customer` holds the name and the keys a channel knows
    (phone, email, wechat_openid, wechat_unionid, app_user_id, weibo_uid). `extra`
    (e.g. the store clerk who wrote a register row) goes onto the timeline.
    """
    external_id = (external_id or "").strip()
    if external_id and (replay := _replay(channel, external_id)):
        return replay
    keys, data = _clean(
        channel=channel,
        external_id=external_id,
        customer=customer,
        subject=subject,
        body=body,
        order_no=order_no,
        occurred_at=occurred_at,
        attachments=attachments,
    )
    category = category or category_from_hint(category_hint)
    order_amount = triage_services.parse_amount(order_amount)  # triage hook
    attempts = 3
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                return _intake(
                    channel=channel,
                    keys=keys,
                    category=category,
                    category_hint=(category_hint or "").strip()[:60],
                    occurred_at=occurred_at,
                    actor=actor,
                    extra=extra or {},
                    order_amount=order_amount,  # triage hook
                    **data,
                )
        except IntegrityError:
            # A concurrent request stored the same contact (unique channel +
            # external id) or the same new customer key first; its work is
            # committed now, so a second look finds it.
            if replay := _replay(channel, data["external_id"]):
                return replay
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _intake(
    *,
    channel,
    keys,
    category,
    category_hint,
    occurred_at,
    actor,
    extra,
    external_id,
    order_amount=None,  # triage hook
    subject,
    body,
    order_no,
    attachments,
) -> IntakeResult:
    resolution = resolve_customer(keys)
    customer = resolution.customer  # locked: contacts of one customer queue up here
    new_customer = resolution.created
    # A retry of this very contact may have committed while we waited for the lock.
    # (A customer created just now has no contacts: a retry racing with us fails on
    # the unique keys or the unique external id instead, and retries into _replay.)
    if not new_customer and (replay := _replay(channel, external_id)):
        return replay
    now = timezone.now()
    occurred = occurred_at or now
    # A new customer has no earlier contact, open ticket or closed ticket to look for.
    recontact = (
        not new_customer
        and Contact.objects.filter(
            ticket__customer=customer,
            occurred_at__gte=occurred - RECONTACT_WINDOW,
            occurred_at__lte=occurred + RECONTACT_WINDOW,
        ).exists()
    )

    target = (
        None
        if new_customer
        else _open_ticket_for(customer, order_no=order_no, category=category, now=now)
    )
    if target is not None:
        ticket = Ticket.objects.select_for_update().get(pk=target.pk)
        contact = Contact.objects.create(
            ticket=ticket, channel=channel, external_id=external_id, body=body, occurred_at=occurred
        )
        ticket.contact_count += 1
        ticket.version += 1
        fields = ["contact_count", "version", "updated_at"]
        if recontact and ticket.recontact_flagged_at is None:
            ticket.recontact_flagged_at = now
            fields.append("recontact_flagged_at")
        ticket.save(update_fields=fields)
        _record(
            ticket,
            actor,
            EventKind.CONTACT,
            body,
            after={
                "channel": channel.code,
                "external_id": external_id,
                "contact_count": ticket.contact_count,
                "within_24h": recontact,
                **extra,
            },
        )
        _notify(
            [ticket.assignee],
            ticket=ticket,
            message=_("%(number)s: the customer got in touch again (%(channel)s).")
            % {"number": ticket.number, "channel": channel.name},
            url=_ticket_url(ticket),
        )
        risks.on_contact(ticket, contact)  # media words, repeated contact
        created = False
    else:
        repeat_of = (
            None
            if new_customer
            else _closed_ticket_repeated(customer, order_no=order_no, category=category, now=now)
        )
        ticket = ticket_create(
            customer=customer,
            channel=channel,
            subject=subject,
            body=body,
            order_no=order_no,
            actor=actor,
            external_id=external_id,
            occurred_at=occurred,
            category=category,
            repeat_of=repeat_of,
            recontact_flagged_at=now if recontact else None,
            new_customer=new_customer,
        )
        contact = ticket.opening_contact
        if repeat_of is not None or recontact or category_hint or extra:
            _record(
                ticket,
                actor,
                EventKind.NOTE,
                _intake_note(repeat_of, recontact),
                after={
                    "repeat_of": repeat_of.number if repeat_of else None,
                    "within_24h": recontact,
                    "category_hint": category_hint,
                    "category": category.code if category else None,
                    **extra,
                },
            )
        triage_services.triage_at_intake(ticket, order_amount=order_amount)  # triage hook
        created = True

    if attachments:
        AttachmentLink.objects.bulk_create(
            AttachmentLink(ticket=ticket, contact=contact, url=url) for url in attachments
        )
    if resolution.conflicts:
        IdentityConflict.objects.bulk_create(
            IdentityConflict(
                customer=customer,
                other_customer=other,
                kind=kind,
                external_key=key,
                channel=channel,
                contact=contact,
            )
            for kind, key, other in resolution.conflicts
        )
    return IntakeResult(ticket=ticket, contact=contact, created=created, replayed=False)


def _intake_note(repeat_of: Ticket | None, recontact: bool) -> str:
    parts = []
    if repeat_of is not None:
        parts.append(
            _("Repeat complaint: ticket %(number)s on the same issue was closed on %(date)s.")
            % {
                "number": repeat_of.number,
                "date": timezone.localtime(repeat_of.closed_at).strftime("%Y-%m-%d"),
            }
        )
    if recontact:
        parts.append(_("The customer contacted us more than once within 24 hours."))
    return " ".join(str(p) for p in parts) or _("Intake details.")


def _open_ticket_for(customer, *, order_no: str, category, now) -> Ticket | None:
    """The customer's open ticket on the same order, or on the same category this week."""
    open_tickets = Ticket.objects.filter(customer=customer, status__in=OPEN_STATUSES).order_by(
        "-created_at", "-pk"
    )
    if order_no:
        ticket = open_tickets.filter(order_no=order_no).first()
        if ticket is not None:
            return ticket
    if category is not None:
        same = open_tickets.filter(
            category=category, created_at__gte=now - JOIN_SAME_CATEGORY_WINDOW
        )
        if order_no:
            # A different order is a different issue even in the same category.
            same = same.filter(order_no="")
        return same.first()
    return None


def _closed_ticket_repeated(customer, *, order_no: str, category, now) -> Ticket | None:
    """The latest ticket on the same order or category closed within the repeat window."""
    issue = Q()
    if order_no:
        issue |= Q(order_no=order_no)
    if category is not None:
        issue |= Q(category=category)
    if not issue:
        return None
    return (
        Ticket.objects.filter(
            issue,
            customer=customer,
            status=Status.CLOSED,
            closed_at__gte=now - REPEAT_WINDOW,
        )
        .order_by("-closed_at", "-pk")
        .first()
    )


# --- the public web form -----------------------------------------------------------

WEB_CHANNEL_CODE = "web"


def hotline_channel() -> Channel:
    """The channel calls and walk-ins are recorded on: the first active hotline channel,
    created the first time there is none."""
    channel = (
        Channel.objects.filter(kind=ChannelKind.HOTLINE, is_active=True).order_by("pk").first()
    )
    if channel is not None:
        return channel
    try:
        channel, _created = Channel.objects.get_or_create(
            code="hotline", defaults={"name": "客服热线 Hotline", "kind": ChannelKind.HOTLINE}
        )
    except IntegrityError:
        channel = Channel.objects.get(code="hotline")
    return channel


def web_channel() -> Channel:
    """The channel of the public complaint form, created the first time it is used."""
    try:
        channel, _created = Channel.objects.get_or_create(
            code=WEB_CHANNEL_CODE, defaults={"name": "网页投诉 Web form", "kind": ChannelKind.WEB}
        )
    except IntegrityError:
        # Two first submissions at once: the other one created it.
        channel = Channel.objects.get(code=WEB_CHANNEL_CODE)
    return channel
