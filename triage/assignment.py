"""Picking the agent for a ticket within a skill group, race-safe.

The availability rows of the group's on-duty members are locked (SELECT … FOR UPDATE,
in primary-key order so two pickers never deadlock) before the open tickets are counted.
A second intake picking from the same group waits for the first one's transaction to
commit and then counts its ticket too: two intakes never both take an agent's last
free slot, and round robin never hands two tickets to the same "next" agent. SQLite
locks the whole database for a write transaction, which serializes pickers as well.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.models import ACTIVE_STATUSES, Role, Ticket

from .models import AgentAvailability, SkillGroup

# Roles that take tickets from a skill group.
ASSIGNABLE_ROLES = (Role.AGENT, Role.SENIOR)


@dataclass(frozen=True)
class Pick:
    user: object | None
    open_tickets: int = 0
    reason: str = ""  # why nobody was picked


def open_ticket_counts(user_ids) -> dict[int, int]:
    rows = (
        Ticket.objects.filter(assignee_id__in=list(user_ids), status__in=ACTIVE_STATUSES)
        .values_list("assignee_id")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def pick_agent(group: SkillGroup, *, exclude_user_id: int | None = None) -> Pick:
    """Lock the group's on-duty members, pick one by the group's strategy, mark the pick.

    Must run inside the transaction that then assigns the ticket.
    """
    User = get_user_model()
    members = User.objects.filter(
        skill_groups=group,
        is_active=True,
        profile__department_id=group.team_id,
        profile__role__in=ASSIGNABLE_ROLES,
    ).values("pk")
    rows = list(
        AgentAvailability.objects.select_for_update(of=("self",))
        .filter(user_id__in=members, status=AgentAvailability.Status.ON_DUTY)
        .order_by("pk")
    )
    if exclude_user_id is not None:
        rows = [r for r in rows if r.user_id != exclude_user_id]
    if not rows:
        return Pick(None, reason=_("nobody on duty"))
    counts = open_ticket_counts(r.user_id for r in rows)
    free = [r for r in rows if counts.get(r.user_id, 0) < group.max_open_per_agent]
    if not free:
        return Pick(None, reason=_("everyone on duty is at the cap"))
    never = timezone.now().replace(year=1970)
    if group.strategy == SkillGroup.Strategy.LEAST_OPEN:
        chosen = min(
            free, key=lambda r: (counts.get(r.user_id, 0), r.last_assigned_at or never, r.pk)
        )
    else:
        chosen = min(free, key=lambda r: (r.last_assigned_at or never, r.pk))
    chosen.last_assigned_at = timezone.now()
    chosen.save(update_fields=["last_assigned_at"])
    user = User.objects.select_related("profile").get(pk=chosen.user_id)
    return Pick(user, open_tickets=counts.get(chosen.user_id, 0))
