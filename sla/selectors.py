"""Reads of the SLA engine: the ticket page's four-stage panel and the SLA report."""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from .models import STAGE_ORDER, Clock, Stage, WarningLevel

# Running clocks from this warning level on show amber.
AMBER_FROM_LEVEL = WarningLevel.SECOND


@dataclass
class StageRow:
    stage: str
    label: str
    target: dt.timedelta
    started_at: dt.datetime
    due_at: dt.datetime
    met_at: dt.datetime | None
    paused: bool
    paused_for: dt.timedelta
    state: str  # met, met_late, running, paused, overdue, stopped
    css: str  # green, amber, red, muted


def _row(clock: Clock, now: dt.datetime, ticket_open: bool) -> StageRow:
    if clock.met_at is not None:
        state = "met_late" if clock.met_at > clock.due_at else "met"
        css = "red" if state == "met_late" else "green"
    elif clock.paused_at is not None:
        state, css = "paused", "muted"
    elif not ticket_open:
        state, css = "stopped", "muted"
    elif clock.due_at <= now:
        state, css = "overdue", "red"
    else:
        state = "running"
        css = "amber" if clock.warned_level >= AMBER_FROM_LEVEL else "green"
    paused_for = dt.timedelta(seconds=clock.paused_seconds)
    if clock.paused_at is not None:
        paused_for += max(now - clock.paused_at, dt.timedelta(0))
    return StageRow(
        stage=clock.stage,
        label=str(Stage(clock.stage).label),
        target=dt.timedelta(minutes=clock.target_minutes),
        started_at=clock.started_at,
        due_at=clock.due_at,
        met_at=clock.met_at,
        paused=clock.paused_at is not None,
        paused_for=paused_for,
        state=state,
        css=css,
    )


def ticket_sla_rows(ticket, now: dt.datetime | None = None) -> list[StageRow]:
    """The ticket's four clocks in lifecycle order (one query; empty for clock-less tickets)."""
    now = now or timezone.now()
    clocks = {c.stage: c for c in Clock.objects.filter(ticket_id=ticket.pk)}
    return [_row(clocks[s], now, ticket.is_open) for s in STAGE_ORDER if s in clocks]
