"""Every write to a ticket goes through these functions.

Pages, the REST API, the admin and background tasks all call them, so a rule (a
required field, a permission, a state) holds on every path. Each state change has
one shape: lock the ticket row, check permission, state and data, run the FSM
transition, save, and append a timeline event, all in one transaction.
"""

import datetime as dt
import decimal
import mimetypes
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import TransitionNotAllowed

from channels import outbox
from channels.models import Channel
from kb.phrases import refuse_forbidden_phrases
from kb.search import ticket_tokens
from sla import risks as sla_risks
from sla import services as sla_services

from . import numbering, policies
from .models import (
    ACTIVE_TASK_STATES,
    PAID_COMPENSATION_STATES,
    Attachment,
    CallbackOutcome,
    CallbackState,
    Category,
    CollaborationTask,
    Compensation,
    CompensationKind,
    CompensationLimit,
    CompensationState,
    Contact,
    Customer,
    Department,
    EventKind,
    FollowUpCall,
    Impact,
    Level,
    Notification,
    Priority,
    Role,
    Status,
    Survey,
    TaskState,
    Ticket,
    Tier,
    TimelineEvent,
)

# Escalation levels: 1 team lead, 2 supervisor, 3 management.
MAX_ESCALATION_LEVEL = 3


class Conflict(Exception):
    """The ticket is not in a state for this action, or another user changed it first (409)."""


# --- grading ---------------------------------------------------------------------


def grade_priority(*, amount_level: int, impact: int, urgency: int) -> int:
    """Priority from the three grading axes.

    Public/media/regulator impact or critical urgency is always P1; otherwise the
    sum of the three levels (3..9) decides.
    """
    if impact == Impact.PUBLIC or urgency == Level.HIGH:
        return Priority.P1
    score = amount_level + impact + urgency
    if score >= 5:
        return Priority.P2
    if score == 4:
        return Priority.P3
    return Priority.P4


# --- helpers ---------------------------------------------------------------------


def status_url(ticket: Ticket) -> str:
    """The public self-service status link told to the customer."""
    return settings.CLOSELOOP_SITE_URL + reverse("public-status") + f"?number={ticket.number}"


def _next_ticket_number(day: dt.date) -> str:
    # Unique under concurrency; on PostgreSQL taken outside the caller's transaction,
    # so concurrent creators do not queue behind each other's commits (numbering.py).
    return f"TS{day:%Y%m%d}-{numbering.next_serial(day):06d}"


def _record(
    ticket, actor, kind, message="", *, before=None, after=None, task=None
) -> TimelineEvent:
    return TimelineEvent.objects.create(
        ticket=ticket,
        actor=actor if actor and actor.is_authenticated else None,
        kind=kind,
        task=task,
        message=message,
        before=before or {},
        after=after or {},
    )


def _iso(value):
    return value.isoformat() if value else None


def _lock(ticket: Ticket | str, expected_version: int | None = None) -> Ticket:
    """Lock and return a fresh copy of the ticket row (by instance or number)."""
    lookup = {"pk": ticket.pk} if isinstance(ticket, Ticket) else {"number": ticket}
    try:
        locked = Ticket.objects.select_for_update().get(**lookup)
    except Ticket.DoesNotExist as exc:
        raise ValidationError(_("Ticket not found.")) from exc
    if expected_version is not None and locked.version != expected_version:
        raise Conflict(
            _("Ticket %(number)s was changed by someone else meanwhile; reload it and try again.")
            % {"number": locked.number}
        )
    return locked


def _require(actor, ticket: Ticket, action: str, **kwargs) -> None:
    reason = policies.action_refusal(actor, ticket, action, **kwargs)
    if reason:
        raise PermissionDenied(reason)


# What to tell a user who tries a transition in the wrong state.
NEXT_STEP_HINTS = {
    "classify": lambda: _("Only received or classified tickets can be classified."),
    "assign": lambda: _("Classify the ticket before assigning it."),
    "first_response": lambda: _("The first response is sent once, while the ticket is assigned."),
    "start": lambda: _("Handling starts after assignment and the first response."),
    "resolve": lambda: _("Only a ticket in progress can be resolved."),
    "follow_up": lambda: _("Follow-up comes after the ticket is resolved."),
    "close": lambda: _("A ticket can be closed only after it is resolved and followed up."),
    "reopen": lambda: _("Only resolved, followed-up or closed tickets can be reopened."),
    "merge": lambda: _("Only tickets still being worked can be merged."),
}


def _transition(ticket: Ticket, name: str) -> None:
    """Run the FSM transition or raise Conflict naming what must happen first."""
    method = getattr(ticket, name)
    before = ticket.status
    allowed_sources = {
        t.source
        for t in ticket._meta.get_field("status").get_all_transitions(Ticket)
        if t.name == name
    }
    if before not in allowed_sources:
        raise Conflict(
            _("Cannot %(action)s: the ticket is %(status)s. %(hint)s")
            % {
                "action": TRANSITION_LABELS[name](),
                "status": Status(before).label,
                "hint": NEXT_STEP_HINTS[name](),
            }
        )
    try:
        method()
    except TransitionNotAllowed as exc:
        # Conditions are checked with clear messages before this point; reaching
        # here means the data changed under us.
        raise Conflict(_("The ticket is not ready for this step.")) from exc


def _save(ticket: Ticket) -> None:
    # The row is locked by _lock(), so a plain increment cannot lose an update.
    ticket.version += 1
    sla_services.ticket_sync_clocks(ticket)  # SLA hook: clocks met/restarted/stopped
    ticket.save()


TRANSITION_LABELS: dict[str, Callable[[], str]] = {
    "classify": lambda: _("classify"),
    "assign": lambda: _("assign"),
    "first_response": lambda: _("send the first response"),
    "start": lambda: _("start handling"),
    "resolve": lambda: _("resolve"),
    "follow_up": lambda: _("record the follow-up"),
    "close": lambda: _("close"),
    "reopen": lambda: _("reopen"),
    "merge": lambda: _("merge"),
}


# --- creation --------------------------------------------------------------------


def ticket_create(
    *,
    customer: Customer,
    channel: Channel,
    subject: str,
    body: str,
    order_no: str = "",
    team: Department | None = None,
    actor=None,
    external_id: str = "",
    occurred_at: dt.datetime | None = None,
    category: Category | None = None,
    repeat_of: Ticket | None = None,
    recontact_flagged_at: dt.datetime | None = None,
    new_customer: bool = False,
) -> Ticket:
    """A new received ticket with its first contact (`ticket.opening_contact`) and clocks.

    The intake passes what it found out before (category hint, repeat, re-contact) so
    the row is written once; `new_customer=True` says the customer has no earlier
    contact at all (created just now), which spares the risk check a query.
    """
    subject, body = subject.strip(), body.strip()
    errors = {}
    if not subject:
        errors["subject"] = [_("A subject is required.")]
    if not body:
        errors["body"] = [_("A description is required.")]
    if not channel.is_active:
        errors["channel"] = [_("This channel is not active.")]
    if errors:
        raise ValidationError(errors)
    # Inside a caller's transaction (the intake's) no savepoint of its own: any error
    # here rolls the caller's block back anyway.
    with transaction.atomic(savepoint=False):
        now = timezone.now()
        ticket = Ticket(
            customer=customer,
            channel=channel,
            subject=subject[:200],
            body=body,
            order_no=order_no.strip(),
            team=team,
            category=category,
            repeat_of=repeat_of,
            recontact_flagged_at=recontact_flagged_at,
            created_at=now,
            search_tokens=ticket_tokens(subject=subject[:200], body=body),  # kb: text search
        )
        ticket._new_customer = new_customer  # SLA hook: no earlier ticket to look for
        sla_services.ticket_plan_clocks(ticket)  # SLA hook: policy and deadlines
        # The number last (on SQLite the day's counter stays locked until the commit).
        ticket.number = _next_ticket_number(timezone.localdate(now))
        ticket.save()
        # SLA hook: stage clocks, risk signals
        sla_services.on_ticket_created(ticket, new_customer=new_customer)
        ticket.opening_contact = Contact.objects.create(
            ticket=ticket,
            channel=channel,
            external_id=external_id,
            body=body,
            occurred_at=occurred_at or now,
        )
        _record(
            ticket,
            actor,
            EventKind.CREATED,
            subject,
            after={"status": ticket.status, "channel": channel.code, "number": ticket.number},
        )
        return ticket


# --- the closed loop -------------------------------------------------------------


@transaction.atomic
def ticket_classify(
    *,
    ticket: Ticket | str,
    actor,
    category: Category | None,
    amount_level: int | None,
    impact: int | None,
    urgency: int | None,
    expected_version: int | None = None,
) -> Ticket:
    ticket = _lock(ticket, expected_version)
    _require(actor, ticket, "classify")
    if ticket.status not in (Status.RECEIVED, Status.CLASSIFIED):
        _transition(ticket, "classify")  # raises the conflict with its hint
    errors = {}
    if category is None:
        errors["category"] = [_("Choose a category.")]
    elif category.children.exists():
        errors["category"] = [_("Choose a subcategory of %(name)s.") % {"name": category.name}]
    elif not category.is_active:
        errors["category"] = [_("This category is no longer in use.")]
    for field, value, choices in (
        ("amount_level", amount_level, Level),
        ("impact", impact, Impact),
        ("urgency", urgency, Level),
    ):
        if value is None:
            errors[field] = [
                _("Grade the %(axis)s.") % {"axis": Ticket._meta.get_field(field).verbose_name}
            ]
        elif value not in choices.values:
            errors[field] = [_("Not a valid grade.")]
    if errors:
        raise ValidationError(errors)

    before = _classification_snapshot(ticket)
    ticket.category = category
    ticket.amount_level, ticket.impact, ticket.urgency = amount_level, impact, urgency
    ticket.priority = grade_priority(amount_level=amount_level, impact=impact, urgency=urgency)
    _transition(ticket, "classify")
    ticket.classified_at = timezone.now()
    sla_services.on_ticket_classified(ticket)  # SLA hook: policy, risk signals
    _save(ticket)
    after = _classification_snapshot(ticket)
    _record(
        ticket,
        actor,
        EventKind.CLASSIFIED,
        _("%(category)s, priority %(priority)s")
        % {"category": category.full_name, "priority": ticket.get_priority_display()},
        before=before,
        after=after,
    )
    return ticket


def _classification_snapshot(ticket: Ticket) -> dict:
    return {
        "status": ticket.status,
        "category": ticket.category.full_name if ticket.category_id else None,
        "amount_level": ticket.amount_level,
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "priority": ticket.priority,
    }


@transaction.atomic
def ticket_assign(
    *,
    ticket: Ticket | str,
    actor,
    assignee,
    team: Department | None = None,
    expected_version: int | None = None,
) -> Ticket:
    ticket = _lock(ticket, expected_version)
    if assignee is None:
        raise ValidationError({"assignee": [_("Choose who handles the ticket.")]})
    if (
        policies.tier_of(actor) == 1
        and ticket.assignee_id
        and ticket.assignee_id not in (actor.pk, assignee.pk)
    ):
        # Two agents taking the same ticket: the later one lost the race.
        raise Conflict(
            _("%(user)s has already taken this ticket.") % {"user": ticket.assignee.get_username()}
        )
    _require(actor, ticket, "assign", assignee=assignee)
    if policies.role_of(assignee) not in (
        policies.Role.AGENT,
        policies.Role.SENIOR,
        policies.Role.SUPERVISOR,
    ):
        raise ValidationError(
            {"assignee": [_("Tickets can only be assigned to customer-service agents.")]}
        )
    if team is not None and team.kind != Department.Kind.SERVICE:
        raise ValidationError({"team": [_("Tickets belong to customer-service teams.")]})
    team = team or ticket.team or assignee.profile.department
    if (
        team is not None
        and assignee.profile.department_id not in (team.pk, None)
        and policies.role_of(assignee) != policies.Role.SUPERVISOR
    ):
        raise ValidationError(
            {
                "assignee": [
                    _("%(user)s is not a member of %(team)s.")
                    % {"user": assignee.get_username(), "team": team.name}
                ]
            }
        )
    if ticket.assignee_id == assignee.pk:
        raise Conflict(
            _("The ticket is already assigned to %(user)s.") % {"user": assignee.get_username()}
        )
    if policies.tier_of(actor) < 3 and team is not None and team.pk != policies.team_id_of(actor):
        raise PermissionDenied(_("Only a supervisor can move a ticket to another team."))

    before = {
        "status": ticket.status,
        "assignee": ticket.assignee.get_username() if ticket.assignee_id else None,
        "team": ticket.team.name if ticket.team_id else None,
    }
    ticket.assignee = assignee
    ticket.team = team
    _transition(ticket, "assign")
    ticket.assigned_at = timezone.now()
    _save(ticket)
    _record(
        ticket,
        actor,
        EventKind.ASSIGNED,
        _("Assigned to %(user)s") % {"user": assignee.get_full_name() or assignee.get_username()},
        before=before,
        after={
            "status": ticket.status,
            "assignee": assignee.get_username(),
            "team": team.name if team else None,
        },
    )
    return ticket


@transaction.atomic
def ticket_first_response(
    *,
    ticket: Ticket | str,
    actor,
    message: str,
    promised_followup_at: dt.datetime | None,
    expected_version: int | None = None,
) -> Ticket:
    """Tell the customer when they will hear back and how to check the status themselves."""
    ticket = _lock(ticket, expected_version)
    _require(actor, ticket, "first_response")
    if ticket.status != Status.ASSIGNED or ticket.first_responded_at is not None:
        if ticket.first_responded_at is not None:
            raise Conflict(_("The first response was already sent."))
        _transition(ticket, "first_response")
    message = (message or "").strip()
    refuse_forbidden_phrases(message, field="message")  # kb: forbidden-phrase check
    errors = {}
    now = timezone.now()
    if promised_followup_at is None:
        errors["promised_followup_at"] = [_("Tell the customer the follow-up deadline.")]
    elif promised_followup_at <= now:
        errors["promised_followup_at"] = [_("The follow-up deadline must be in the future.")]
    if not message:
        errors["message"] = [_("Write the message to the customer.")]
    else:
        missing = []
        if ticket.number not in message:
            missing.append(_("the ticket number %(number)s") % {"number": ticket.number})
        if reverse("public-status") not in message:
            missing.append(_("the self-service status link"))
        if missing:
            errors["message"] = [
                _(
                    "The first response must tell the customer how to check the status: include %(missing)s."
                )
                % {"missing": _(" and ").join(str(m) for m in missing)}
            ]
    if errors:
        raise ValidationError(errors)

    ticket.promised_followup_at = promised_followup_at
    _transition(ticket, "first_response")
    ticket.first_responded_at = now
    _save(ticket)
    event = _record(
        ticket,
        actor,
        EventKind.FIRST_RESPONSE,
        message,
        after={"promised_followup_at": _iso(promised_followup_at)},
    )
    outbox.message_queue(ticket=ticket, kind="first_response", body=message, event=event)  # outbox
    return ticket


@transaction.atomic
def ticket_start(*, ticket: Ticket | str, actor, expected_version: int | None = None) -> Ticket:
    ticket = _lock(ticket, expected_version)
    _require(actor, ticket, "start")
    if ticket.status == Status.ASSIGNED and ticket.first_responded_at is None:
        raise Conflict(
            _("Send the first response (follow-up deadline and status link) before starting.")
        )
    _transition(ticket, "start")
    ticket.started_at = timezone.now()
    _save(ticket)
    _record(
        ticket,
        actor,
        EventKind.STARTED,
        before={"status": Status.ASSIGNED},
        after={"status": ticket.status},
    )
    return ticket


@transaction.atomic
def ticket_resolve(
    *,
    ticket: Ticket | str,
    actor,
    solution: str,
    responsible_person: str,
    resolution_time: dt.datetime | None,
    evidence_ref: str = "",
    expected_version: int | None = None,
) -> Ticket:
    """Resolve with the four elements: time, responsible person, solution, evidence."""
    ticket = _lock(ticket, expected_version)
    _require(actor, ticket, "resolve")
    if ticket.status != Status.IN_PROGRESS:
        _transition(ticket, "resolve")
    ticket.solution = (solution or "").strip()
    ticket.responsible_person = (responsible_person or "").strip()
    ticket.resolution_time = resolution_time
    ticket.evidence_ref = (evidence_ref or "").strip()
    missing = ticket.missing_four_elements(has_attachment=ticket.attachments.exists())
    if missing:
        raise ValidationError(
            _("A resolution needs all four elements; missing: %(missing)s.")
            % {"missing": "、".join(missing)}
        )
    if resolution_time > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationError(
            {"resolution_time": [_("The solution time cannot be in the future.")]}
        )
    _refuse_with_active_tasks(ticket, _("resolve"))
    _transition(ticket, "resolve")
    ticket.resolved_at = timezone.now()
    _save(ticket)
    _record(
        ticket,
        actor,
        EventKind.RESOLVED,
        ticket.solution,
        before={"status": Status.IN_PROGRESS},
        after={
            "status": ticket.status,
            "resolution_time": _iso(resolution_time),
            "responsible_person": ticket.responsible_person,
            "evidence_ref": ticket.evidence_ref,
        },
    )
    _start_closing_loop(ticket, actor)
    return ticket


@transaction.atomic
def ticket_follow_up(
    *, ticket: Ticket | str, actor, note: str = "", expected_version: int | None = None
) -> Ticket:
    """Record the call-back (or rely on the survey answer) that closes the loop.

    "Followed up" needs either the customer's answer to this resolution's survey or a
    call-back that reached them: `note` is that call-back's record (it completes the
    due call-back); without a note, an answered survey must exist.
    """
    ticket = _lock(ticket, expected_version)
    _require(actor, ticket, "follow_up")
    if ticket.status != Status.RESOLVED:
        _transition(ticket, "follow_up")
    note = (note or "").strip()
    if note:
        _complete_due_callback(ticket, actor, CallbackOutcome.REACHED, note)
    else:
        survey = _current_survey(ticket)
        if survey is None or not survey.is_answered:
            raise ValidationError(
                {
                    "note": [
                        _(
                            "Record what the customer said in the call-back, or wait for "
                            "their survey answer."
                        )
                    ]
                }
            )
        note = _("Survey answered: overall %(overall)s/10. %(comment)s") % {
            "overall": survey.overall,
            "comment": survey.comment,
        }
    _follow_up_locked(ticket, actor, note)
    return ticket


def _follow_up_locked(ticket: Ticket, actor, note: str) -> None:
    ticket.followup_note = note.strip()
    _transition(ticket, "follow_up")
    ticket.followed_up_at = timezone.now()
    _save(ticket)
    _record(
        ticket,
        actor,
        EventKind.FOLLOWED_UP,
        ticket.followup_note,
        before={"status": Status.RESOLVED},
        after={"status": ticket.status},
    )


@transaction.atomic
def ticket_close(*, ticket: Ticket | str, actor, expected_version: int | None = None) -> Ticket:
    ticket = _lock(ticket, expected_version)
    _require(actor, ticket, "close")
    before = ticket.status
    _transition(ticket, "close")
    ticket.closed_at = timezone.now()
    _save(ticket)
    _record(
        ticket, actor, EventKind.CLOSED, before={"status": before}, after={"status": ticket.status}
    )
    return ticket


@transaction.atomic
def ticket_reopen(
    *, ticket: Ticket | str, actor, reason: str, expected_version: int | None = None
) -> Ticket:
    ticket = _lock(ticket, expected_version)
    _require(actor, ticket, "reopen")
    reason = (reason or "").strip()
    before = ticket.status
    if before not in (Status.RESOLVED, Status.FOLLOWED_UP, Status.CLOSED):
        _transition(ticket, "reopen")
    if not reason:
        raise ValidationError({"reason": [_("Say why the ticket is reopened.")]})
    _reopen_locked(ticket, actor, reason)
    return ticket


def _reopen_locked(ticket: Ticket, actor, reason: str) -> None:
    before = ticket.status
    _transition(ticket, "reopen")
    ticket.reopen_count += 1
    ticket.resolved_at = ticket.followed_up_at = ticket.closed_at = None
    _save(ticket)
    # The call-backs belonged to the resolution that did not hold.
    ticket.callbacks.filter(state=CallbackState.PENDING).update(state=CallbackState.CANCELLED)
    _record(
        ticket,
        actor,
        EventKind.REOPENED,
        reason,
        before={"status": before},
        after={"status": ticket.status, "reopen_count": ticket.reopen_count},
    )


@transaction.atomic
def ticket_merge(
    *, ticket: Ticket | str, actor, into: str, expected_version: int | None = None
) -> Ticket:
    """Merge a duplicate into the ticket that carries on; its contacts move there."""
    into = (into or "").strip()
    if not into:
        raise ValidationError({"into": [_("Give the number of the ticket to merge into.")]})
    source_number = ticket.number if isinstance(ticket, Ticket) else ticket
    if into == source_number:
        raise ValidationError({"into": [_("A ticket cannot be merged into itself.")]})
    # Lock both rows in one statement, in id order, so two opposite merges cannot deadlock.
    rows = {
        t.number: t
        for t in Ticket.objects.select_for_update()
        .filter(number__in=[source_number, into])
        .order_by("pk")
    }
    if source_number not in rows:
        raise ValidationError(_("Ticket not found."))
    ticket, target = rows[source_number], rows.get(into)
    if expected_version is not None and ticket.version != expected_version:
        raise Conflict(
            _("Ticket %(number)s was changed by someone else meanwhile; reload it and try again.")
            % {"number": ticket.number}
        )
    _require(actor, ticket, "merge")
    before = ticket.status
    if before not in (Status.RECEIVED, Status.CLASSIFIED, Status.ASSIGNED, Status.IN_PROGRESS):
        _transition(ticket, "merge")
    if target is None:
        raise ValidationError({"into": [_("No ticket %(number)s.") % {"number": into}]})
    if not target.is_open:
        raise ValidationError(
            {"into": [_("Ticket %(number)s is no longer open.") % {"number": into}]}
        )
    if target.customer_id != ticket.customer_id:
        raise ValidationError({"into": [_("Only tickets of the same customer can be merged.")]})
    _refuse_with_active_tasks(ticket, _("merge"))

    moved = ticket.contacts.update(ticket=target)
    _transition(ticket, "merge")
    ticket.merged_into = target
    _save(ticket)
    target.contact_count += moved
    target.version += 1
    target.save(update_fields=["contact_count", "version", "updated_at"])
    _record(
        ticket,
        actor,
        EventKind.MERGED,
        target.number,
        before={"status": before},
        after={"status": ticket.status, "merged_into": target.number},
    )
    _record(
        target,
        actor,
        EventKind.MERGED_FROM,
        ticket.number,
        after={"merged_from": ticket.number, "contacts_moved": moved},
    )
    return ticket


@transaction.atomic
def ticket_escalate(
    *, ticket: Ticket | str, actor, reason: str, expected_version: int | None = None
) -> Ticket:
    """Raise the escalation level (a flag, not a state) so leads and supervisors see it."""
    ticket = _lock(ticket, expected_version)
    _require(actor, ticket, "escalate")
    if not ticket.is_open:
        raise Conflict(_("Closed or merged tickets cannot be escalated."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Say why the ticket is escalated.")]})
    if ticket.escalation_level >= MAX_ESCALATION_LEVEL:
        raise Conflict(_("The ticket is already at the highest escalation level."))
    before = ticket.escalation_level
    ticket.escalation_level += 1
    _save(ticket)
    _record(
        ticket,
        actor,
        EventKind.ESCALATED,
        reason,
        before={"escalation_level": before},
        after={"escalation_level": ticket.escalation_level},
    )
    return ticket


@transaction.atomic
def ticket_reply(
    *, ticket: Ticket | str, actor, body: str, internal: bool = False
) -> TimelineEvent:
    """A reply to the customer, or an internal note for colleagues."""
    ticket = _lock(ticket)
    _require(actor, ticket, "note" if internal else "reply")
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": [_("Write something first.")]})
    if len(body) > 5000:
        raise ValidationError({"body": [_("Keep it under 5,000 characters.")]})
    if ticket.status in (Status.CLOSED, Status.MERGED) and not internal:
        raise Conflict(_("Closed or merged tickets take internal notes only."))
    if not internal:
        refuse_forbidden_phrases(body, field="body")  # kb: forbidden-phrase check
    ticket.version += 1
    ticket.save(update_fields=["version", "updated_at"])
    event = _record(ticket, actor, EventKind.NOTE if internal else EventKind.REPLY, body)
    if not internal:
        outbox.message_queue(ticket=ticket, kind="reply", body=body, event=event)  # outbox
    return event


# --- evidence --------------------------------------------------------------------

ALLOWED_ATTACHMENT_TYPES = {
    # extension: (content type, magic-byte prefixes or None for text)
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    ".webp": ("image/webp", (b"RIFF",)),
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".mp3": ("audio/mpeg", (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")),
    ".wav": ("audio/wav", (b"RIFF",)),
    ".txt": ("text/plain", None),
}


@dataclass(frozen=True)
class UploadCheck:
    content_type: str


def _check_upload(uploaded) -> UploadCheck:
    name = uploaded.name or ""
    ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in ALLOWED_ATTACHMENT_TYPES:
        raise ValidationError(
            {
                "file": [
                    _("Allowed evidence files: images, PDF, audio recordings (mp3/wav) and text.")
                ]
            }
        )
    if uploaded.size > settings.CLOSELOOP_MAX_ATTACHMENT_BYTES:
        raise ValidationError(
            {
                "file": [
                    _("The file is larger than %(mb)d MB.")
                    % {"mb": settings.CLOSELOOP_MAX_ATTACHMENT_BYTES // (1024 * 1024)}
                ]
            }
        )
    if uploaded.size == 0:
        raise ValidationError({"file": [_("The file is empty.")]})
    content_type, magics = ALLOWED_ATTACHMENT_TYPES[ext]
    head = uploaded.read(16)
    uploaded.seek(0)
    if magics is None:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            # A multi-byte character may be cut at 16 bytes; check a longer sample.
            sample = uploaded.read(4096)
            uploaded.seek(0)
            try:
                sample.decode("utf-8", errors="strict")
            except UnicodeDecodeError as exc:
                raise ValidationError({"file": [_("The text file is not UTF-8.")]}) from exc
    elif not any(head.startswith(m) for m in magics):
        raise ValidationError(
            {"file": [_("The file content does not match its type %(ext)s.") % {"ext": ext}]}
        )
    return UploadCheck(content_type=content_type or mimetypes.guess_type(name)[0] or "")


@transaction.atomic
def attachment_add(*, ticket: Ticket | str, actor, uploaded) -> Attachment:
    ticket = _lock(ticket)
    _require(actor, ticket, "attachment")
    if ticket.status in (Status.CLOSED, Status.MERGED):
        raise Conflict(_("Closed or merged tickets take no new evidence."))
    check = _check_upload(uploaded)
    attachment = Attachment(
        ticket=ticket,
        original_name=uploaded.name[:200],
        content_type=check.content_type,
        size=uploaded.size,
        uploaded_by=actor,
    )
    attachment.file.save(uploaded.name, uploaded, save=False)
    attachment.save()
    _record(
        ticket,
        actor,
        EventKind.ATTACHMENT,
        attachment.original_name,
        after={"attachment_id": attachment.pk, "size": attachment.size},
    )
    return attachment


# --- notifications -----------------------------------------------------------------


def _notify(recipients, *, ticket: Ticket | None, message: str, url: str = "", actor=None):
    """Leave an in-app message for each recipient (once each, never for the actor)."""
    seen = set()
    rows = []
    for user in recipients:
        if user is None or user.pk in seen or (actor is not None and user.pk == actor.pk):
            continue
        seen.add(user.pk)
        rows.append(Notification(recipient=user, ticket=ticket, message=message[:300], url=url))
    Notification.objects.bulk_create(rows)


def _ticket_url(ticket: Ticket) -> str:
    return reverse("workspace:ticket", args=[ticket.number])


def notifications_mark_read(*, user, ids=None) -> int:
    """Mark the user's notifications read (all unread ones when `ids` is None)."""
    qs = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())


# --- compensation ------------------------------------------------------------------

# Nothing a complaint desk pays on one ticket comes near this; bigger numbers are typos.
MAX_COMPENSATION_AMOUNT = Decimal("1000000.00")


class CapExceeded(PermissionDenied):
    """Above the actor's own authority on this ticket: it needs an approver (403)."""

    def __init__(self, message: str, *, approver_tier: int):
        super().__init__(message)
        self.approver_tier = approver_tier


def yuan(amount: Decimal) -> str:
    return f"¥{amount:,.2f}"


def compensation_limits() -> dict[int, Decimal]:
    """Each tier's authority on one ticket (admin-edited); tier 0 has none."""
    limits = {row.tier: row.amount for row in CompensationLimit.objects.all()}
    return {0: Decimal("0.00"), **limits}


def parse_amount(value) -> Decimal:
    """A positive CNY amount with at most two decimals, or a ValidationError on `amount`."""

    def refuse(message):
        return ValidationError({"amount": [message]})

    if isinstance(value, bool) or value is None or value == "":
        raise refuse(_("Enter an amount in yuan, e.g. 10 or 9.90."))
    try:
        amount = Decimal(str(value).strip().replace(",", "").removeprefix("¥"))
    except (decimal.InvalidOperation, ValueError) as exc:
        raise refuse(_("Enter an amount in yuan, e.g. 10 or 9.90.")) from exc
    if not amount.is_finite():
        raise refuse(_("Enter an amount in yuan, e.g. 10 or 9.90."))
    if amount <= 0:
        raise refuse(_("The amount must be more than zero."))
    if amount.as_tuple().exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise refuse(_("Amounts have at most two decimal places (fen)."))
    if amount > MAX_COMPENSATION_AMOUNT:
        raise refuse(_("That amount is not plausible for one ticket."))
    return amount.quantize(Decimal("0.01"))


def compensation_total(ticket: Ticket) -> Decimal:
    """What the customer gets on this ticket: granted plus approved amounts."""
    total = ticket.compensations.filter(state__in=PAID_COMPENSATION_STATES).aggregate(
        total=models.Sum("amount")
    )["total"]
    return total or Decimal("0.00")


def lowest_approver_tier(total: Decimal, limits: dict[int, Decimal]) -> int | None:
    """The lowest approving tier (2 or 3) whose limit covers `total`, or None."""
    for tier in sorted(t for t in limits if t >= 2):
        if limits[tier] >= total:
            return tier
    return None


@transaction.atomic
def compensation_grant(
    *,
    ticket: Ticket | str,
    actor,
    kind: str,
    amount,
    reason: str,
    request: bool = False,
) -> Compensation:
    """Grant compensation within the actor's authority, or (`request=True`) ask for approval.

    The authority is a cap on the total paid on one ticket. A grant above it is refused
    (CapExceeded, 403) naming who can approve; a request is routed to the lowest tier
    whose limit covers the new total. The ticket row is locked, so two concurrent
    grants cannot together pass the cap.
    """
    ticket = _lock(ticket)
    reason_refused = policies.compensation_refusal(actor, ticket)
    if reason_refused:
        raise PermissionDenied(reason_refused)
    errors = {}
    if kind not in CompensationKind.values:
        errors["kind"] = [
            _("Choose one of: %(kinds)s.")
            % {
                "kinds": ", ".join(
                    f"{value} ({label})" for value, label in CompensationKind.choices
                )
            }
        ]
    try:
        amount = parse_amount(amount)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = [_("Say why the customer is compensated.")]
    elif len(reason) > 1000:
        errors["reason"] = [_("Keep the reason under 1,000 characters.")]
    if errors:
        raise ValidationError(errors)
    if not ticket.is_open:
        raise ValidationError(_("Closed or merged tickets cannot take compensation."))

    limits = compensation_limits()
    paid = compensation_total(ticket)
    new_total = paid + amount
    own_limit = limits.get(policies.tier_of(actor), Decimal("0.00"))
    approver_tier = lowest_approver_tier(new_total, limits)
    within = new_total <= own_limit
    if not within and approver_tier is None:
        raise ValidationError(
            {
                "amount": [
                    _(
                        "The total on this ticket would be %(total)s, above the highest "
                        "approval limit %(ceiling)s."
                    )
                    % {"total": yuan(new_total), "ceiling": yuan(max(limits.values()))}
                ]
            }
        )
    if request and within:
        raise ValidationError(
            _("%(amount)s is within your authority on this ticket; grant it directly.")
            % {"amount": yuan(amount)}
        )
    if not request and not within:
        raise CapExceeded(
            _(
                "%(amount)s would bring this ticket to %(total)s, above your authority of "
                "%(limit)s per ticket (already given: %(paid)s). It needs approval from "
                "%(tier)s: request it."
            )
            % {
                "amount": yuan(amount),
                "total": yuan(new_total),
                "limit": yuan(own_limit),
                "paid": yuan(paid),
                "tier": Tier(approver_tier).label,
            },
            approver_tier=approver_tier,
        )
    compensation = Compensation.objects.create(
        ticket=ticket,
        kind=kind,
        amount=amount,
        reason=reason,
        state=CompensationState.REQUESTED if request else CompensationState.GRANTED,
        requested_by=actor,
        approver_tier=approver_tier if request else None,
    )
    snapshot = {
        "compensation": compensation.pk,
        "kind": kind,
        "amount": str(amount),
        "state": compensation.state,
    }
    if request:
        snapshot["approver_tier"] = approver_tier
        event = EventKind.COMPENSATION_REQUESTED
    else:
        snapshot["ticket_total"] = str(new_total)
        event = EventKind.COMPENSATION_GRANTED
    _record(ticket, actor, event, reason, after=snapshot)
    return compensation


def _lock_compensation(compensation: Compensation | int) -> Compensation:
    pk = compensation.pk if isinstance(compensation, Compensation) else compensation
    try:
        # No joins in the locking query (see _lock_task).
        return Compensation.objects.select_for_update().get(pk=pk)
    except (Compensation.DoesNotExist, ValueError, TypeError) as exc:
        raise ValidationError(_("No such compensation.")) from exc


def _decide(compensation, actor, state: str, note: str) -> Compensation:
    # Lock the ticket first (the same order as grants), then the request.
    pk = compensation.pk if isinstance(compensation, Compensation) else compensation
    ticket_id = Compensation.objects.filter(pk=pk).values_list("ticket_id", flat=True).first()
    if ticket_id is None:
        raise ValidationError(_("No such compensation."))
    ticket = _lock(Ticket(pk=ticket_id))
    compensation = _lock_compensation(pk)
    compensation.ticket = ticket
    refused = policies.decision_refusal(actor, compensation)
    if refused:
        raise PermissionDenied(refused)
    if compensation.state != CompensationState.REQUESTED:
        raise Conflict(
            _("This request was already decided: %(state)s.")
            % {"state": compensation.get_state_display()}
        )
    note = (note or "").strip()
    if state == CompensationState.REJECTED and not note:
        raise ValidationError({"reason": [_("Say why the request is rejected.")]})
    if len(note) > 1000:
        raise ValidationError({"reason": [_("Keep the reason under 1,000 characters.")]})
    if state == CompensationState.APPROVED:
        if not ticket.is_open:
            raise Conflict(_("The ticket is closed; this request can only be rejected."))
        limits = compensation_limits()
        new_total = compensation_total(ticket) + compensation.amount
        own_limit = limits.get(policies.tier_of(actor), Decimal("0.00"))
        if new_total > own_limit:
            raise CapExceeded(
                _(
                    "Approving would bring this ticket to %(total)s, above your limit of "
                    "%(limit)s; a higher tier must approve it."
                )
                % {"total": yuan(new_total), "limit": yuan(own_limit)},
                approver_tier=lowest_approver_tier(new_total, limits) or 3,
            )
    compensation.state = state
    compensation.decided_by = actor
    compensation.decided_at = timezone.now()
    compensation.decision_note = note
    compensation.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
    approved = state == CompensationState.APPROVED
    after = {
        "compensation": compensation.pk,
        "kind": compensation.kind,
        "amount": str(compensation.amount),
        "state": state,
    }
    if approved:
        after["ticket_total"] = str(compensation_total(ticket))
    _record(
        ticket,
        actor,
        EventKind.COMPENSATION_APPROVED if approved else EventKind.COMPENSATION_REJECTED,
        note,
        before={"state": CompensationState.REQUESTED},
        after=after,
    )
    message = (
        _("%(who)s approved your request of %(amount)s on %(number)s.")
        if approved
        else _("%(who)s rejected your request of %(amount)s on %(number)s: %(note)s")
    ) % {
        "who": actor.get_full_name() or actor.get_username(),
        "amount": yuan(compensation.amount),
        "number": ticket.number,
        "note": note,
    }
    _notify(
        [compensation.requested_by],
        ticket=ticket,
        message=message,
        url=_ticket_url(ticket),
        actor=actor,
    )
    return compensation


@transaction.atomic
def compensation_approve(*, compensation: Compensation | int, actor, note: str = ""):
    return _decide(compensation, actor, CompensationState.APPROVED, note)


@transaction.atomic
def compensation_reject(*, compensation: Compensation | int, actor, reason: str):
    return _decide(compensation, actor, CompensationState.REJECTED, reason)


@transaction.atomic
def compensation_cancel(*, compensation: Compensation | int, actor) -> Compensation:
    """The requester (or a lead who could decide it) withdraws a pending request."""
    compensation = _lock_compensation(compensation)
    ticket = compensation.ticket
    if compensation.requested_by_id != actor.pk and policies.tier_of(actor) < 2:
        raise PermissionDenied(_("Only the requester or an approver can withdraw a request."))
    if compensation.requested_by_id != actor.pk:
        refused = policies.decision_refusal(actor, compensation)
        if refused:
            raise PermissionDenied(refused)
    if compensation.state != CompensationState.REQUESTED:
        raise Conflict(
            _("This request was already decided: %(state)s.")
            % {"state": compensation.get_state_display()}
        )
    compensation.state = CompensationState.CANCELLED
    compensation.decided_by = actor
    compensation.decided_at = timezone.now()
    compensation.save(update_fields=["state", "decided_by", "decided_at"])
    _record(
        ticket,
        actor,
        EventKind.COMPENSATION_CANCELLED,
        yuan(compensation.amount),
        before={"state": CompensationState.REQUESTED},
        after={"compensation": compensation.pk, "state": compensation.state},
    )
    return compensation


# --- collaboration tasks -------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    """One department's part in a (multi-department) request for help."""

    department: Department | str
    responsibility: str
    instruction: str = ""
    respond_due_at: dt.datetime | None = None
    complete_due_at: dt.datetime | None = None


def _refuse_with_active_tasks(ticket: Ticket, action: str) -> None:
    names = list(
        ticket.tasks.filter(state__in=ACTIVE_TASK_STATES)
        .values_list("department__name", flat=True)
        .order_by("department__name")
        .distinct()
    )
    if names:
        raise Conflict(
            _(
                "Cannot %(action)s: collaboration tasks are still open (%(departments)s). "
                "Wait for them to finish or cancel them."
            )
            % {"action": action, "departments": "、".join(names)}
        )


def _resolve_department(value) -> Department | None:
    if isinstance(value, Department):
        return value
    return Department.objects.filter(code=str(value or "").strip()).first()


@transaction.atomic
def task_open(
    *, ticket: Ticket | str, actor, specs: list[TaskSpec], instruction: str = ""
) -> list[CollaborationTask]:
    """Open one task per department (多部门会诊), each owned, timed and on the timeline.

    `instruction` is shared by the specs that have none of their own. Deadlines default
    to the ticket's SLA policy's task targets, else the department's own times.
    """
    ticket = _lock(ticket)
    refused = policies.task_open_refusal(actor, ticket)
    if refused:
        raise PermissionDenied(refused)
    if not ticket.is_open:
        raise ValidationError(_("Closed or merged tickets cannot take collaboration tasks."))
    if not specs:
        raise ValidationError({"tasks": [_("Choose at least one department.")]})
    if len(specs) > 10:
        raise ValidationError({"tasks": [_("At most 10 departments at once.")]})
    now = timezone.now()
    targets = sla_services.task_targets(ticket)  # SLA hook: the policy's task targets
    shared = (instruction or "").strip()
    errors: dict[str, list[str]] = {}
    prepared = []
    seen = set()
    for index, spec in enumerate(specs):
        department = _resolve_department(spec.department)
        problems = []
        if department is None or department.kind != Department.Kind.COLLABORATING:
            problems.append(_("Unknown collaborating department."))
        elif department.pk in seen:
            problems.append(_("%(department)s is listed twice.") % {"department": department.name})
        responsibility = (spec.responsibility or "").strip()
        task_instruction = (spec.instruction or "").strip() or shared
        if not responsibility:
            problems.append(_("Say what this department is responsible for."))
        elif len(responsibility) > 200:
            problems.append(_("Keep the responsibility under 200 characters."))
        if not task_instruction:
            problems.append(_("Write an instruction for the department."))
        elif len(task_instruction) > 5000:
            problems.append(_("Keep the instruction under 5,000 characters."))
        respond, complete = spec.respond_due_at, spec.complete_due_at
        if department is not None and not problems:
            seen.add(department.pk)
            default_respond, default_complete = targets.deadlines(department, now)  # SLA hook
            respond = respond or default_respond
            complete = complete or max(respond, default_complete)
            if respond <= now or complete <= now:
                problems.append(_("Deadlines must be in the future."))
            elif complete < respond:
                problems.append(_("The completion deadline cannot be before the response one."))
        if problems:
            errors[f"tasks[{index}]"] = problems
        else:
            prepared.append((department, responsibility, task_instruction, respond, complete))
    if errors:
        raise ValidationError(errors)

    tasks = []
    for department, responsibility, task_instruction, respond, complete in prepared:
        task = CollaborationTask.objects.create(
            ticket=ticket,
            department=department,
            responsibility=responsibility,
            instruction=task_instruction,
            created_by=actor,
            respond_due_at=respond,
            complete_due_at=complete,
            created_at=now,
        )
        _record(
            ticket,
            actor,
            EventKind.TASK_OPENED,
            task_instruction,
            after={
                "task": task.pk,
                "department": department.name,
                "responsibility": responsibility,
                "respond_due_at": _iso(respond),
                "complete_due_at": _iso(complete),
            },
            task=task,
        )
        tasks.append(task)
    return tasks


def _lock_task(task: CollaborationTask | int) -> CollaborationTask:
    pk = task.pk if isinstance(task, CollaborationTask) else task
    try:
        # No joins in the locking query: after waiting for the lock, PostgreSQL
        # re-reads the locked row but not joined ones, which could be stale.
        return CollaborationTask.objects.select_for_update().get(pk=pk)
    except (CollaborationTask.DoesNotExist, ValueError, TypeError) as exc:
        raise ValidationError(_("No such task.")) from exc


def _require_task(actor, task: CollaborationTask, action: str) -> None:
    refused = policies.task_refusal(actor, task, action)
    if refused:
        raise PermissionDenied(refused)


def _task_state_conflict(task: CollaborationTask, *allowed: str) -> None:
    if task.state in allowed:
        return
    if task.state == TaskState.CLAIMED and task.assignee_id:
        raise Conflict(
            _("%(name)s already claimed this task.")
            % {"name": task.assignee.get_full_name() or task.assignee.get_username()}
        )
    raise Conflict(_("The task is %(state)s.") % {"state": task.get_state_display()})


def _task_text(value: str, field: str, required_message: str, limit: int = 5000) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: [required_message]})
    if len(value) > limit:
        raise ValidationError(
            {field: [_("Keep it under %(limit)s characters.") % {"limit": f"{limit:,}"}]}
        )
    return value


def _task_snapshot(task: CollaborationTask, **extra) -> dict:
    return {"task": task.pk, "department": task.department.name, "state": task.state, **extra}


def _notify_task_owners(task: CollaborationTask, actor, message: str) -> None:
    """Tell the agent who opened the task and the ticket's assignee."""
    recipients = [task.created_by]
    if task.ticket.assignee_id:
        recipients.append(task.ticket.assignee)
    _notify(
        recipients,
        ticket=task.ticket,
        message=message,
        url=_ticket_url(task.ticket),
        actor=actor,
    )


@transaction.atomic
def task_claim(*, task: CollaborationTask | int, actor) -> CollaborationTask:
    """Take an unclaimed task; exactly one of several concurrent claimers wins (409 else)."""
    task = _lock_task(task)
    _require_task(actor, task, "claim")
    _task_state_conflict(task, TaskState.OPEN)
    task.state = TaskState.CLAIMED
    task.assignee = actor
    task.claimed_at = timezone.now()
    task.save(update_fields=["state", "assignee", "claimed_at", "updated_at"])
    _record(
        task.ticket,
        actor,
        EventKind.TASK_CLAIMED,
        task.responsibility,
        before={"state": TaskState.OPEN},
        after=_task_snapshot(task),
        task=task,
    )
    return task


@transaction.atomic
def task_note(*, task: CollaborationTask | int, actor, body: str) -> TimelineEvent:
    task = _lock_task(task)
    _require_task(actor, task, "note")
    _task_state_conflict(task, *ACTIVE_TASK_STATES)
    body = _task_text(body, "body", _("Write the progress first."))
    return _record(
        task.ticket, actor, EventKind.TASK_NOTE, body, after=_task_snapshot(task), task=task
    )


@transaction.atomic
def task_complete(*, task: CollaborationTask | int, actor, result: str) -> CollaborationTask:
    """Finish the task with its result (an unclaimed task is claimed by the finisher)."""
    task = _lock_task(task)
    _require_task(actor, task, "complete")
    _task_state_conflict(task, *ACTIVE_TASK_STATES)
    result = _task_text(result, "result", _("Describe the result for the agent."))
    before = task.state
    now = timezone.now()
    if task.state == TaskState.OPEN:
        task.assignee, task.claimed_at = actor, now
    task.state = TaskState.DONE
    task.result = result
    task.completed_at = now
    task.save()
    _record(
        task.ticket,
        actor,
        EventKind.TASK_COMPLETED,
        result,
        before={"state": before},
        after=_task_snapshot(task),
        task=task,
    )
    _notify_task_owners(
        task,
        actor,
        _("%(department)s completed a task on %(number)s: %(result)s")
        % {"department": task.department.name, "number": task.ticket.number, "result": result},
    )
    return task


@transaction.atomic
def task_return(*, task: CollaborationTask | int, actor, reason: str) -> CollaborationTask:
    """Hand the task back to the agent with a reason (not ours, information missing…)."""
    task = _lock_task(task)
    _require_task(actor, task, "return")
    _task_state_conflict(task, *ACTIVE_TASK_STATES)
    reason = _task_text(reason, "reason", _("Say why the task is returned."), limit=1000)
    before = task.state
    task.state = TaskState.RETURNED
    task.return_reason = reason
    task.save(update_fields=["state", "return_reason", "updated_at"])
    _record(
        task.ticket,
        actor,
        EventKind.TASK_RETURNED,
        reason,
        before={"state": before},
        after=_task_snapshot(task),
        task=task,
    )
    _notify_task_owners(
        task,
        actor,
        _("%(department)s returned a task on %(number)s: %(reason)s")
        % {"department": task.department.name, "number": task.ticket.number, "reason": reason},
    )
    return task


@transaction.atomic
def task_reassign(*, task: CollaborationTask | int, actor, assignee) -> CollaborationTask:
    """A department head gives the task to a member of the department."""
    task = _lock_task(task)
    _require_task(actor, task, "reassign")
    _task_state_conflict(task, *ACTIVE_TASK_STATES)
    profile = getattr(assignee, "profile", None) if assignee is not None else None
    if (
        assignee is None
        or not assignee.is_active
        or profile is None
        or profile.role != Role.DEPARTMENT
        or profile.department_id != task.department_id
    ):
        raise ValidationError(
            {"assignee": [_("Choose an active member of %(d)s.") % {"d": task.department.name}]}
        )
    if task.assignee_id == assignee.pk:
        raise ValidationError({"assignee": [_("The task is already theirs.")]})
    before = {
        "state": task.state,
        "assignee": task.assignee.get_username() if task.assignee else None,
    }
    task.state = TaskState.CLAIMED
    task.assignee = assignee
    task.claimed_at = task.claimed_at or timezone.now()
    task.save(update_fields=["state", "assignee", "claimed_at", "updated_at"])
    _record(
        task.ticket,
        actor,
        EventKind.TASK_REASSIGNED,
        assignee.get_full_name() or assignee.get_username(),
        before=before,
        after=_task_snapshot(task, assignee=assignee.get_username()),
        task=task,
    )
    _notify(
        [assignee],
        ticket=task.ticket,
        message=_("%(who)s gave you a task on %(number)s: %(responsibility)s")
        % {
            "who": actor.get_full_name() or actor.get_username(),
            "number": task.ticket.number,
            "responsibility": task.responsibility,
        },
        url=reverse("workspace:task", args=[task.pk]),
        actor=actor,
    )
    return task


@transaction.atomic
def task_cancel(*, task: CollaborationTask | int, actor, reason: str) -> CollaborationTask:
    task = _lock_task(task)
    _require_task(actor, task, "cancel")
    _task_state_conflict(task, TaskState.OPEN, TaskState.CLAIMED, TaskState.RETURNED)
    reason = _task_text(reason, "reason", _("Say why the task is cancelled."), limit=1000)
    before = task.state
    task.state = TaskState.CANCELLED
    task.save(update_fields=["state", "updated_at"])
    _record(
        task.ticket,
        actor,
        EventKind.TASK_CANCELLED,
        reason,
        before={"state": before},
        after=_task_snapshot(task),
        task=task,
    )
    if task.assignee_id:
        _notify(
            [task.assignee],
            ticket=task.ticket,
            message=_("The task on %(number)s was cancelled: %(reason)s")
            % {"number": task.ticket.number, "reason": reason},
            url=reverse("workspace:task", args=[task.pk]),
            actor=actor,
        )
    return task


@transaction.atomic
def task_resend(
    *, task: CollaborationTask | int, actor, instruction: str = ""
) -> CollaborationTask:
    """Send a returned task to the department again, with fresh deadlines."""
    task = _lock_task(task)
    _require_task(actor, task, "resend")
    _task_state_conflict(task, TaskState.RETURNED)
    if not task.ticket.is_open:
        raise ValidationError(_("Closed or merged tickets cannot take collaboration tasks."))
    instruction = (instruction or "").strip() or task.instruction
    if len(instruction) > 5000:
        raise ValidationError({"instruction": [_("Keep the instruction under 5,000 characters.")]})
    now = timezone.now()
    task.state = TaskState.OPEN
    task.assignee = None
    task.claimed_at = None
    task.instruction = instruction
    targets = sla_services.task_targets(task.ticket)  # SLA hook: the policy's task targets
    task.respond_due_at, task.complete_due_at = targets.deadlines(task.department, now)
    task.save()
    _record(
        task.ticket,
        actor,
        EventKind.TASK_REOPENED,
        instruction,
        before={"state": TaskState.RETURNED},
        after=_task_snapshot(
            task,
            respond_due_at=_iso(task.respond_due_at),
            complete_due_at=_iso(task.complete_due_at),
        ),
        task=task,
    )
    return task


# --- closing the loop: surveys and call-backs ---------------------------------------------

SURVEY_SALT = "closeloop.survey"
# An overall score under this reopens the ticket and escalates it to the team lead.
SURVEY_REOPEN_BELOW = 6


def survey_url(survey: Survey) -> str:
    """The signed, single-use link the customer opens (no login)."""
    signed = signing.TimestampSigner(salt=SURVEY_SALT).sign(survey.token)
    return settings.CLOSELOOP_SITE_URL + reverse("public-survey", args=[signed])


def _current_survey(ticket: Ticket) -> Survey | None:
    return ticket.surveys.order_by("-created_at", "-id").first()


def _start_closing_loop(ticket: Ticket, actor) -> Survey:
    """On resolution: the survey link and the agent's call-backs (day 3 and 7 by default)."""
    now = timezone.now()
    survey = Survey.objects.create(
        ticket=ticket,
        token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + dt.timedelta(days=settings.CLOSELOOP_SURVEY_VALID_DAYS),
    )
    calls = FollowUpCall.objects.bulk_create(
        FollowUpCall(
            ticket=ticket, day=day, due_at=now + dt.timedelta(days=day), assignee=ticket.assignee
        )
        for day in settings.CLOSELOOP_FOLLOWUP_DAYS
    )
    link = survey_url(survey)
    event = _record(
        ticket,
        actor,
        EventKind.SURVEY_SENT,
        link,
        after={
            "survey": survey.pk,
            "expires_at": _iso(survey.expires_at),
            "callbacks": [_iso(call.due_at) for call in calls],
        },
    )
    outbox.resolution_messages(ticket=ticket, event=event, survey_link=link)  # outbox
    return survey


def survey_send_reminders(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Remind customers once of a survey still unanswered after the reminder delay.

    Run hourly by the `survey-reminders` schedule; only resolved tickets whose current
    survey is open and unexpired qualify, so a reopened or closed ticket is left alone.
    """
    days = settings.CLOSELOOP_SURVEY_REMINDER_DAYS
    if days <= 0:
        return 0
    now = now or timezone.now()
    due = list(
        Survey.objects.filter(
            answered_at__isnull=True,
            reminded_at__isnull=True,
            expires_at__gt=now,
            created_at__lte=now - dt.timedelta(days=days),
            ticket__status=Status.RESOLVED,
        ).values_list("pk", "ticket_id")[:limit]
    )
    sent = 0
    for survey_pk, ticket_pk in due:
        with transaction.atomic():
            ticket = _lock(Ticket(pk=ticket_pk))
            survey = Survey.objects.select_for_update().get(pk=survey_pk)
            if survey.reminded_at or survey.answered_at or ticket.status != Status.RESOLVED:
                continue  # answered or reminded meanwhile (another worker)
            if _current_survey(ticket).pk != survey.pk:
                continue
            survey.reminded_at = now
            survey.save(update_fields=["reminded_at"])
            link = survey_url(survey)
            event = _record(ticket, None, EventKind.SURVEY_REMINDED, link)
            outbox.survey_reminder_message(ticket=ticket, event=event, survey_link=link)
            sent += 1
    return sent


def survey_from_link(signed: str) -> Survey:
    """The survey behind a link, or a ValidationError that reveals nothing about tickets."""
    invalid = ValidationError(_("This survey link is invalid or has expired."))
    try:
        token = signing.TimestampSigner(salt=SURVEY_SALT).unsign(
            signed, max_age=dt.timedelta(days=settings.CLOSELOOP_SURVEY_VALID_DAYS)
        )
    except signing.BadSignature as exc:  # includes SignatureExpired
        raise invalid from exc
    survey = Survey.objects.select_related("ticket").filter(token=token).first()
    if survey is None or survey.expires_at < timezone.now():
        raise invalid
    return survey


def _score(data: dict, field: str, low: int, high: int, errors: dict) -> int | None:
    value = data.get(field)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not low <= number <= high:
        errors[field] = [_("Choose a score from %(low)s to %(high)s.") % {"low": low, "high": high}]
        return None
    return number


@transaction.atomic
def survey_answer(*, link: str, answers: dict) -> Survey:
    """Record the customer's answer (once). A low overall score reopens the ticket,
    escalates it to the team lead and tells the lead and the agent."""
    survey = survey_from_link(link)
    ticket = _lock(survey.ticket)
    survey = Survey.objects.select_for_update().get(pk=survey.pk)
    if survey.is_answered:
        raise Conflict(_("This survey has already been answered. Thank you!"))
    errors: dict[str, list[str]] = {}
    scores = {field: _score(answers, field, 1, 5, errors) for field in Survey.DIMENSIONS}
    overall = _score(answers, "overall", 0, 10, errors)
    comment = str(answers.get("comment") or "").strip()
    if len(comment) > 2000:
        errors["comment"] = [_("Keep the comment under 2,000 characters.")]
    if errors:
        raise ValidationError(errors)
    for field, value in scores.items():
        setattr(survey, field, value)
    survey.overall = overall
    survey.comment = comment
    survey.answered_at = timezone.now()
    survey.save()
    _record(
        ticket,
        None,
        EventKind.SURVEY_ANSWERED,
        comment,
        after={"survey": survey.pk, "overall": overall, **scores},
    )
    sla_risks.on_satisfaction(ticket, overall)  # risk signal: satisfaction under 6
    is_current = _current_survey(ticket).pk == survey.pk
    if (
        overall < SURVEY_REOPEN_BELOW
        and is_current
        and ticket.status in (Status.RESOLVED, Status.FOLLOWED_UP, Status.CLOSED)
    ):
        _reopen_after_low_score(ticket, survey)
    return survey


def _reopen_after_low_score(ticket: Ticket, survey: Survey) -> None:
    reason = _("The customer scored %(overall)s/10 in the survey: %(comment)s") % {
        "overall": survey.overall,
        "comment": survey.comment or "—",
    }
    _reopen_locked(ticket, None, reason)
    if ticket.escalation_level < 1:
        ticket.escalation_level = 1
        _save(ticket)
        _record(
            ticket,
            None,
            EventKind.ESCALATED,
            reason,
            before={"escalation_level": 0},
            after={"escalation_level": 1},
        )
    leads = list(
        get_user_model().objects.filter(
            is_active=True, profile__role=Role.SENIOR, profile__department_id=ticket.team_id
        )
    )
    _notify(
        [*leads, ticket.assignee],
        ticket=ticket,
        message=_("%(number)s reopened: the customer scored %(overall)s/10.")
        % {"number": ticket.number, "overall": survey.overall},
        url=_ticket_url(ticket),
    )


def _write_callback_attempt(call: FollowUpCall, ticket: Ticket, actor, outcome: str, note: str):
    """One call attempt on the record and the timeline; only "no answer" leaves it due."""
    call.attempts += 1
    call.outcome = outcome
    call.note = note
    call.recorded_by = actor
    call.recorded_at = timezone.now()
    if outcome != CallbackOutcome.NO_ANSWER:
        call.state = CallbackState.DONE
    call.save()
    _record(
        ticket,
        actor,
        EventKind.CALLBACK,
        note or call.get_outcome_display(),
        after={"callback": call.pk, "day": call.day, "outcome": outcome},
    )


def _complete_due_callback(ticket: Ticket, actor, outcome: str, note: str) -> FollowUpCall:
    """Mark the earliest pending call-back done (or record an ad-hoc one)."""
    call = (
        ticket.callbacks.filter(state=CallbackState.PENDING, message__isnull=True)
        .order_by("due_at", "id")
        .first()
    )
    if call is None:
        call = FollowUpCall(ticket=ticket, day=0, due_at=timezone.now(), assignee=actor)
    _write_callback_attempt(call, ticket, actor, outcome, note)
    return call


@transaction.atomic
def callback_record(
    *, callback: FollowUpCall | int, actor, outcome: str, note: str
) -> FollowUpCall:
    """Record one call-back attempt. Reaching the customer completes it and, while the
    ticket waits for its follow-up, records the follow-up too."""
    pk = callback.pk if isinstance(callback, FollowUpCall) else callback
    ticket_id = FollowUpCall.objects.filter(pk=pk).values_list("ticket_id", flat=True).first()
    if ticket_id is None:
        raise ValidationError(_("No such call-back."))
    ticket = _lock(Ticket(pk=ticket_id))
    call = FollowUpCall.objects.select_for_update().get(pk=pk)
    _require(actor, ticket, "note")
    if call.state != CallbackState.PENDING:
        raise Conflict(
            _("This call-back is already %(state)s.") % {"state": call.get_state_display()}
        )
    errors = {}
    if outcome not in CallbackOutcome.values:
        errors["outcome"] = [_("Choose how the call went.")]
    note = (note or "").strip()
    if outcome == CallbackOutcome.REACHED and not note:
        errors["note"] = [_("Record what the customer said.")]
    if len(note) > 5000:
        errors["note"] = [_("Keep it under 5,000 characters.")]
    if errors:
        raise ValidationError(errors)
    _write_callback_attempt(call, ticket, actor, outcome, note)
    if call.message_id:
        outbox.callback_recorded(call, outcome)  # outbox: the call delivered a message
    follows_up = outcome == CallbackOutcome.REACHED and ticket.status == Status.RESOLVED
    if follows_up and policies.action_refusal(actor, ticket, "follow_up") is None:
        _follow_up_locked(ticket, actor, note)
    return call
