"""SLA deadlines for tickets.

The departments' default targets: first response within 4 h, initial assessment
within 24 h, solution within 72 h, closure within 5 days, all from receipt. The SLA
engine (policies, business calendars, warnings) builds on these columns.
"""

from datetime import timedelta

DEFAULT_TARGETS = {
    "first_response": timedelta(hours=4),
    "assessment": timedelta(hours=24),
    "solution": timedelta(hours=72),
    "closure": timedelta(days=5),
}


def ticket_set_deadlines(ticket) -> None:
    """Fill the stage deadlines of a new ticket from its receipt time."""
    start = ticket.created_at
    ticket.first_response_due_at = start + DEFAULT_TARGETS["first_response"]
    ticket.resolve_due_at = start + DEFAULT_TARGETS["solution"]
    ticket.close_due_at = start + DEFAULT_TARGETS["closure"]
    ticket_refresh_due_at(ticket)


def ticket_refresh_due_at(ticket) -> None:
    """Point `due_at` (the indexed queue sort key) at the next deadline that matters."""
    if ticket.status in ("closed", "merged"):
        ticket.due_at = None
    elif ticket.first_responded_at is None:
        ticket.due_at = ticket.first_response_due_at
    elif ticket.resolved_at is None:
        ticket.due_at = ticket.resolve_due_at
    else:
        ticket.due_at = ticket.close_due_at
