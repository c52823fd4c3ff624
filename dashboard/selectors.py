"""The management dashboard's figures (every KPI is defined in docs/metrics.md).

Everything describes the tickets *received* in the chosen local-date range (merged
tickets left out), filtered by team, channel and category. Past days are read from the
daily rollups (dashboard.models), today is computed live (dashboard.rollups.compute),
and both go through the same sums, so a figure does not depend on where it came from.
"""

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.models import Category, Channel, CompensationKind, Department, Survey
from sla.models import STAGE_ORDER, Stage

from . import rollups
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

GRANULARITIES = ("day", "week", "month")


@dataclass(frozen=True)
class Filters:
    first: dt.date
    last: dt.date
    team_id: int | None = None
    channel_id: int | None = None
    # A root category stands for itself and its children.
    category_ids: tuple[int, ...] | None = None
    granularity: str = "day"

    def matches(self, row: dict) -> bool:
        """The same filter in Python, for today's live rows."""
        return (
            (self.team_id is None or row["team_id"] == self.team_id)
            and (self.channel_id is None or row["channel_id"] == self.channel_id)
            and (self.category_ids is None or row["category_id"] in self.category_ids)
        )

    def apply(self, queryset):
        if self.team_id is not None:
            queryset = queryset.filter(team_id=self.team_id)
        if self.channel_id is not None:
            queryset = queryset.filter(channel_id=self.channel_id)
        if self.category_ids is not None:
            queryset = queryset.filter(category_id__in=self.category_ids)
        return queryset


@dataclass
class Lookups:
    """Names of channels, categories and departments: three small queries per page."""

    channels: dict[int, str]
    categories: dict[int, str]
    roots: dict[int, tuple[int, ...]]  # root id → itself and its children
    category_choices: list[tuple[int, str]]
    teams: dict[int, str]
    departments: dict[int, str]

    @classmethod
    def load(cls) -> "Lookups":
        channels = dict(Channel.objects.order_by("name").values_list("id", "name"))
        categories, roots, choices = {}, defaultdict(list), []
        rows = list(Category.objects.order_by("sort_order", "id").values("id", "name", "parent"))
        names = {r["id"]: r["name"] for r in rows}
        for r in rows:
            parent = r["parent"]
            categories[r["id"]] = f"{names[parent]}/{r['name']}" if parent else r["name"]
            roots[parent or r["id"]].append(r["id"])
        for r in rows:  # roots first, each followed by its children
            if r["parent"] is None:
                choices.append((r["id"], r["name"]))
                choices.extend((child, f"— {categories[child]}") for child in roots[r["id"]][1:])
        teams, departments = {}, {}
        for pk, name, kind in Department.objects.values_list("id", "name", "kind"):
            (teams if kind == Department.Kind.SERVICE else departments)[pk] = name
        return cls(
            channels=channels,
            categories=categories,
            roots={k: tuple(v) for k, v in roots.items()},
            category_choices=choices,
            teams=teams,
            departments=departments,
        )


@dataclass
class Rate:
    """A share: numerator out of denominator, as a percentage (None when nothing counted)."""

    numerator: int
    denominator: int

    @property
    def percent(self) -> float | None:
        return self.numerator / self.denominator * 100 if self.denominator else None


@dataclass
class Bucket:
    start: dt.date
    label: str
    received: int = 0
    previous: int = 0  # the same period one year earlier


@dataclass
class Share:
    label: str
    count: int
    percent: float | None
    cumulative: float | None = None


@dataclass
class StageRate:
    stage: str
    label: str
    rate: Rate


@dataclass
class Dimension:
    name: str
    label: str
    average: float | None
    satisfied: Rate
    answers: int


@dataclass
class DepartmentTimes:
    name: str
    opened: int
    responded: int
    response_hours: float | None
    on_time: Rate
    completed: int
    completion_hours: float | None


@dataclass
class CompensationCost:
    kind: str
    label: str
    count: int
    amount: Decimal


@dataclass
class Dashboard:
    filters: Filters
    received: int
    previous_received: int
    volume: list[Bucket]
    channels: list[Share]
    pareto: list[Share]
    sla: list[StageRate]
    repeat: Rate
    first_contact: Rate
    completeness: Rate
    handling_hours: float | None
    resolved: int
    surveys: int
    dimensions: list[Dimension]
    nps: float | None
    promoters: int
    detractors: int
    nps_responses: int
    departments: list[DepartmentTimes]
    compensation: list[CompensationCost]
    refreshed_at: dt.datetime | None = None
    totals: dict = field(default_factory=dict)

    @property
    def yoy_percent(self) -> float | None:
        if not self.previous_received:
            return None
        return (self.received - self.previous_received) / self.previous_received * 100

    @property
    def compensation_total(self) -> Decimal:
        return sum((c.amount for c in self.compensation), Decimal("0.00"))

    @property
    def compensation_count(self) -> int:
        return sum(c.count for c in self.compensation)


# --- dates ------------------------------------------------------------------------------


def shift_year(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` later (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def bucket_of(day: dt.date, granularity: str) -> tuple[dt.date, str]:
    if granularity == "week":
        monday = day - dt.timedelta(days=day.weekday())
        year, week, _weekday = monday.isocalendar()
        return monday, f"{year}-W{week:02d}"
    if granularity == "month":
        return day.replace(day=1), day.strftime("%Y-%m")
    return day, day.isoformat()


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def split_months(first: dt.date, last: dt.date) -> tuple[tuple[dt.date, dt.date] | None, Q | None]:
    """The whole calendar months inside first..last as (first month, last month), and a
    filter for the remaining days at either end (None when there are none)."""
    start = first if first.day == 1 else next_month(first)
    end = last + dt.timedelta(days=1)
    end = end if end.day == 1 else end.replace(day=1)  # first day after the whole months
    if start >= end:
        return None, Q(day__gte=first, day__lte=last)
    days = Q()
    if first < start:
        days |= Q(day__gte=first, day__lt=start)
    if end <= last:
        days |= Q(day__gte=end, day__lte=last)
    last_month = (end - dt.timedelta(days=1)).replace(day=1)
    return (start, last_month), (days if days else None)


def _days(first: dt.date, last: dt.date):
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


# --- reading rows -----------------------------------------------------------------------


def _add(target: dict, row: dict, names) -> None:
    for name in names:
        target[name] = target.get(name, 0) + (row.get(name) or 0)


def _grouped(querysets: list, key: str, names) -> dict:
    """Sums of `names` per `key` over the stored rows, summed in SQL."""
    out = defaultdict(dict)
    for queryset in querysets:
        for row in queryset.values(key).annotate(**{n: Sum(n) for n in names}).order_by():
            _add(out[row[key]], row, names)
    return dict(out)


def _merge(stored: dict, key: str, names, live: list[dict]) -> dict:
    """Stored sums per key with today's live rows added."""
    out = defaultdict(dict, {k: dict(v) for k, v in stored.items()})
    for row in live:
        _add(out[row[key]], row, names)
    return out


def stored_sums(f: Filters, stored_last: dt.date, version: int) -> dict:
    """Every sum the dashboard needs from the stored rollups of f.first..stored_last.

    Stored rows change only when a refresh rewrites them (and bumps the version), so
    the result is cached under the filters and the version: a refresh makes a new key.
    """
    parts = (f.first, f.last, stored_last, f.team_id, f.channel_id, f.category_ids, version)
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    key = f"dashboard:stored:{digest}"
    seconds = settings.CLOSELOOP_DASHBOARD_STORED_CACHE_SECONDS
    sums = cache.get(key) if seconds > 0 else None
    if sums is None:
        sums = _read_stored(f, stored_last)
        if seconds > 0:
            cache.set(key, sums, seconds)
    return sums


def _read_stored(f: Filters, stored_last: dt.date) -> dict:
    def parts(day_model, month_model) -> list:
        """Whole months from the month table, the days at either end from the day table
        (at most two queries per panel)."""
        if f.first > stored_last:
            return []
        months, days = split_months(f.first, stored_last)
        out = []
        if days:
            out.append(f.apply(day_model.objects.filter(days)))
        if months:
            out.append(f.apply(month_model.objects.filter(day__gte=months[0], day__lte=months[1])))
        return out

    fields = rollups.TICKET_FIELDS
    totals = dict.fromkeys(fields, 0)
    for part in parts(TicketDay, TicketMonth):
        _add(totals, part.aggregate(**{n: Sum(n) for n in fields}), fields)
    by_day = {}
    if f.first <= stored_last:
        series = f.apply(TicketDay.objects.filter(day__gte=f.first, day__lte=stored_last))
        by_day = dict(series.values_list("day").annotate(received=Sum("received")).order_by())
    prior = f.apply(
        TicketDay.objects.filter(day__gte=shift_year(f.first, -1), day__lte=shift_year(f.last, -1))
    )
    # One scan for both breakdowns: (channel, category) pairs are few, whatever the range.
    pairs = [
        row
        for part in parts(TicketDay, TicketMonth)
        for row in part.values("channel_id", "category_id").annotate(received=Sum("received"))
    ]
    return {
        "totals": totals,
        "by_day": by_day,
        "prior": list(prior.values_list("day").annotate(received=Sum("received")).order_by()),
        "pairs": pairs,
        "tasks": _grouped(parts(TaskDay, TaskMonth), "department_id", rollups.TASK_FIELDS),
        "kinds": _grouped(parts(CompensationDay, CompensationMonth), "kind", ["count", "amount"]),
    }


def live_rows(today: dt.date) -> rollups.Rows:
    """Today's rows, computed from the tickets and kept for a minute at most (setting
    CLOSELOOP_DASHBOARD_LIVE_SECONDS), so leads reloading the page do not recompute them."""
    seconds = settings.CLOSELOOP_DASHBOARD_LIVE_SECONDS
    if seconds <= 0:
        return rollups.compute(today, today)
    key = f"dashboard:live:{today.isoformat()}"
    rows = cache.get(key)
    if rows is None:
        rows = rollups.compute(today, today)
        cache.set(key, rows, seconds)
    return rows


def dashboard(filters: Filters, lookups: Lookups, *, today: dt.date | None = None) -> Dashboard:
    today = today or timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    f = filters
    stored_last = min(f.last, yesterday)

    live = rollups.Rows([], [], [])
    if f.first <= today <= f.last:
        computed = live_rows(today)
        live = rollups.Rows(
            tickets=[r for r in computed.tickets if f.matches(r)],
            tasks=[r for r in computed.tasks if f.matches(r)],
            compensations=[r for r in computed.compensations if f.matches(r)],
        )

    refreshed_at, version = RollupState.objects.filter(pk=1).values_list(
        "refreshed_at", "version"
    ).first() or (None, 0)
    sums = stored_sums(f, stored_last, version)

    fields = rollups.TICKET_FIELDS
    totals = dict(sums["totals"])
    by_day = defaultdict(int, sums["by_day"])
    for row in live.tickets:
        _add(totals, row, fields)
        by_day[row["day"]] += row["received"]

    # Volume per bucket, with the days of last year that fall in it one year on.
    buckets: dict[dt.date, Bucket] = {}
    for day in _days(f.first, f.last):
        start, label = bucket_of(day, f.granularity)
        bucket = buckets.setdefault(start, Bucket(start=start, label=label))
        bucket.received += by_day.get(day, 0)
    previous_received = 0
    for day, count in sums["prior"]:
        start, _label = bucket_of(shift_year(day, 1), f.granularity)
        if start in buckets:
            buckets[start].previous += count
        previous_received += count

    received = totals["received"]

    def shares(rows: dict, names: dict, missing: str) -> list[Share]:
        items = sorted(
            (
                (names.get(k, missing) if k is not None else missing, v["received"])
                for k, v in rows.items()
                if v["received"]
            ),
            key=lambda item: (-item[1], item[0]),
        )
        out, running = [], 0
        for label, count in items:
            running += count
            out.append(
                Share(
                    label=label,
                    count=count,
                    percent=count / received * 100 if received else None,
                    cumulative=running / received * 100 if received else None,
                )
            )
        return out

    # One scan for both breakdowns: (channel, category) pairs are few, whatever the range.
    by_channel, by_category = defaultdict(dict), defaultdict(dict)
    for row in [*sums["pairs"], *live.tickets]:
        _add(by_channel[row["channel_id"]], row, ["received"])
        _add(by_category[row["category_id"]], row, ["received"])
    channels = shares(by_channel, lookups.channels, "?")
    pareto = shares(by_category, lookups.categories, _("Not classified"))

    sla = []
    for stage in STAGE_ORDER:
        prefix = STAGE_PREFIX[stage]
        on_time, late = totals[f"{prefix}_on_time"], totals[f"{prefix}_late"]
        sla.append(
            StageRate(
                stage=stage, label=str(Stage(stage).label), rate=Rate(on_time, on_time + late)
            )
        )

    dimensions, labels = [], _dimension_labels()
    for dim in DIMENSIONS:
        n = totals[f"{dim}_n"]
        dimensions.append(
            Dimension(
                name=dim,
                label=labels[dim],
                average=totals[f"{dim}_sum"] / n if n else None,
                satisfied=Rate(totals[f"{dim}_satisfied"], n),
                answers=n,
            )
        )
    responses = totals["overall_n"]
    nps = (totals["promoters"] - totals["detractors"]) / responses * 100 if responses else None

    task_names = rollups.TASK_FIELDS
    departments = []
    for dept_id, row in sorted(
        _merge(sums["tasks"], "department_id", task_names, live.tasks).items(),
        key=lambda item: lookups.departments.get(item[0], ""),
    ):
        departments.append(
            DepartmentTimes(
                name=lookups.departments.get(dept_id) or lookups.teams.get(dept_id, "?"),
                opened=row["opened"],
                responded=row["responded"],
                response_hours=_hours(row["response_seconds"], row["responded"]),
                on_time=Rate(row["responded_on_time"], row["responded"]),
                completed=row["completed"],
                completion_hours=_hours(row["completion_seconds"], row["completed"]),
            )
        )

    by_kind = _merge(sums["kinds"], "kind", ["count", "amount"], live.compensations)
    compensation = [
        CompensationCost(
            kind=kind,
            label=str(label),
            count=by_kind[kind]["count"],
            amount=Decimal(by_kind[kind]["amount"]).quantize(Decimal("0.01")),
        )
        for kind, label in CompensationKind.choices
        if kind in by_kind
    ]

    return Dashboard(
        filters=f,
        received=received,
        previous_received=previous_received,
        volume=list(buckets.values()),
        channels=channels,
        pareto=pareto,
        sla=sla,
        repeat=Rate(totals["repeats"], received),
        first_contact=Rate(totals["first_contact"], totals["resolved"]),
        completeness=Rate(totals["complete"], totals["resolved"]),
        handling_hours=_hours(totals["handling_seconds"], totals["resolved"]),
        resolved=totals["resolved"],
        surveys=totals["surveys"],
        dimensions=dimensions,
        nps=nps,
        promoters=totals["promoters"],
        detractors=totals["detractors"],
        nps_responses=responses,
        departments=departments,
        compensation=compensation,
        refreshed_at=refreshed_at,
        totals=totals,
    )


def _hours(seconds: int, count: int) -> float | None:
    return seconds / count / 3600 if count else None


def _dimension_labels() -> dict[str, str]:
    return {dim: str(Survey._meta.get_field(dim).verbose_name) for dim in DIMENSIONS}
