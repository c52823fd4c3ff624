"""The four-stage SLA panel on the ticket page."""

import datetime as dt

from django import template
from django.utils.translation import gettext as _

from complaints import policies
from sla import selectors

register = template.Library()


@register.inclusion_tag("sla/partials/sla_panel.html", takes_context=True)
def sla_panel(context, ticket):
    user = context["request"].user
    can_pause = ticket.is_open and policies.action_refusal(user, ticket, "reply") is None
    return {
        "ticket": ticket,
        "rows": selectors.ticket_sla_rows(ticket),
        "can_pause": can_pause,
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def span(value: dt.timedelta) -> str:
    """A duration as people read targets: 4h, 5d, 1d 2h, 30m."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(_("%(d)dd") % {"d": days})
    if hours:
        parts.append(_("%(h)dh") % {"h": hours})
    if mins or not parts:
        parts.append(_("%(m)dm") % {"m": mins})
    return " ".join(parts)
