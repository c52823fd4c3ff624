"""Template helpers for the workspace: SLA countdown badges and status colours."""

from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from complaints import policies

register = template.Library()

# Less than this much time left turns the countdown amber.
AMBER_SECONDS = 3600


def _duration(seconds: int) -> str:
    minutes = seconds // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)dd %(h)dh") % {"d": days, "h": hours}
    if hours:
        return _("%(h)dh %(m)dm") % {"h": hours, "m": mins}
    return _("%(m)dm") % {"m": mins}


@register.inclusion_tag("complaints/partials/sla_badge.html")
def sla_badge(due_at):
    """Countdown to the next deadline: green, amber within an hour, red once overdue."""
    if due_at is None:
        return {"css": "muted", "text": "—", "due_at": None}
    remaining = int((due_at - timezone.now()).total_seconds())
    if remaining < 0:
        return {
            "css": "red",
            "text": _("%(t)s overdue") % {"t": _duration(-remaining)},
            "due_at": due_at,
        }
    css = "amber" if remaining < AMBER_SECONDS else "green"
    return {"css": css, "text": _("%(t)s left") % {"t": _duration(remaining)}, "due_at": due_at}


@register.filter
def status_css(status: str) -> str:
    return {
        "received": "st-new",
        "classified": "st-new",
        "assigned": "st-work",
        "in_progress": "st-work",
        "resolved": "st-done",
        "followed_up": "st-done",
        "closed": "st-closed",
        "merged": "st-closed",
    }.get(status, "")


@register.filter
def display_name(user, empty="—") -> str:
    """A staff member's full name, or their username; `empty` when there is no user."""
    if user is None:
        return empty
    return user.get_full_name() or user.get_username()


# Keys of an event's before/after that are internal references, not for people.
HIDDEN_EVENT_KEYS = {"status", "task", "compensation", "number"}

EVENT_KEY_LABELS = {
    "department": gettext_lazy("department"),
    "responsibility": gettext_lazy("responsibility"),
    "respond_due_at": gettext_lazy("respond by"),
    "complete_due_at": gettext_lazy("complete by"),
    "state": gettext_lazy("state"),
    "kind": gettext_lazy("kind"),
    "amount": gettext_lazy("amount"),
    "ticket_total": gettext_lazy("ticket total"),
    "approver_tier": gettext_lazy("approval needed from"),
    "assignee": gettext_lazy("assignee"),
}


def _event_value(key: str, value):
    """A stored before/after value as people read it (labels, yuan, local time)."""
    from complaints.models import CompensationKind, CompensationState, TaskState, Tier

    if value is None or value == "":
        return value
    if key in ("amount", "ticket_total"):
        return yuan(value)
    if key == "approver_tier":
        return Tier(value).label if value in Tier.values else value
    if key == "kind" and value in CompensationKind.values:
        return CompensationKind(value).label
    if key == "state":
        for choices in (TaskState, CompensationState):
            if value in choices.values:
                return choices(value).label
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        parsed = parse_datetime(value)
        if parsed is not None:
            return date_format(timezone.localtime(parsed), "Y-m-d H:i")
    return value


@register.filter
def event_changes(event) -> list[tuple[str, object, object]]:
    """(label, before, after) for each value an event changed, references excluded."""
    from complaints.models import Ticket

    changes = []
    for key, after in event.after.items():
        before = event.before.get(key)
        if key in HIDDEN_EVENT_KEYS or before == after:
            continue
        label = EVENT_KEY_LABELS.get(key)
        if label is None:
            try:
                label = Ticket._meta.get_field(key).verbose_name
            except Exception:  # noqa: BLE001 - keys that are not ticket fields keep their name
                label = key.replace("_", " ")
        changes.append((label, _event_value(key, before), _event_value(key, after)))
    return changes


@register.filter
def yuan(amount) -> str:
    """A CNY amount as ¥1,234.50 ("—" when there is none)."""
    if amount is None or amount == "":
        return "—"
    return f"¥{Decimal(amount):,.2f}"


@register.filter
def can_decide(compensation, user) -> bool:
    """Whether `user` may approve or reject this pending compensation request."""
    return policies.decision_refusal(user, compensation) is None


@register.filter
def get_item(mapping, key):
    """`mapping[key]` in a template (None when missing)."""
    return mapping.get(key) if hasattr(mapping, "get") else None
