"""Risk signals (风险预警): twelve kinds of alert a lead or supervisor should see early.

Each kind fires at most once per ticket: the (ticket, kind) unique constraint and
`bulk_create(ignore_conflicts=True)` make raising an alert idempotent and safe when
two workers raise the same one at once. Where a signal is raised:

- on ticket creation (`on_ticket_created`): VIP customer, media/regulator words,
  the customer contacted again within 24 h;
- on classification (`on_ticket_classified`): repeat complaint within 30 days
  (same customer and category closed within the window), category volume spike;
- when the sweep sends a breach: first response overdue, solution/closure overdue;
- by the periodic scan (`scan`, with the sweep): compensation request above the
  ceiling, collaboration task unclaimed past its response deadline, ticket assigned
  3+ times, three or more departments on one ticket;
- by hooks for other apps: `on_contact` (a contact appended to an open ticket by the
  intake) and `on_satisfaction` (the survey, another issue).
"""

import datetime as dt
import logging
from decimal import Decimal

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.refcache import ReferenceCache

from .models import RiskAlert, RiskKind, RiskSettings, Severity

logger = logging.getLogger(__name__)

SEVERITY = {
    RiskKind.REPEAT_CONTACT: Severity.MEDIUM,
    RiskKind.FIRST_RESPONSE_OVERDUE: Severity.MEDIUM,
    RiskKind.SOLUTION_OVERDUE: Severity.MEDIUM,
    RiskKind.LOW_SATISFACTION: Severity.HIGH,
    RiskKind.MEDIA_WORDS: Severity.HIGH,
    RiskKind.REPEAT_COMPLAINT: Severity.MEDIUM,
    RiskKind.COMPENSATION_ABOVE_CEILING: Severity.MEDIUM,
    RiskKind.TASK_UNCLAIMED: Severity.MEDIUM,
    RiskKind.REASSIGNED: Severity.MEDIUM,
    RiskKind.MANY_DEPARTMENTS: Severity.LOW,
    RiskKind.VIP: Severity.LOW,
    RiskKind.CATEGORY_SPIKE: Severity.HIGH,
}
# How far back the periodic scan looks for new tasks and assignments.
SCAN_LOOKBACK = dt.timedelta(days=2)


# Read on every new ticket and contact; an admin saving the settings invalidates it (sla.apps).
settings_cache = ReferenceCache("risk-settings", RiskSettings.load)


def current_settings() -> RiskSettings:
    """The risk settings (read-only; no query while the cached copy is fresh)."""
    return settings_cache.get()


def _alert(ticket_id: int, customer_id: int, kind: str, message: str) -> RiskAlert:
    return RiskAlert(
        ticket_id=ticket_id,
        customer_id=customer_id,
        kind=kind,
        severity=SEVERITY[kind],
        message=message[:300],
    )


def _raise(alerts: list[RiskAlert]) -> None:
    if alerts:
        RiskAlert.objects.bulk_create(alerts, ignore_conflicts=True)


def raise_alert(ticket, kind: str, message: str) -> None:
    _raise([_alert(ticket.pk, ticket.customer_id, kind, message)])


def media_words_in(text: str, settings: RiskSettings) -> list[str]:
    return [word for word in settings.words() if word in (text or "")]


# --- event hooks -------------------------------------------------------------------------


def on_ticket_created(
    ticket, settings: RiskSettings | None = None, *, new_customer: bool = False
) -> None:
    """VIP customer, media words in the complaint, a customer back within 24 h
    (`new_customer`: created just now, so no earlier contact to look for)."""
    from complaints.models import Contact

    settings = settings or current_settings()
    alerts = []
    customer = ticket.customer
    if customer.vip_level >= settings.vip_min_level:
        alerts.append(
            _alert(
                ticket.pk,
                customer.pk,
                RiskKind.VIP,
                _("VIP level %(level)d customer %(name)s complained.")
                % {"level": customer.vip_level, "name": customer.name},
            )
        )
    words = media_words_in(f"{ticket.subject}\n{ticket.body}", settings)
    if words:
        alerts.append(
            _alert(
                ticket.pk,
                customer.pk,
                RiskKind.MEDIA_WORDS,
                _("The complaint mentions: %(words)s") % {"words": "、".join(words)},
            )
        )
    since = ticket.created_at - dt.timedelta(hours=settings.repeat_contact_hours)
    earlier = (
        not new_customer
        and Contact.objects.filter(ticket__customer_id=customer.pk, occurred_at__gte=since)
        .exclude(ticket_id=ticket.pk)
        .exists()
    )
    if earlier:
        alerts.append(_repeat_contact(ticket, settings))
    _raise(alerts)


def _repeat_contact(ticket, settings: RiskSettings) -> RiskAlert:
    return _alert(
        ticket.pk,
        ticket.customer_id,
        RiskKind.REPEAT_CONTACT,
        _("The customer contacted us again within %(hours)d hours.")
        % {"hours": settings.repeat_contact_hours},
    )


def on_contact(ticket, contact, settings: RiskSettings | None = None) -> None:
    """A further contact on an existing ticket (for the intake): words and repeat contact."""
    settings = settings or current_settings()
    alerts = []
    words = media_words_in(contact.body, settings)
    if words:
        alerts.append(
            _alert(
                ticket.pk,
                ticket.customer_id,
                RiskKind.MEDIA_WORDS,
                _("A contact mentions: %(words)s") % {"words": "、".join(words)},
            )
        )
    window = dt.timedelta(hours=settings.repeat_contact_hours)
    previous = (
        ticket.contacts.exclude(pk=contact.pk)
        .filter(occurred_at__gte=contact.occurred_at - window, occurred_at__lte=contact.occurred_at)
        .exists()
    )
    if previous:
        alerts.append(_repeat_contact(ticket, settings))
    _raise(alerts)


def on_ticket_classified(ticket, settings: RiskSettings | None = None) -> None:
    """Repeat complaint (same customer and category closed recently) and category spike."""
    from complaints.models import Ticket

    if ticket.category_id is None:
        return
    settings = settings or current_settings()
    now = timezone.now()
    alerts = []
    since = now - dt.timedelta(days=settings.repeat_complaint_days)
    # A customer created with this very ticket (`ticket_create(new_customer=True)`) has
    # no closed ticket to repeat.
    repeat = (
        None
        if ticket.__dict__.get("_new_customer")
        else Ticket.objects.filter(
            customer_id=ticket.customer_id, category_id=ticket.category_id, closed_at__gte=since
        )
        .exclude(pk=ticket.pk)
        .order_by("-closed_at")
        .values_list("number", flat=True)
        .first()
    )
    if repeat:
        alerts.append(
            _alert(
                ticket.pk,
                ticket.customer_id,
                RiskKind.REPEAT_COMPLAINT,
                _("Same customer and category as %(number)s, closed within %(days)d days.")
                % {"number": repeat, "days": settings.repeat_complaint_days},
            )
        )
    spike = _category_spike(ticket, settings, now)
    if spike:
        alerts.append(spike)
    _raise(alerts)


# The trailing days' count changes only when older tickets are (re)classified; a
# few minutes' staleness does not move a daily average.
SPIKE_BASELINE_SECONDS = 600


def _category_spike(ticket, settings: RiskSettings, now: dt.datetime) -> RiskAlert | None:
    """A spike alert when today's tickets in the category pass the threshold, once a day.

    Runs on every classification, so its cost must not grow with the day's volume:
    a category already flagged today is remembered until midnight, the trailing
    count is cached, and today's tickets are counted only up to the threshold.
    """
    from complaints.models import Ticket

    local_midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    day = f"{ticket.category_id}:{local_midnight:%Y%m%d}"
    flagged_key = f"risk-spike-flagged:{day}"
    if cache.get(flagged_key):
        return None
    # One spike alert per category and day, on the ticket that tipped it.
    already = RiskAlert.objects.filter(
        kind=RiskKind.CATEGORY_SPIKE,
        ticket__category_id=ticket.category_id,
        created_at__gte=local_midnight,
    ).exists()
    if already:
        until_midnight = local_midnight + dt.timedelta(days=1) - now
        cache.set(flagged_key, True, timeout=max(1, int(until_midnight.total_seconds())))
        return None

    days = settings.spike_trailing_days
    baseline_key = f"risk-spike-baseline:{day}:{days}"
    before = cache.get(baseline_key)
    if before is None:
        before = Ticket.objects.filter(
            category_id=ticket.category_id,
            created_at__gte=local_midnight - dt.timedelta(days=days),
            created_at__lt=local_midnight,
        ).count()
        cache.set(baseline_key, before, timeout=SPIKE_BASELINE_SECONDS)
    average = Decimal(before) / days
    # A spike: at least spike_min_count today and more than spike_factor × average.
    needed = max(settings.spike_min_count, int(settings.spike_factor * average) + 1)
    # Runs before the ticket's own save: its row does not carry the category yet.
    others_today = Ticket.objects.filter(
        category_id=ticket.category_id, created_at__gte=local_midnight
    ).exclude(pk=ticket.pk)
    own = int(ticket.created_at >= local_midnight)
    if others_today[:needed].count() + own < needed:
        return None
    today = others_today.count() + own  # the exact figure, once a day, for the message
    return _alert(
        ticket.pk,
        ticket.customer_id,
        RiskKind.CATEGORY_SPIKE,
        _("%(category)s: %(today)d tickets today against %(average)s a day before.")
        % {
            "category": ticket.category.full_name,
            "today": today,
            "average": f"{average:.1f}",
        },
    )


def on_breach(ticket, stage: str) -> None:
    """Called by the sweep when a clock breaches."""
    if stage == "first_response":
        raise_alert(ticket, RiskKind.FIRST_RESPONSE_OVERDUE, _("The first response is overdue."))
    elif stage in ("solution", "closure"):
        raise_alert(ticket, RiskKind.SOLUTION_OVERDUE, _("The solution or the closure is overdue."))


def on_satisfaction(ticket, score: int, settings: RiskSettings | None = None) -> bool:
    """For the survey (another issue): a score under the threshold raises an alert."""
    settings = settings or current_settings()
    if score is None or score >= settings.satisfaction_below:
        return False
    raise_alert(
        ticket,
        RiskKind.LOW_SATISFACTION,
        _("Satisfaction score %(score)s (below %(limit)d).")
        % {"score": score, "limit": settings.satisfaction_below},
    )
    return True


# --- the periodic scan -----------------------------------------------------------------------


def scan(now: dt.datetime | None = None, settings: RiskSettings | None = None) -> None:
    """Set-based checks over recent rows; cheap to repeat (existing alerts are skipped)."""
    from complaints.models import (
        OPEN_STATUSES,
        CollaborationTask,
        Compensation,
        CompensationState,
        EventKind,
        TaskState,
        TimelineEvent,
    )

    now = now or timezone.now()
    settings = settings or current_settings()
    since = now - SCAN_LOOKBACK
    alerts = []

    requests = (
        Compensation.objects.filter(
            state=CompensationState.REQUESTED, amount__gt=settings.compensation_ceiling
        )
        .exclude(ticket__risk_alerts__kind=RiskKind.COMPENSATION_ABOVE_CEILING)
        .values_list("ticket_id", "ticket__customer_id", "amount")
    )
    for ticket_id, customer_id, amount in requests:
        alerts.append(
            _alert(
                ticket_id,
                customer_id,
                RiskKind.COMPENSATION_ABOVE_CEILING,
                _("Compensation of ¥%(amount)s requested (ceiling ¥%(ceiling)s).")
                % {"amount": amount, "ceiling": settings.compensation_ceiling},
            )
        )

    unclaimed = (
        CollaborationTask.objects.filter(state=TaskState.OPEN, respond_due_at__lt=now)
        .exclude(ticket__risk_alerts__kind=RiskKind.TASK_UNCLAIMED)
        .values_list("ticket_id", "ticket__customer_id", "department__name")
    )
    for ticket_id, customer_id, department in unclaimed:
        alerts.append(
            _alert(
                ticket_id,
                customer_id,
                RiskKind.TASK_UNCLAIMED,
                _("%(department)s has not claimed its task past the response deadline.")
                % {"department": department},
            )
        )

    recently_assigned = TimelineEvent.objects.filter(
        kind=EventKind.ASSIGNED, created_at__gte=since
    ).values("ticket_id")
    passed_around = (
        TimelineEvent.objects.filter(
            kind=EventKind.ASSIGNED,
            ticket_id__in=recently_assigned,
            ticket__status__in=OPEN_STATUSES,
        )
        .exclude(ticket__risk_alerts__kind=RiskKind.REASSIGNED)
        .values("ticket_id", "ticket__customer_id")
        .annotate(n=Count("id"))
        .filter(n__gte=settings.assignment_count)
    )
    for row in passed_around:
        alerts.append(
            _alert(
                row["ticket_id"],
                row["ticket__customer_id"],
                RiskKind.REASSIGNED,
                _("Assigned %(n)d times: the ticket is being passed around.") % {"n": row["n"]},
            )
        )

    recent_tasks = CollaborationTask.objects.filter(created_at__gte=since).values("ticket_id")
    crowded = (
        CollaborationTask.objects.filter(ticket_id__in=recent_tasks)
        .exclude(ticket__risk_alerts__kind=RiskKind.MANY_DEPARTMENTS)
        .values("ticket_id", "ticket__customer_id")
        .annotate(n=Count("department_id", distinct=True))
        .filter(n__gte=settings.department_count)
    )
    for row in crowded:
        alerts.append(
            _alert(
                row["ticket_id"],
                row["ticket__customer_id"],
                RiskKind.MANY_DEPARTMENTS,
                _("%(n)d departments are involved.") % {"n": row["n"]},
            )
        )
    _raise(alerts)


# --- the risk board ----------------------------------------------------------------------------


def visible_alerts(user):
    """Alerts a lead (their team's tickets and unassigned ones) or supervisor may see."""
    from complaints import policies

    tier = policies.tier_of(user)
    if tier < 2:
        return RiskAlert.objects.none()
    qs = RiskAlert.objects.select_related("ticket__team", "customer", "acknowledged_by")
    if tier == 2:
        team_id = policies.team_id_of(user)
        qs = qs.filter(Q(ticket__team_id=team_id) | Q(ticket__team__isnull=True))
    return qs


@transaction.atomic
def acknowledge(*, alert, actor) -> RiskAlert:
    """A lead or supervisor has seen the alert and taken it on."""
    from complaints.services import Conflict

    pk = alert.pk if isinstance(alert, RiskAlert) else alert
    try:
        visible = visible_alerts(actor).filter(pk=int(pk)).exists()
    except (TypeError, ValueError) as exc:
        raise ValidationError(_("No such alert.")) from exc
    if not visible:
        raise PermissionDenied(_("Risk alerts are for team leads and supervisors."))
    alert = RiskAlert.objects.select_for_update().get(pk=pk)
    if alert.acknowledged_at is not None:
        raise Conflict(_("Someone already acknowledged this alert."))
    alert.acknowledged_by = actor
    alert.acknowledged_at = timezone.now()
    alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
    return alert
