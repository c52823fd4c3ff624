"""One SLA sweep over the current database, with few and with many clocks due
(`manage.py bench`, section "SLA sweep"; docs/benchmarks.md).

Each run sweeps "as of" the moment the N-th earliest pending check falls due, so exactly
the N clocks due soonest are due (ties aside) whatever the data's age: real warnings
fire (notifications, timeline events, escalation, e-mails queued with django-q2), as a
live sweep would. The runs change the database (the warned clocks are done with), so a
second bench run sweeps the next N.
"""

import datetime as dt
import time
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from .models import Clock
from .services import sweep


@dataclass
class SweepRun:
    name: str
    due_clocks: int
    seconds: float
    tickets: int
    skipped: int
    failed: int
    notified: int
    queries: int
    goal: str = "–"
    met: str = "–"


def _nth_check(n: int) -> dt.datetime | None:
    return (
        Clock.objects.filter(next_check_at__isnull=False)
        .order_by("next_check_at")
        .values_list("next_check_at", flat=True)[n - 1 : n]
        .first()
    )


def _timed(name: str, now: dt.datetime, goal_seconds: float | None) -> SweepRun:
    due = Clock.objects.filter(next_check_at__lte=now).count()
    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        result = sweep(now=now)
        seconds = time.perf_counter() - started
    run = SweepRun(
        name, due, seconds, result.tickets, result.skipped, result.failed, result.notified, queries
    )
    if goal_seconds is not None:
        run.goal = f"≤ {goal_seconds:g} s"
        run.met = "yes" if seconds <= goal_seconds else "**no**"
    return run


def explain_selection(now: dt.datetime) -> str:
    """EXPLAIN ANALYZE of the sweep's batch query (PostgreSQL)."""
    qs = Clock.objects.filter(next_check_at__lte=now).order_by("next_check_at")
    qs = qs.values_list("ticket_id", flat=True)[:200]
    return qs.explain(analyze=True) if connection.vendor == "postgresql" else ""


def run_sweeps(*, few: int = 10, many: int = 10_000, log=print) -> list[SweepRun]:
    from django.conf import settings

    settings.DEBUG = False  # no query log, as in production
    runs = []
    first = _nth_check(1)
    if first is None:
        log("  (skipped: no pending SLA clocks — run `manage.py sla_backfill` first)")
        return runs
    runs.append(_timed("nothing due", first - dt.timedelta(seconds=1), 1))
    for name, n, goal in ((f"few due ({few})", few, 1), (f"many due ({many:,})", many, None)):
        moment = _nth_check(n)
        if moment is None:
            log(f"  (fewer than {n} pending clocks: '{name}' skipped)")
            continue
        runs.append(_timed(name, moment, goal))
    runs.append(_timed("right after (nothing left due)", timezone.now(), 1))
    plan = explain_selection(timezone.now())
    if plan:
        log("  EXPLAIN ANALYZE of the batch query:\n    " + plan.replace("\n", "\n    "))
    for run in runs:
        log(
            f"  sweep · {run.name:<32} {run.seconds * 1000:9.1f} ms  {run.due_clocks:6d} due  "
            f"{run.tickets:6d} tickets  {run.notified:6d} told  {run.queries:7d} queries"
        )
    return runs


def pending_summary() -> str:
    pending = Clock.objects.filter(next_check_at__isnull=False).count()
    total = Clock.objects.count()
    return f"{total:,} clocks, {pending:,} with a pending check (the partial index)"


def markdown(label: str, runs: list[SweepRun]) -> str:
    from complaints.management import benchmarks

    lines = [
        f"### {label} · SLA sweep",
        "",
        f"Data: {benchmarks.data_summary()}; {pending_summary()} after the runs.  ",
        f"Machine: {benchmarks.machine()}.  ",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; `sla.services.sweep` "
        "called in process (as the django-q2 task does), one run per row, DEBUG off.",
        "",
        "| sweep | clocks due | time ms | tickets handled | skipped | people told | queries | goal | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in runs:
        lines.append(
            f"| {r.name} | {r.due_clocks:,} | {r.seconds * 1000:.1f} | {r.tickets:,} | "
            f"{r.skipped} | {r.notified:,} | {r.queries:,} | {r.goal} | {r.met} |"
        )
    return "\n".join(lines) + "\n"
