"""Who may do what to a ticket.

Pure functions over already-loaded objects (no queries beyond the user's profile),
used by services to enforce and by pages to show only the buttons a user may press.
"""

from django.utils.translation import gettext as _

from .models import SERVICE_ROLES, Role, Ticket, Tier


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


def is_department_staff(user) -> bool:
    return role_of(user) == Role.DEPARTMENT


def is_department_head(user) -> bool:
    profile = getattr(user, "profile", None)
    return is_department_staff(user) and bool(profile and profile.is_head)


def can_view_ticket(user, ticket: Ticket) -> bool:
    """Service staff see every ticket; department staff only those their department
    has collaboration tasks on (one query). Everyone else sees none."""
    if is_service_staff(user):
        return True
    if is_department_staff(user) and team_id_of(user):
        return ticket.tasks.filter(department_id=team_id_of(user)).exists()
    return False


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


# --- compensation ------------------------------------------------------------------


def compensation_refusal(user, ticket: Ticket) -> str | None:
    """Why `user` may not grant or request compensation on `ticket`, or None."""
    role = role_of(user)
    if role == Role.DEPARTMENT:
        return _("Department staff cannot grant compensation.")
    if role not in SERVICE_ROLES:
        return _("Only customer-service staff can grant compensation.")
    if role in (Role.SUPERVISOR, Role.ADMIN) or _in_team(user, ticket):
        return None
    return _("This ticket belongs to another team.")


def decision_refusal(user, compensation) -> str | None:
    """Why `user` may not approve or reject a compensation request, or None."""
    tier = tier_of(user)
    if tier < 2:
        return _("Only team leads and supervisors decide compensation requests.")
    if compensation.requested_by_id == user.pk:
        return _("Nobody can decide their own request; another approver must.")
    if tier < (compensation.approver_tier or 3):
        return _("This request needs approval from %(tier)s.") % {
            "tier": Tier(compensation.approver_tier or Tier.SUPERVISOR).label
        }
    if role_of(user) == Role.SENIOR and not _in_team(user, compensation.ticket):
        return _("This request belongs to another team.")
    return None


# --- collaboration tasks -------------------------------------------------------------

# Actions department staff take on their department's tasks; agents open, cancel and
# resend them.
DEPARTMENT_TASK_ACTIONS = ("claim", "note", "complete", "return", "reassign")
AGENT_TASK_ACTIONS = ("cancel", "resend")


def task_open_refusal(user, ticket: Ticket) -> str | None:
    role = role_of(user)
    if role not in SERVICE_ROLES:
        return _("Only customer-service staff can open collaboration tasks.")
    if role in (Role.SUPERVISOR, Role.ADMIN) or _in_team(user, ticket):
        return None
    return _("This ticket belongs to another team.")


def task_refusal(user, task, action: str) -> str | None:
    """Why `user` may not take `action` on a collaboration task, or None (state aside)."""
    if action in AGENT_TASK_ACTIONS:
        return task_open_refusal(user, task.ticket)
    if not is_department_staff(user) or team_id_of(user) != task.department_id:
        return _("Only staff of %(department)s can work this task.") % {
            "department": task.department.name
        }
    if action == "claim":
        return None
    head = is_department_head(user)
    if action == "reassign":
        return None if head else _("Only the department head can reassign tasks.")
    if task.assignee_id and task.assignee_id != user.pk and not head:
        return _("This task is claimed by a colleague.")
    return None
