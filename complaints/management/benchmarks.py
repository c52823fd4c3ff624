# ruff: noqa: S603, S607 - runs gunicorn, collectstatic and ab with fixed arguments
"""Page and API timings against the current database (`manage.py bench`).

In-process part: Django's test client, logged in as the personas who use each page
(the demo agent, a team lead, a department member), `--samples` timed requests per
page after `--warmup` untimed ones, and the SQL query count of one extra request.
HTTP part: gunicorn (2 workers, gthread) serving the agent queue to ApacheBench (`ab`,
Debian's apache2-utils) at a fixed concurrency.

Both run as production would: DEBUG off (no query log) and persistent database
connections (CONN_MAX_AGE).
"""

import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from complaints.models import Channel, CollaborationTask, Contact, Ticket

from .bulk_data import LONG_PREFIX


@dataclass
class Case:
    name: str
    user: str
    url: str
    goal_ms: float | None = None  # p95 goal
    goal_queries: int | None = None


@dataclass
class Result:
    case: Case
    p50: float
    p95: float
    rps: float
    queries: int
    status: int
    samples: int

    @property
    def met(self) -> str:
        if self.status != 200:
            return "**no** (not a page)"  # a redirect or an error is fast and proves nothing
        checks = []
        if self.case.goal_ms is not None:
            checks.append(self.p95 <= self.case.goal_ms)
        if self.case.goal_queries is not None:
            checks.append(self.queries <= self.case.goal_queries)
        if not checks:
            return "–"
        return "yes" if all(checks) else "**no**"

    @property
    def goal(self) -> str:
        parts = []
        if self.case.goal_ms is not None:
            parts.append(f"p95 ≤ {self.case.goal_ms:g} ms")
        if self.case.goal_queries is not None:
            parts.append(f"≤ {self.case.goal_queries} queries")
        return ", ".join(parts) or "–"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def pick_tickets() -> dict[str, str]:
    long = (
        Contact.objects.filter(external_id__startswith=LONG_PREFIX)
        .order_by("-id")
        .values_list("ticket__number", flat=True)
        .first()
    )
    top = Ticket.objects.order_by("-id").values_list("id", flat=True).first() or 0
    typical = (
        Ticket.objects.filter(status="closed", id__gte=top // 2)
        .order_by("id")
        .values_list("number", flat=True)
        .first()
    )
    return {"long": long, "typical": typical}


def cases() -> list[Case]:
    numbers = pick_tickets()
    if not numbers["long"] or not numbers["typical"]:
        raise RuntimeError("No generated data here: run `manage.py generate_data` first.")
    q = 8  # the query budget for the queue
    return [
        Case("queue · mine · page 1", "agent", "/?tab=mine", 50, q),
        Case("queue · mine · page 10", "agent", "/?tab=mine&page=10", 50, q),
        Case("queue · team · page 1", "agent", "/?tab=team", 50, q),
        Case("queue · team · page 20", "agent", "/?tab=team&page=20", 50, q),
        Case("queue · open · page 1", "agent", "/?tab=open", 50, q),
        Case("queue · open · page 100", "agent", "/?tab=open&page=100", 50, q),
        Case("queue · open · P1, sorted by due", "agent", "/?tab=open&priority=1&sort=due", 50, q),
        Case("ticket page · 200 events", "agent", f"/tickets/{numbers['long']}/", 60, 12),
        Case("ticket page · typical (closed)", "agent", f"/tickets/{numbers['typical']}/", 60, 12),
        # The goal for the list API is "paginated, constant queries" (no time).
        Case("API ticket list · no filter", "agent", "/api/v1/tickets/", None, 8),
        Case(
            "API ticket list · status+channel",
            "agent",
            "/api/v1/tickets/?status=in_progress&channel=hotline",
            None,
            8,
        ),
        Case("API ticket list · assignee", "agent", "/api/v1/tickets/?assignee=agent", None, 8),
        Case("API ticket detail · 200 events", "agent", f"/api/v1/tickets/{numbers['long']}/"),
        Case("API ticket detail · typical", "agent", f"/api/v1/tickets/{numbers['typical']}/"),
        Case("approvals · team lead", "senior", "/approvals/"),
        Case("approvals · supervisor", "supervisor", "/approvals/"),
        Case("task board · department · unclaimed", "logistics", "/tasks/"),
        Case("task board · department · done", "logistics", "/tasks/?tab=done"),
        *dashboard_cases(),
    ]


def dashboard_cases() -> list[Case]:
    """The management dashboard (issue 7: ≤ 300 ms) over 30 and 365 days, from the rollups
    `manage.py dashboard_rollup` builds (the Makefile runs it after generate_data)."""
    today = timezone.localdate()
    channel = Channel.objects.order_by("id").values_list("id", flat=True).first()

    def url(days, extra=""):
        first = today - dt.timedelta(days=days - 1)
        return f"/dashboard/?date_from={first}&date_to={today}{extra}"

    return [
        Case("dashboard · 30 days", "supervisor", url(30), 300, 22),
        Case("dashboard · 365 days", "supervisor", url(365), 300, 22),
        Case(
            "dashboard · 365 days by month", "supervisor", url(365, "&granularity=month"), 300, 22
        ),
        Case(
            "dashboard · 365 days, one channel",
            "supervisor",
            url(365, f"&channel={channel}"),
            300,
            22,
        ),
    ]


def _prepare_process() -> None:
    # As in production: no query log, one connection kept for the whole run.
    settings.DEBUG = False
    connection.settings_dict["CONN_MAX_AGE"] = None


def _clients() -> dict[str, Client]:
    clients = {}
    User = get_user_model()
    for username in ("agent", "senior", "supervisor", "logistics"):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(User.objects.get(username=username))
        clients[username] = client
    return clients


def run_case(client: Client, case: Case, *, samples: int, warmup: int) -> Result:
    for _ in range(warmup):
        response = client.get(case.url)
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(case.url)
    status = response.status_code
    timings = []
    started = time.perf_counter()
    for _ in range(samples):
        t0 = time.perf_counter()
        client.get(case.url)
        timings.append((time.perf_counter() - t0) * 1000)
    total = time.perf_counter() - started
    return Result(
        case=case,
        p50=statistics.median(timings),
        p95=percentile(timings, 0.95),
        rps=samples / total,
        queries=len(queries),
        status=status,
        samples=samples,
    )


def run_in_process(*, samples: int, warmup: int, only: str | None, log) -> list[Result]:
    _prepare_process()
    clients = _clients()
    results = []
    for case in cases():
        if only and only not in case.name:
            continue
        result = run_case(clients[case.user], case, samples=samples, warmup=warmup)
        log(
            f"  {case.name:<40} p50 {result.p50:7.1f} ms  p95 {result.p95:7.1f} ms  "
            f"{result.rps:6.1f} req/s  {result.queries:3d} queries  HTTP {result.status}"
        )
        results.append(result)
    return results


# --- HTTP: gunicorn + ab -----------------------------------------------------------------


@dataclass
class HttpResult:
    url: str
    concurrency: int
    requests: int
    p50: float
    p95: float
    rps: float
    failed: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _session_cookie(username: str) -> str:
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=username))
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _parse_ab(output: str) -> tuple[float, float, float, int]:
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", output).group(1))
    p50 = float(re.search(r"^\s+50%\s+(\d+)", output, re.M).group(1))
    p95 = float(re.search(r"^\s+95%\s+(\d+)", output, re.M).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", output).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", output)
    return p50, p95, rps, failed + (int(non2xx.group(1)) if non2xx else 0)


def _server_env() -> dict[str, str]:
    return {
        **os.environ,
        "CLOSELOOP_DEBUG": "0",
        # The session cookie is signed in this process: gunicorn must share its key.
        "CLOSELOOP_SECRET_KEY": settings.SECRET_KEY,
        "CLOSELOOP_SSL_REDIRECT": "0",
        "CLOSELOOP_DB_CONN_MAX_AGE": "600",
        "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
    }


@contextlib.contextmanager
def gunicorn(*, workers: int, threads: int):
    """gunicorn with production settings on a free port of 127.0.0.1; yields the port."""
    base = Path(settings.BASE_DIR)
    env = {**_server_env(), "GUNICORN_THREADS": str(threads)}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=base,
        env=env,
        check=True,
    )
    port = _free_port()
    command = [
        sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi",
        "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
    ]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=base, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(port)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def run_http(*, requests: int, concurrency: list[int], log) -> list[HttpResult]:
    if not shutil.which("ab"):
        log("  (skipped: `ab` not found — apt-get install apache2-utils)")
        return []
    results = []
    with gunicorn(workers=2, threads=4) as port:
        cookie = f"{settings.SESSION_COOKIE_NAME}={_session_cookie('agent')}"
        for path, clients in ((p, c) for p in ("/?tab=mine", "/?tab=open") for c in concurrency):
            url = f"http://127.0.0.1:{port}{path}"
            ab = ["ab", "-q", "-k", "-C", cookie, "-c", str(clients)]
            subprocess.run([*ab, "-n", "100", url], capture_output=True, check=True)  # warm-up
            out = subprocess.run(
                [*ab, "-n", str(requests), url], capture_output=True, text=True, check=True
            )
            if os.environ.get("BENCH_AB_LOG"):
                Path(os.environ["BENCH_AB_LOG"]).write_text(out.stdout)
            p50, p95, rps, failed = _parse_ab(out.stdout)
            results.append(HttpResult(path, clients, requests, p50, p95, rps, failed))
            log(
                f"  HTTP {path:<12} c={clients}  p50 {p50:.0f} ms  p95 {p95:.0f} ms  {rps:.1f} req/s  failed {failed}"
            )
    return results


# --- intake: gunicorn + bench/intake_load.py ----------------------------------------------

INTAKE_GOAL_PER_SECOND = 300  # issue 4
INTAKE_CHANNEL = "benchintake"


@dataclass
class IntakeResult:
    runs: list[dict]  # intake_load.py's JSON, warm-up first
    workers: int
    threads: int

    @property
    def measured(self) -> dict:
        return self.runs[-1]

    @property
    def met(self) -> bool:
        return self.measured["acknowledged_per_second"] >= INTAKE_GOAL_PER_SECOND


def run_intake(*, requests: int, concurrency: int, log) -> IntakeResult:
    """Signed contacts from `concurrency` clients against gunicorn (4 workers × 2 threads),
    one new customer each, 10 % sent twice; the load script checks that every contact
    got exactly one ticket. Writes the contacts' tickets into this database."""
    from channels import services as channel_services
    from channels.models import Channel as IntakeChannel

    if IntakeChannel.objects.filter(code=INTAKE_CHANNEL).exists():
        credentials = channel_services.channel_rotate_secret(channel=INTAKE_CHANNEL)
    else:
        credentials = channel_services.channel_create(code=INTAKE_CHANNEL, kind="app")
    script = Path(settings.BASE_DIR) / "bench" / "intake_load.py"
    workers, threads = 4, 2
    runs = []
    with gunicorn(workers=workers, threads=threads) as port:
        for n in (max(1, requests // 10), requests):  # a warm-up run, then the measured one
            command = [
                sys.executable, str(script), "--base", f"http://127.0.0.1:{port}",
                "--key", credentials.key, "--secret", credentials.secret,
                "--requests", str(n), "--concurrency", str(concurrency),
            ]  # fmt: skip
            out = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
            if not lines:
                raise RuntimeError(f"intake load failed: {out.stderr[-2000:]}")
            runs.append(json.loads(lines[-1]))
            log(f"  intake {n} contacts, {concurrency} clients: {lines[-1]}")
            if out.returncode:
                raise RuntimeError(f"intake load: {out.stderr.strip()[-500:]}")
    return IntakeResult(runs=runs, workers=workers, threads=threads)


def intake_markdown(label: str, result: IntakeResult) -> str:
    lines = [
        f"### {label} · intake under {result.measured['concurrency']} concurrent clients",
        "",
        f"`bench/intake_load.py` against gunicorn ({result.workers} workers × {result.threads} "
        "threads, production settings) on this database: signed contacts, one new customer "
        "each, 10 % of them sent twice (retries); every acknowledged contact must map to "
        f"exactly one ticket. Machine: {machine()}.",
        "",
        "| run | requests | statuses | intakes/s | p50 ms | p95 ms | contacts with two tickets |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, run in zip(("warm-up", "measured"), result.runs, strict=False):
        statuses = ", ".join(f"{n:,} × {code}" for code, n in sorted(run["statuses"].items()))
        lines.append(
            f"| {name} | {run['requests']:,} | {statuses} | {run['acknowledged_per_second']} | "
            f"{run['p50_ms']:.0f} | {run['p95_ms']:.0f} | {run['contacts_with_two_tickets']} |"
        )
    verdict = "yes" if result.met else "**no**"
    lines += ["", f"Goal ≥ {INTAKE_GOAL_PER_SECOND} intakes/s: {verdict}."]
    return "\n".join(lines) + "\n"


# --- report --------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kb / 1024 / 1024:.0f} GB"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()"
        )
        db = cursor.fetchone()[0].split(" on ")[0]
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram} RAM; {db}; Python {platform.python_version()}; "
        f"load average at the end {load} (1/5/15 min)"
    )


def data_summary() -> str:
    tickets = Ticket.objects.count()
    open_ = Ticket.objects.open().count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM complaints_timelineevent")
        events = cursor.fetchone()[0]
    tasks = CollaborationTask.objects.count()
    return (
        f"{tickets:,} tickets ({open_:,} open, {100 * open_ / max(tickets, 1):.1f}%), "
        f"{events:,} timeline events, {tasks:,} collaboration tasks"
    )


def markdown(
    label: str, results: list[Result], http: list[HttpResult], *, samples: int, warmup: int
) -> str:
    lines = [
        f"### {label}",
        "",
        f"Data: {data_summary()}.  ",
        f"Machine: {machine()}.  ",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; in-process: {samples} samples "
        f"per row after {warmup} warm-up requests, one client, sequential.",
        "",
        "| operation | user | p50 ms | p95 ms | req/s | queries | goal | met |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        status = "" if r.status == 200 else f" (HTTP {r.status})"
        lines.append(
            f"| {r.case.name}{status} | {r.case.user} | {r.p50:.1f} | {r.p95:.1f} | {r.rps:.0f} | "
            f"{r.queries} | {r.goal} | {r.met} |"
        )
    if http:
        lines += [
            "",
            "HTTP: gunicorn `--workers 2` (gthread, 4 threads), ApacheBench keep-alive, logged in as `agent`:",
            "",
            "| URL | concurrency | requests | p50 ms | p95 ms | req/s | failed |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for h in http:
            lines.append(
                f"| `{h.url}` | {h.concurrency} | {h.requests} | {h.p50:.0f} | {h.p95:.0f} | "
                f"{h.rps:.1f} | {h.failed} |"
            )
    return "\n".join(lines) + "\n"


def write_section(path: Path, label: str, text: str) -> None:
    """Replace (or append) the section between `<!-- bench:label -->` markers."""
    begin, end = f"<!-- bench:{label} -->", f"<!-- /bench:{label} -->"
    block = f"{begin}\n{text}{end}"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        _old, tail = rest.split(end, 1)
        updated = head + block + tail
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(updated, encoding="utf-8")


# --- store-register import (channels.benchmarks) ------------------------------------------

IMPORT_GOAL_SECONDS = 60  # issue 9: a 100k-row xlsx in ≤ 60 s


def import_markdown(label: str, figures: dict) -> str:
    """The figures of `channels.benchmarks.time_register_import` as a section."""
    rows = figures["rows"]
    total = figures["parse_seconds"] + figures["import_seconds"]
    per_row = 1000 * figures["import_seconds"] / max(rows, 1)
    statements = figures.get("statements_per_row")
    lines = [
        f"### {label} · store-register import ({rows:,} rows)",
        "",
        f"An xlsx of {rows:,} rows of real complaint texts "
        f"({figures['file_bytes'] / 1024 / 1024:.1f} MB) uploaded and checked, then imported "
        "as the django-q2 task does, in this process. Machine: " + machine() + ".",
        "",
        "| rows | check (parse + validate) s | import s | ms per row | rows/s "
        "| new tickets | joined | already known | SQL per row | goal | met |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        f"| {rows:,} | {figures['parse_seconds']:.1f} | {figures['import_seconds']:.1f} "
        f"| {per_row:.2f} | {figures['rows_per_second']:.0f} | {figures['new_tickets']:,} "
        f"| {figures['joined_tickets']:,} | {figures['already_known']:,} "
        f"| {statements if statements is not None else '–'} "
        f"| 100k rows ≤ {IMPORT_GOAL_SECONDS} s "
        f"| {'yes' if rows >= 100_000 and total <= IMPORT_GOAL_SECONDS else '**no**'} |",
    ]
    return "\n".join(lines) + "\n"
