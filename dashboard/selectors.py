"""The management dashboard's figures (every KPI is defined in docs/metrics.md).

Everything describes the tickets *received* in the chosen local-date range (merged
tickets left out), filtered by team, channel and category. Past days are read from the
daily rollups (dashboard.models), today is computed live (dashboard.rollups.compute),
and both go through the same sums, so a figure does not depend on where it came from.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.models import Category, Channel, CompensationKind, Department, Survey
from sla.models import STAGE_ORDER, Stage

from . import rollups
from .models import DIMENSIONS, STAGE_PREFIX, CompensationDay, RollupState, TaskDay, TicketDay

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


def _days(first: dt.date, last: dt.date):
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


# --- reading rows -----------------------------------------------------------------------


def _add(target: dict, row: dict, names) -> None:
    for name in names:
        target[name] = target.get(name, 0) + (row.get(name) or 0)


def _grouped(queryset, key: str, names, live: list[dict]) -> dict:
    """Sums of `names` per `key`: stored rows summed in SQL, today's live rows added."""
    out = defaultdict(dict)
    if queryset is not None:
        for row in queryset.values(key).annotate(**{n: Sum(n) for n in names}).order_by():
            _add(out[row[key]], row, names)
    for row in live:
        _add(out[row[key]], row, names)
    return out


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

    def stored(model):
        if f.first > stored_last:
            return None
        return f.apply(model.objects.filter(day__gte=f.first, day__lte=stored_last))

    live = rollups.Rows([], [], [])
    if f.first <= today <= f.last:
        computed = live_rows(today)
        live = rollups.Rows(
            tickets=[r for r in computed.tickets if f.matches(r)],
            tasks=[r for r in computed.tasks if f.matches(r)],
            compensations=[r for r in computed.compensations if f.matches(r)],
        )

    fields = rollups.TICKET_FIELDS
    by_day = _grouped(stored(TicketDay), "day", fields, live.tickets)
    totals = dict.fromkeys(fields, 0)
    for row in by_day.values():
        _add(totals, row, fields)

    # Volume with the same period one year earlier (always in the past: stored rows).
    buckets: dict[dt.date, Bucket] = {}
    for day in _days(f.first, f.last):
        start, label = bucket_of(day, f.granularity)
        bucket = buckets.setdefault(start, Bucket(start=start, label=label))
        bucket.received += by_day.get(day, {}).get("received", 0)
    prior_first, prior_last = shift_year(f.first, -1), shift_year(f.last, -1)
    prior = f.apply(TicketDay.objects.filter(day__gte=prior_first, day__lte=prior_last))
    previous_received = 0
    for row in prior.values("day").annotate(received=Sum("received")).order_by():
        start, _label = bucket_of(shift_year(row["day"], 1), f.granularity)
        if start in buckets:
            buckets[start].previous += row["received"]
        previous_received += row["received"]

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
    pairs = stored(TicketDay)
    if pairs is not None:
        pairs = pairs.values("channel_id", "category_id").annotate(received=Sum("received"))
    for row in [*(pairs or []), *live.tickets]:
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
        _grouped(stored(TaskDay), "department_id", task_names, live.tasks).items(),
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

    by_kind = _grouped(stored(CompensationDay), "kind", ["count", "amount"], live.compensations)
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

    state = RollupState.objects.filter(pk=1).values_list("refreshed_at", flat=True).first()
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
        refreshed_at=state,
        totals=totals,
    )


def _hours(seconds: int, count: int) -> float | None:
    return seconds / count / 3600 if count else None


def _dimension_labels() -> dict[str, str]:
    return {dim: str(Survey._meta.get_field(dim).verbose_name) for dim in DIMENSIONS}
