"""Who may do what to a ticket.

Pure functions over already-loaded objects (no queries beyond the user's profile),
used by services to enforce and by pages to show only the buttons a user may press.
"""

from django.utils.translation import gettext as _

from .models import SERVICE_ROLES, Role, Ticket


def role_of(user) -> str | None:
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    profile = getattr(user, "profile", None)
    return profile.role if profile else None


def tier_of(user) -> int:
    return {Role.AGENT: 1, Role.SENIOR: 2, Role.SUPERVISOR: 3, Role.ADMIN: 3}.get(role_of(user), 0)


def team_id_of(user) -> int | None:
    profile = getattr(user, "profile", None)
    return profile.department_id if profile else None


def is_service_staff(user) -> bool:
    return role_of(user) in SERVICE_ROLES


def can_view_ticket(user, ticket: Ticket) -> bool:
    # Department staff reach tickets only through their department's collaboration
    # tasks; until a ticket has one for them, it does not exist for them.
    return is_service_staff(user)


def _in_team(user, ticket: Ticket) -> bool:
    return ticket.team_id is None or ticket.team_id == team_id_of(user)


# The lifecycle transitions in the order of the closed loop (buttons, API docs).
LIFECYCLE_ACTIONS = (
    "classify",
    "assign",
    "first_response",
    "start",
    "resolve",
    "follow_up",
    "close",
    "reopen",
    "merge",
)

# Transitions the ticket's owner works; leads may do them for their whole team.
OWNER_ACTIONS = {
    "first_response",
    "start",
    "resolve",
    "follow_up",
    "close",
    "reopen",
    "merge",
    "reply",
}


def action_refusal(user, ticket: Ticket, action: str, *, assignee=None) -> str | None:
    """Why `user` may not run `action` on `ticket`, or None if they may.

    `assignee` is the intended assignee for "assign" (tier-1 agents may only take
    tickets for themselves).
    """
    role = role_of(user)
    if role not in SERVICE_ROLES:
        return _("Only customer-service staff can work tickets.")
    if role in (Role.SUPERVISOR, Role.ADMIN):
        return None
    if action in ("note", "escalate", "attachment"):
        return None
    if not _in_team(user, ticket):
        return _("This ticket belongs to another team.")
    if role == Role.SENIOR:
        return None
    # Tier-1 agent.
    owns = ticket.assignee_id == user.pk
    if action == "classify":
        if ticket.assignee_id and not owns:
            return _("Only the assignee or a team lead can reclassify this ticket.")
        return None
    if action == "assign":
        if assignee is not None and assignee.pk != user.pk:
            return _(
                "Agents can only take tickets for themselves; ask a team lead to assign others."
            )
        if ticket.assignee_id and not owns:
            return _("This ticket is already assigned to someone else.")
        return None
    if action in OWNER_ACTIONS and not owns:
        return _("Only the assignee or a team lead can do this.")
    return None
