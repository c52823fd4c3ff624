"""Template helpers for the workspace: SLA countdown badges and status colours."""

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

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


@register.filter
def event_changes(event) -> list[tuple[str, object, object]]:
    """(label, before, after) for each value an event changed, status excluded."""
    from complaints.models import Ticket

    changes = []
    for key, after in event.after.items():
        before = event.before.get(key)
        if key == "status" or before == after:
            continue
        try:
            label = Ticket._meta.get_field(key).verbose_name
        except Exception:  # noqa: BLE001 - keys that are not ticket fields keep their name
            label = key.replace("_", " ")
        changes.append((label, before, after))
    return changes
