"""Fault run: signed intakes while PostgreSQL restarts, and an SLA worker killed mid-sweep.

    python bench/reliability.py [--intakes 3000] [--clients 16] [--retry-share 0.1]
                                [--restarts 2] [--json]

Starts its own throwaway PostgreSQL cluster (initdb into a temporary folder, a free
port, trust auth; run as the `postgres` user when started as root), never the shared
server on 5432, and removes it at the end.

1. Intake: gunicorn (production settings, persistent connections) serves the signed
   intake API; concurrent clients send one contact per external_id and re-send a share
   of them after the acknowledgment (a channel that missed the answer). A client that
   gets a 5xx or a broken connection retries the same contact, re-signed, until it is
   acknowledged or the deadline passes, as a channel adapter would. PostgreSQL is
   restarted (`pg_ctl restart -m fast`) while the clients run. Then every acknowledged
   external_id must be stored exactly once, on the ticket number it was acknowledged
   with, and every ticket must have its contact.
2. SLA sweep: every clock of those tickets is made overdue, two `sla.tasks.sweep` tasks
   (what the `sla-sweep` schedule enqueues) go to a django-q2 `qcluster`, which is
   SIGKILLed (its whole process group) while the sweep is half done; a new qcluster
   runs the next sweep. Every due clock must have exactly one SLA warning on the
   timeline and one notification per recipient.

Prints the figures and exits 1 if anything was lost or duplicated.
"""

import argparse
import contextlib
import glob
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(
        f"[reliability {time.strftime('%H:%M:%S', time.gmtime())}] {message}",
        file=sys.stderr,
        flush=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


# --- the throwaway PostgreSQL cluster -------------------------------------------------------


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temporary folder; the shared one is never touched."""

    def __init__(self, port: int):
        candidates = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
        )
        found = candidates[-1] if candidates else shutil.which("initdb")
        if not found:
            raise SystemExit("initdb not found: apt-get install postgresql")
        self.bin = Path(found).parent
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="closeloop-reliability-"))
        self.data = self.dir / "data"
        self.logfile = self.dir / "postgres.log"
        self.url = f"postgres://postgres@127.0.0.1:{port}/closeloop"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # initdb and the server refuse to run as root: use the postgres account then.
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)  # noqa: S603

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-locale", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
            "-c max_connections=100 -c shared_buffers=64MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w", "start"
        )
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "closeloop"
        )

    def restart(self) -> float:
        started = time.perf_counter()
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-m", "fast", "-w", "restart"
        )
        return time.perf_counter() - started

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- processes ------------------------------------------------------------------------------


def server_env(database_url: str) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CLOSELOOP_DEBUG": "false",
        "CLOSELOOP_SECRET_KEY": "reliability-" + os.urandom(24).hex(),
        "CLOSELOOP_SSL_REDIRECT": "false",
        "CLOSELOOP_ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Persistent connections: the restart breaks them under the workers' feet.
        "CLOSELOOP_DB_CONN_MAX_AGE": "60",
        "CLOSELOOP_INTAKE_RATE": "1000000/minute",
        "CLOSELOOP_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "CLOSELOOP_LOG_LEVEL": "WARNING",
        "CLOSELOOP_Q_WORKERS": "2",
    }
    for name in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "REDIS_URL"):
        env.pop(name, None)
    return env


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def spawn(cmd: list[str], env: dict, logfile: Path) -> subprocess.Popen:
    # Own process group, so a SIGKILL takes the whole tree (qcluster forks workers).
    with open(logfile, "ab") as out:
        return subprocess.Popen(  # noqa: S603
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill_group(process: subprocess.Popen, *, graceful: bool = False) -> None:
    """SIGKILL the whole process group; with `graceful`, first let the leader stop itself."""
    if graceful:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)


# --- part 1: intakes while PostgreSQL restarts ----------------------------------------------


class IntakeRun:
    def __init__(self, *, port, key, secret, intakes, clients, retry_share, deadline):
        self.port, self.key, self.secret = port, key, secret
        self.clients, self.deadline = clients, deadline
        run = os.urandom(4).hex()
        rng = random.Random(11)  # noqa: S311 - load shape, not security
        self.ids = [f"rel-{run}-{i}" for i in range(intakes)]
        # A channel that missed an answer sends the same contact again: sometimes
        # after the first was stored, sometimes while it is still in flight.
        self.plan = self.ids + rng.sample(self.ids, int(intakes * retry_share))
        rng.shuffle(self.plan)
        self.lock = threading.Lock()
        self.acks: dict[str, set[str]] = {}
        self.requests = 0
        self.statuses: Counter = Counter()
        self.connection_errors = 0
        self.given_up: list[str] = []
        self.local = threading.local()

    def _conn(self):
        if getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return self.local.conn

    def _body(self, external_id: str) -> bytes:
        n = int(external_id.rsplit("-", 1)[1])
        return json.dumps(
            {
                "external_id": external_id,
                "customer": {"name": "可靠性客户", "phone": f"137{n:08d}"},
                "subject": "快递延误",
                "body": f"订单 SO{n} 的快递三天没到，客服电话也打不通。",
                "order_no": f"REL{n}",
            },
            ensure_ascii=False,
        ).encode()

    def send(self, external_id: str) -> None:
        body = self._body(external_id)
        delay = 0.05
        while time.monotonic() < self.deadline:
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Closeloop-Key": self.key,
                "X-Closeloop-Timestamp": timestamp,
                "X-Closeloop-Signature": sign(self.secret, timestamp, body),
            }
            try:
                conn = self._conn()
                conn.request("POST", "/api/v1/intake/", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                self.local.conn = None
                with self.lock:
                    self.requests += 1
                    self.connection_errors += 1
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            with self.lock:
                self.requests += 1
                self.statuses[status] += 1
            if status in (200, 201):
                number = json.loads(payload)["number"]
                with self.lock:
                    self.acks.setdefault(external_id, set()).add(number)
                return
            if status == 429 or status >= 500:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            # Any other answer is final for a channel: the contact was refused.
            with self.lock:
                self.given_up.append(f"{external_id}: {status} {payload[:200]!r}")
            return
        with self.lock:
            self.given_up.append(f"{external_id}: not acknowledged before the deadline")

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.acks)


def intake_phase(args, pg: ThrowawayPostgres, env: dict, workdir: Path) -> dict:
    channel = json.loads(manage(env, "channel_create", "--code", "reliability", "--kind", "app"))
    port = free_port()
    server = spawn(
        [
            sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
            "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
            "--access-logfile", "/dev/null", "config.wsgi",
        ],
        env,
        workdir / "gunicorn.log",
    )  # fmt: skip
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("gunicorn did not start:\n" + (workdir / "gunicorn.log").read_text())
        run = IntakeRun(
            port=port,
            key=channel["key"],
            secret=channel["secret"],
            intakes=args.intakes,
            clients=args.clients,
            retry_share=args.retry_share,
            deadline=time.monotonic() + args.deadline,
        )
        restarts: list[dict] = []

        def restarter():
            for n in range(1, args.restarts + 1):
                target = args.intakes * n // (args.restarts + 1)
                while run.acknowledged() < target and time.monotonic() < run.deadline:
                    time.sleep(0.02)
                at = run.acknowledged()
                seconds = pg.restart()
                restarts.append({"after_acknowledged": at, "seconds": round(seconds, 2)})
                log(f"PostgreSQL restarted after {at} acknowledged ({seconds:.1f} s)")

        log(f"{args.intakes} contacts from {args.clients} clients, {len(run.plan)} sends planned")
        started = time.perf_counter()
        chaos = threading.Thread(target=restarter)
        chaos.start()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(run.send, run.plan))
        chaos.join()
        wall = time.perf_counter() - started
    finally:
        kill_group(server, graceful=True)

    from django.db import connection

    connection.close()  # the restart broke any connection this process held
    from complaints.models import Contact, Ticket

    stored_rows = list(
        Contact.objects.filter(channel__code="reliability").values_list(
            "external_id", "ticket__number"
        )
    )
    stored: dict[str, list[str]] = {}
    for external_id, number in stored_rows:
        stored.setdefault(external_id, []).append(number)
    tickets = Ticket.objects.filter(contacts__channel__code="reliability").distinct().count()
    orphans = Ticket.objects.filter(contacts__isnull=True).count()
    lost = [e for e in run.acks if e not in stored]
    duplicated = [e for e, numbers in stored.items() if len(numbers) > 1]
    mismatched = [
        e
        for e, numbers in run.acks.items()
        if len(numbers) > 1 or stored.get(e, [None])[0] not in numbers
    ]
    return {
        "contacts": args.intakes,
        "clients": args.clients,
        "sent": run.requests,
        "planned_resends": len(run.plan) - args.intakes,
        "statuses": dict(sorted(run.statuses.items())),
        "connection_errors": run.connection_errors,
        "acknowledged": len(run.acks),
        "stored": len(stored),
        "tickets": tickets,
        "lost": len(lost),
        "duplicates": len(duplicated) + orphans + max(0, tickets - len(stored)),
        "acknowledged_with_another_number": len(mismatched),
        "not_acknowledged": len(run.given_up),
        "restarts": restarts,
        "wall_seconds": round(wall, 1),
        "examples": (lost + duplicated + mismatched + run.given_up)[:5],
    }


# --- part 2: a worker killed mid-sweep ------------------------------------------------------


def sweep_phase(args, env: dict, workdir: Path) -> dict:
    import datetime as dt

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count, F
    from django.utils import timezone
    from django_q.models import OrmQ
    from django_q.tasks import async_task, fetch

    from complaints.models import EventKind, Notification, Role, StaffProfile, TimelineEvent
    from sla.models import Clock, WarningLevel

    connection.close()
    supervisor, _ = get_user_model().objects.get_or_create(
        username="reliability-supervisor", defaults={"email": "sup@example.com"}
    )
    StaffProfile.objects.update_or_create(user=supervisor, defaults={"role": Role.SUPERVISOR})
    now = timezone.now()
    due = Clock.objects.filter(
        next_check_at__isnull=False, ticket__contacts__channel__code="reliability"
    )
    if args.sweep_tickets:
        chosen = sorted(set(due.values_list("ticket_id", flat=True)))[: args.sweep_tickets]
        due = due.filter(ticket_id__in=chosen)
    clock_ids = list(due.values_list("pk", flat=True))
    month = dt.timedelta(days=30)
    Clock.objects.filter(pk__in=clock_ids).update(
        started_at=F("started_at") - month,
        due_at=F("due_at") - month,
        next_check_at=now - dt.timedelta(minutes=1),
    )
    total = len(clock_ids)
    ticket_ids = set(Clock.objects.filter(pk__in=clock_ids).values_list("ticket_id", flat=True))
    log(f"{total} overdue clocks on {len(ticket_ids)} tickets; qcluster with 2 workers")

    def warned() -> int:
        return Clock.objects.filter(pk__in=clock_ids, warned_level=WarningLevel.BREACH).count()

    qcluster_cmd = [sys.executable, "manage.py", "qcluster"]
    first = spawn(qcluster_cmd, env, workdir / "qcluster.log")
    # Two sweeps at once, as when one schedule run overlaps the next.
    async_task("sla.tasks.sweep")
    async_task("sla.tasks.sweep")
    kill_at = max(1, total // 5)
    deadline = time.monotonic() + args.deadline
    while (done := warned()) < kill_at and time.monotonic() < deadline:
        time.sleep(0.02)
    kill_group(first)
    at_kill = warned()
    log(f"qcluster SIGKILLed with {at_kill}/{total} clocks warned")
    OrmQ.objects.all().delete()  # the killed run's leases; the schedule enqueues anew
    second = spawn(qcluster_cmd, env, workdir / "qcluster.log")
    try:
        async_task("sla.tasks.sweep")
        while (done := warned()) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        log(f"{done}/{total} clocks warned after the restart")
        # One more scheduled run after everything was sent: it must add nothing.
        last = async_task("sla.tasks.sweep")
        while fetch(last) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        last_result = fetch(last)
    finally:
        kill_group(second, graceful=True)

    events = TimelineEvent.objects.filter(ticket_id__in=ticket_ids, kind=EventKind.SLA_WARNING)
    per_ticket = Counter(events.values_list("ticket_id", flat=True))
    clocks_per_ticket = Counter(
        Clock.objects.filter(pk__in=clock_ids).values_list("ticket_id", flat=True)
    )
    missing = sum(max(0, clocks_per_ticket[t] - per_ticket[t]) for t in ticket_ids)
    extra = sum(max(0, per_ticket[t] - clocks_per_ticket[t]) for t in ticket_ids)
    notifications = Notification.objects.filter(ticket_id__in=ticket_ids)
    doubled = (
        notifications.values("recipient_id", "ticket_id", "message")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    event_keys = set(events.values_list("ticket_id", "message"))
    notified_keys = set(notifications.values_list("ticket_id", "message"))
    return {
        "due_clocks": total,
        "tickets": len(ticket_ids),
        "warned_at_kill": at_kill,
        "warned": done,
        "warnings_on_timeline": sum(per_ticket.values()),
        "missing_warnings": missing,
        "duplicate_warnings": extra,
        "notifications": notifications.count(),
        "duplicate_notifications": doubled,
        "warnings_without_notification": len(event_keys - notified_keys),
        "last_sweep": last_result.result if last_result else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intakes", type=int, default=3000, help="distinct contacts")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--retry-share", type=float, default=0.1, help="contacts sent twice")
    parser.add_argument("--restarts", type=int, default=2, help="PostgreSQL restarts mid-run")
    parser.add_argument("--deadline", type=float, default=900, help="seconds per phase")
    parser.add_argument(
        "--sweep-tickets", type=int, default=0, help="overdue tickets in the sweep (0: all)"
    )
    parser.add_argument("--skip-sweep", action="store_true", help="only the intake part")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    # A plain `kill` (or a CI time-out) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pg = ThrowawayPostgres(free_port())
    workdir = Path(tempfile.mkdtemp(prefix="closeloop-reliability-logs-"))
    report: dict = {}
    try:
        pg.start()
        log(f"throwaway PostgreSQL on 127.0.0.1:{pg.port} in {pg.dir}")
        env = server_env(pg.url)
        manage(env, "migrate", "--noinput", "-v0")
        os.environ.update({k: v for k, v in env.items() if k.startswith(("DATABASE", "CLOSELOOP"))})
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        report["intake"] = intake_phase(args, pg, env, workdir)
        if not args.skip_sweep:
            report["sweep"] = sweep_phase(args, env, workdir)
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: S110 - Django may not be set up yet
            pass
        pg.stop()

    intake = report["intake"]
    failures = []
    if intake["lost"] or intake["duplicates"] or intake["acknowledged_with_another_number"]:
        failures.append("intake lost or duplicated contacts")
    if intake["not_acknowledged"]:
        failures.append("some contacts were never acknowledged")
    if len(intake["restarts"]) < args.restarts:
        failures.append("PostgreSQL was not restarted as planned")
    sweep = report.get("sweep")
    if sweep and sweep["warned"] < sweep["due_clocks"]:
        failures.append("the sweep did not finish before the deadline (raise --deadline)")
    elif sweep and (
        sweep["missing_warnings"]
        or sweep["duplicate_warnings"]
        or sweep["duplicate_notifications"]
        or sweep["warnings_without_notification"]
    ):
        failures.append("SLA warnings missing or duplicated")
    if sweep and not 0 < sweep["warned_at_kill"] < sweep["due_clocks"]:
        failures.append("the worker was not killed mid-sweep")
    report["failures"] = failures
    if failures:
        report["logs"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(
            f"intake: sent {intake['sent']} requests for {intake['contacts']} contacts "
            f"({intake['planned_resends']} re-sent) from {intake['clients']} clients; "
            f"acknowledged {intake['acknowledged']}, stored {intake['stored']}, "
            f"lost {intake['lost']}, duplicates {intake['duplicates']}; "
            f"statuses {intake['statuses']}, connection errors {intake['connection_errors']}, "
            f"PostgreSQL restarts {len(intake['restarts'])}, {intake['wall_seconds']} s"
        )
        if sweep:
            print(
                f"sweep: {sweep['due_clocks']} due warnings on {sweep['tickets']} tickets; "
                f"worker SIGKILLed at {sweep['warned_at_kill']}; fired {sweep['warnings_on_timeline']} "
                f"(missing {sweep['missing_warnings']}, duplicates {sweep['duplicate_warnings']}); "
                f"notifications {sweep['notifications']} "
                f"(duplicates {sweep['duplicate_notifications']})"
            )
        print("FAILED: " + "; ".join(failures) if failures else "OK: nothing lost, nothing doubled")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
