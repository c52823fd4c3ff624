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


CLOCK_STATES = ("met", "met_late", "running", "paused", "overdue", "stopped")


def clock_state(clock: Clock, now: dt.datetime, ticket_open: bool) -> tuple[str, str]:
    """(state, colour) of one clock: met, met_late, running, paused, overdue, stopped."""
    if clock.met_at is not None:
        state = "met_late" if clock.met_at > clock.due_at else "met"
        return state, "red" if state == "met_late" else "green"
    if clock.paused_at is not None:
        return "paused", "muted"
    if not ticket_open:
        return "stopped", "muted"
    if clock.due_at <= now:
        return "overdue", "red"
    return "running", "amber" if clock.warned_level >= AMBER_FROM_LEVEL else "green"


def _row(clock: Clock, now: dt.datetime, ticket_open: bool) -> StageRow:
    state, css = clock_state(clock, now, ticket_open)
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


# --- the SLA report ----------------------------------------------------------------------


@dataclass
class StageRate:
    stage: str
    label: str
    on_time: int
    late: int
    pending: int

    @property
    def decided(self) -> int:
        return self.on_time + self.late

    @property
    def rate(self) -> float | None:
        """Share met within target among clocks already decided (met, or overdue)."""
        return self.on_time / self.decided * 100 if self.decided else None


@dataclass
class SlaReport:
    start: dt.datetime
    end: dt.datetime
    tickets: int
    stages: list[StageRate]
    by_team: list[dict]
    by_category: list[dict]


def _late(now: dt.datetime):
    from django.db.models import F, Q

    return Q(met_at__gt=F("due_at")) | Q(
        met_at__isnull=True, paused_at__isnull=True, due_at__lt=now
    )


def sla_report(start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None) -> SlaReport:
    """Rates and breaches of tickets received in [start, end); four aggregate queries.

    A clock counts as on time when its step happened by the due time, late when it
    happened after it or is still open past it; clocks still running (or paused) within
    their time are pending and left out of the rate. Merged tickets are left out.
    """
    from django.db.models import Count, F, Q

    from complaints.models import Status, Ticket

    now = now or timezone.now()
    received = Q(ticket__created_at__gte=start, ticket__created_at__lt=end)
    clocks = Clock.objects.filter(received).exclude(ticket__status=Status.MERGED)
    late = _late(now)
    on_time = Q(met_at__isnull=False, met_at__lte=F("due_at"))
    rows = {
        row["stage"]: row
        for row in clocks.values("stage").annotate(
            total=Count("id"),
            on_time=Count("id", filter=on_time),
            late=Count("id", filter=late),
        )
    }
    stages = []
    for stage in STAGE_ORDER:
        row = rows.get(stage, {"total": 0, "on_time": 0, "late": 0})
        stages.append(
            StageRate(
                stage=stage,
                label=str(Stage(stage).label),
                on_time=row["on_time"],
                late=row["late"],
                pending=row["total"] - row["on_time"] - row["late"],
            )
        )
    breached = clocks.filter(late)
    by_team = list(
        breached.values(team=F("ticket__team__name"))
        .annotate(breaches=Count("id"), tickets=Count("ticket_id", distinct=True))
        .order_by("-breaches", "team")
    )
    by_category = list(
        breached.values(
            parent=F("ticket__category__parent__name"), category=F("ticket__category__name")
        )
        .annotate(breaches=Count("id"), tickets=Count("ticket_id", distinct=True))
        .order_by("-breaches", "parent", "category")
    )
    tickets = (
        Ticket.objects.filter(created_at__gte=start, created_at__lt=end)
        .exclude(status=Status.MERGED)
        .count()
    )
    return SlaReport(
        start=start,
        end=end,
        tickets=tickets,
        stages=stages,
        by_team=by_team,
        by_category=by_category,
    )
