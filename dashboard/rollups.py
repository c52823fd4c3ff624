"""Compute and store the dashboard's daily rollups (definitions: docs/metrics.md).

`compute(first, last)` aggregates the tickets received on those local days, with their
SLA clocks, surveys, collaboration tasks and compensation, into rows keyed by
(day, channel, category, team): five grouped queries, whatever the number of tickets.
`refresh(first, last)` replaces the stored rows of those days with freshly computed
ones in one transaction. The dashboard reads stored rows for past days and calls
`compute` for today, so today's figures are always current.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Sum,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from complaints.models import (
    PAID_COMPENSATION_STATES,
    Attachment,
    CollaborationTask,
    Compensation,
    Status,
    Survey,
    TaskState,
    Ticket,
)
from sla.models import Clock

from .models import (
    DIMENSIONS,
    STAGE_PREFIX,
    CompensationDay,
    CompensationMonth,
    RollupState,
    TaskDay,
    TaskMonth,
    TicketDay,
    TicketMonth,
)

KEY = ("day", "channel_id", "category_id", "team_id")
TICKET_FIELDS = tuple(
    f.name
    for f in TicketDay._meta.get_fields()
    if f.concrete and f.name not in ("id", "day", "channel", "category", "team")
)
TASK_FIELDS = (
    "opened",
    "responded",
    "responded_on_time",
    "response_seconds",
    "completed",
    "completion_seconds",
)


@dataclass
class Rows:
    tickets: list[dict]
    tasks: list[dict]
    compensations: list[dict]


def day_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first 00:00, the day after `last` 00:00) in the local time zone."""
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(first, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start, end


def _key(prefix: str = "") -> dict:
    """The grouping columns, named the same whatever table they come from."""
    tz = timezone.get_current_timezone()
    return {
        "k_day": TruncDate(f"{prefix}created_at", tzinfo=tz),
        "k_channel": F(f"{prefix}channel_id"),
        "k_category": F(f"{prefix}category_id"),
        "k_team": F(f"{prefix}team_id"),
    }


def _seconds(value) -> int:
    """A summed duration as whole seconds (None when nothing was summed)."""
    if value is None:
        return 0
    if isinstance(value, dt.timedelta):
        return int(value.total_seconds())
    return int(value) // 1_000_000  # SQLite may hand back microseconds


def _duration(end: str, start: str):
    return ExpressionWrapper(F(end) - F(start), output_field=DurationField())


def _row_key(row: dict) -> tuple:
    day = row["k_day"]
    if isinstance(day, dt.datetime):
        day = day.date()
    elif isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return (day, row["k_channel"], row["k_category"], row["k_team"])


def _ticket_rows(start, end, now) -> dict[tuple, dict]:
    tickets = Ticket.objects.filter(created_at__gte=start, created_at__lt=end).exclude(
        status=Status.MERGED
    )
    resolved = Q(resolved_at__isnull=False)
    evidence = ~Q(evidence_ref="") | Q(Exists(Attachment.objects.filter(ticket=OuterRef("pk"))))
    complete = (
        resolved
        & Q(resolution_time__isnull=False)
        & ~Q(responsible_person="")
        & ~Q(solution="")
        & evidence
    )
    first_contact = resolved & Q(contact_count__lte=1, reopen_count=0)
    rows = {}
    for row in tickets.values(**_key()).annotate(
        received=Count("id"),
        repeats=Count("id", filter=Q(repeat_of__isnull=False)),
        resolved=Count("id", filter=resolved),
        complete=Count("id", filter=complete),
        first_contact=Count("id", filter=first_contact),
        handling=Sum(_duration("resolved_at", "created_at"), filter=resolved),
    ):
        key = _row_key(row)
        rows[key] = dict.fromkeys(TICKET_FIELDS, 0) | {
            "received": row["received"],
            "repeats": row["repeats"],
            "resolved": row["resolved"],
            "complete": row["complete"],
            "first_contact": row["first_contact"],
            "handling_seconds": _seconds(row["handling"]),
        }

    # SLA clocks, as the SLA report counts them: on time when met by the due time; late
    # when met after it or still running past it; paused or running within time: neither.
    on_time = Q(met_at__isnull=False, met_at__lte=F("due_at"))
    late = Q(met_at__gt=F("due_at")) | Q(
        met_at__isnull=True, paused_at__isnull=True, due_at__lt=now
    )
    clock_counts = {}
    for stage, prefix in STAGE_PREFIX.items():
        clock_counts[f"{prefix}_on_time"] = Count("id", filter=Q(stage=stage) & on_time)
        clock_counts[f"{prefix}_late"] = Count("id", filter=Q(stage=stage) & late)
    clocks = Clock.objects.filter(
        ticket__created_at__gte=start, ticket__created_at__lt=end
    ).exclude(ticket__status=Status.MERGED)
    for row in clocks.values(**_key("ticket__")).annotate(**clock_counts):
        target = rows.get(_row_key(row))
        if target is not None:
            target.update({name: row[name] for name in clock_counts})

    survey_counts = {
        "surveys": Count("id"),
        "overall_n": Count("overall"),
        "promoters": Count("id", filter=Q(overall__gte=9)),
        "detractors": Count("id", filter=Q(overall__lte=6)),
    }
    for dim in DIMENSIONS:
        survey_counts[f"{dim}_sum"] = Sum(dim)
        survey_counts[f"{dim}_n"] = Count(dim)
        survey_counts[f"{dim}_satisfied"] = Count("id", filter=Q(**{f"{dim}__gte": 4}))
    surveys = Survey.objects.filter(
        answered_at__isnull=False, ticket__created_at__gte=start, ticket__created_at__lt=end
    ).exclude(ticket__status=Status.MERGED)
    for row in surveys.values(**_key("ticket__")).annotate(**survey_counts):
        target = rows.get(_row_key(row))
        if target is not None:
            target.update({name: row[name] or 0 for name in survey_counts})
    return rows


def _task_rows(start, end) -> list[dict]:
    tasks = (
        # A task is opened after its ticket was received: the bound on its own (indexed)
        # opening time lets PostgreSQL start from the few recent tasks.
        CollaborationTask.objects.filter(
            created_at__gte=start, ticket__created_at__gte=start, ticket__created_at__lt=end
        )
        .exclude(ticket__status=Status.MERGED)
        .exclude(state=TaskState.CANCELLED)
    )
    claimed = Q(claimed_at__isnull=False)
    done = Q(state=TaskState.DONE, completed_at__isnull=False)
    out = []
    for row in tasks.values(**_key("ticket__"), k_department=F("department_id")).annotate(
        opened=Count("id"),
        responded=Count("id", filter=claimed),
        responded_on_time=Count("id", filter=claimed & Q(claimed_at__lte=F("respond_due_at"))),
        response=Sum(_duration("claimed_at", "created_at"), filter=claimed),
        completed=Count("id", filter=done),
        completion=Sum(_duration("completed_at", "created_at"), filter=done),
    ):
        day, channel, category, team = _row_key(row)
        out.append(
            {
                "day": day,
                "channel_id": channel,
                "category_id": category,
                "team_id": team,
                "department_id": row["k_department"],
                "opened": row["opened"],
                "responded": row["responded"],
                "responded_on_time": row["responded_on_time"],
                "response_seconds": _seconds(row["response"]),
                "completed": row["completed"],
                "completion_seconds": _seconds(row["completion"]),
            }
        )
    return out


def _compensation_rows(start, end) -> list[dict]:
    paid = Compensation.objects.filter(
        state__in=PAID_COMPENSATION_STATES,
        created_at__gte=start,  # granted after the ticket was received; indexed
        ticket__created_at__gte=start,
        ticket__created_at__lt=end,
    ).exclude(ticket__status=Status.MERGED)
    out = []
    for row in paid.values(**_key("ticket__"), k_kind=F("kind")).annotate(
        count=Count("id"), amount=Sum("amount")
    ):
        day, channel, category, team = _row_key(row)
        out.append(
            {
                "day": day,
                "channel_id": channel,
                "category_id": category,
                "team_id": team,
                "kind": row["k_kind"],
                "count": row["count"],
                "amount": row["amount"],
            }
        )
    return out


def compute(first: dt.date, last: dt.date, *, now: dt.datetime | None = None) -> Rows:
    """Rollup rows of the tickets received on the local days first..last (inclusive)."""
    now = now or timezone.now()
    start, end = day_bounds(first, last)
    tickets = [
        dict(zip(KEY, key, strict=True)) | values
        for key, values in _ticket_rows(start, end, now).items()
    ]
    return Rows(
        tickets=tickets, tasks=_task_rows(start, end), compensations=_compensation_rows(start, end)
    )


@dataclass
class RefreshResult:
    first: dt.date
    last: dt.date
    tickets: int
    tasks: int
    compensations: int


def refresh(*, first: dt.date, last: dt.date) -> RefreshResult:
    """Replace the stored rollups of days first..last with freshly computed rows.

    Refreshes queue on the RollupState row, and the rows are computed under that lock,
    so two overlapping refreshes (a schedule tick and a manual rebuild) cannot
    interleave their deletes and inserts or store older figures over newer ones.
    """
    if first > last:
        raise ValueError("first must not be after last")
    with transaction.atomic():
        RollupState.objects.get_or_create(pk=1)
        state = RollupState.objects.select_for_update().get(pk=1)
        rows = compute(first, last)
        days = {"day__gte": first, "day__lte": last}
        TicketDay.objects.filter(**days).delete()
        TaskDay.objects.filter(**days).delete()
        CompensationDay.objects.filter(**days).delete()
        TicketDay.objects.bulk_create((TicketDay(**r) for r in rows.tickets), batch_size=2000)
        TaskDay.objects.bulk_create((TaskDay(**r) for r in rows.tasks), batch_size=2000)
        CompensationDay.objects.bulk_create(
            (CompensationDay(**r) for r in rows.compensations), batch_size=2000
        )
        _rebuild_months(first, last)
        state.refreshed_at = timezone.now()
        state.version += 1
        state.first_day = min(first, state.first_day or first)
        state.last_day = max(last, state.last_day or last)
        state.save()
    return RefreshResult(
        first=first,
        last=last,
        tickets=len(rows.tickets),
        tasks=len(rows.tasks),
        compensations=len(rows.compensations),
    )


def _rebuild_months(first: dt.date, last: dt.date) -> None:
    """Re-sum the month rows of every month that first..last touches from its day rows."""
    key = ("channel_id", "category_id", "team_id")
    tables = (
        (TicketDay, TicketMonth, key, TICKET_FIELDS),
        (TaskDay, TaskMonth, (*key, "department_id"), TASK_FIELDS),
        (CompensationDay, CompensationMonth, (*key, "kind"), ("count", "amount")),
    )
    month = first.replace(day=1)
    while month <= last:
        following = (month + dt.timedelta(days=32)).replace(day=1)
        for day_model, month_model, keys, fields in tables:
            month_model.objects.filter(day=month).delete()
            sums = (
                day_model.objects.filter(day__gte=month, day__lt=following)
                .values(*keys)
                .annotate(**{name: Sum(name) for name in fields})
                .order_by()
            )
            month_model.objects.bulk_create(
                (month_model(day=month, **row) for row in sums), batch_size=2000
            )
        month = following


def refresh_recent(days: int) -> RefreshResult:
    """The last `days` local days up to and including today."""
    today = timezone.localdate()
    return refresh(first=today - dt.timedelta(days=days - 1), last=today)
