"""Builds the demo tickets in memory and writes them in bulk.

Why not call `complaints.services` per ticket: eight service calls per ticket, each
with its row lock and timeline insert, take minutes for 2,000 tickets. Instead every
ticket is replayed step by step under the rules the services enforce: each step must
be a transition the model's FSM allows from the current state, writes the timeline
event (actor, before/after) the service would write and bumps the version; step
timestamps only move forward; resolutions carry the four elements; priorities come
from `grade_priority` and deadlines from `sla.services`. Ticket numbers are reserved
from the per-day counter `ticket_create` uses, so later tickets never collide.
"""

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from channels.models import Channel, ChannelKind
from complaints import numbering
from complaints.models import (
    OPEN_STATUSES,
    Category,
    Contact,
    Customer,
    CustomerIdentity,
    Department,
    EventKind,
    IdentityKind,
    Impact,
    Level,
    Role,
    Status,
    Survey,
    Ticket,
    TimelineEvent,
)
from complaints.phone import normalize_phone
from complaints.services import grade_priority, status_url
from sla.services import ticket_set_deadlines

from .demo_data import (
    CLOSED_FLOWS,
    DEMO_CHANNELS,
    ESCALATION_REASONS,
    FLOW_SHARES,
    FLOWS,
    FOLLOW_UPS,
    GIVEN_NAMES,
    HISTORY_DAYS,
    IDLE,
    MAIL_DOMAINS,
    MERGED_SHARE,
    MOBILE_PREFIXES,
    NOTES,
    ORDER_CATEGORIES,
    PUBLIC_KINDS,
    REGIONS,
    REOPEN_REASONS,
    REPLIES,
    RESPONSIBLE,
    SOCIAL_KINDS,
    SOLUTIONS,
    STEP_MINUTES,
    STREETS,
    SURNAMES,
    TEAM_ASSIGNEES,
    TEAM_LEAD,
    UNHAPPY_FOLLOW_UP,
    category_code_for,
    subject_from,
)

# Every demo ticket's first contact carries this external id prefix: it is how a
# second run recognizes the demo data.
DEMO_CONTACT_PREFIX = "seed-demo-"
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _fsm_sources() -> dict[str, set[str]]:
    sources: dict[str, set[str]] = {}
    for transition in Ticket._meta.get_field("status").get_all_transitions(Ticket):
        sources.setdefault(transition.name, set()).add(transition.source)
    return sources


# Source states of each model transition, so the replay refuses what the FSM refuses.
FSM_SOURCES = _fsm_sources()


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


class TicketReplay:
    """One ticket walked through the loop in memory, recording what the services record.

    The FSM field is protected, so the final status (known from the plan) goes to the
    constructor; `state` follows the steps and must end there.
    """

    def __init__(self, ticket: Ticket, *, at: dt.datetime, actor):
        self.ticket = ticket
        self.state = Status.RECEIVED
        self.events: list[TimelineEvent] = []
        self.contact_ticket = ticket  # a merge moves the contact to the surviving ticket
        after = {"status": self.state, "channel": ticket.channel.code, "number": ticket.number}
        self._event(at, actor, EventKind.CREATED, ticket.subject, after=after)

    def _event(self, at, actor, kind, message="", *, before=None, after=None):
        self.events.append(
            TimelineEvent(
                ticket=self.ticket,
                actor=actor,
                kind=kind,
                message=message,
                before=before or {},
                after=after or {},
                created_at=at,
            )
        )

    def _move(self, transition: str, target: str) -> None:
        if self.state not in FSM_SOURCES[transition]:
            raise CommandError(f"Demo plan bug: {transition} from {self.state}")
        self.state = target
        self.ticket.version += 1

    def _snapshot(self) -> dict:
        t = self.ticket
        category = t.category.full_name if t.category else None
        return {
            "status": self.state,
            "category": category,
            "amount_level": t.amount_level,
            "impact": t.impact,
            "urgency": t.urgency,
            "priority": t.priority,
        }

    def classify(self, at, actor, *, category: Category, grades: tuple[int, int, int]):
        t = self.ticket
        before = self._snapshot()
        t.category = category
        t.amount_level, t.impact, t.urgency = grades
        t.priority = grade_priority(amount_level=grades[0], impact=grades[1], urgency=grades[2])
        self._move("classify", Status.CLASSIFIED)
        t.classified_at = at
        message = _("%(category)s, priority %(priority)s") % {
            "category": category.full_name,
            "priority": t.get_priority_display(),
        }
        self._event(at, actor, EventKind.CLASSIFIED, message, before=before, after=self._snapshot())

    def assign(self, at, actor, *, assignee):
        t = self.ticket
        before = {"status": self.state, "assignee": None, "team": t.team.name}
        t.assignee = assignee
        keep_working = self.state == Status.IN_PROGRESS
        self._move("assign", Status.IN_PROGRESS if keep_working else Status.ASSIGNED)
        t.assigned_at = at
        message = _("Assigned to %(user)s") % {"user": _name(assignee)}
        after = {"status": self.state, "assignee": assignee.get_username(), "team": t.team.name}
        self._event(at, actor, EventKind.ASSIGNED, message, before=before, after=after)

    def first_response(self, at, actor):
        """Tell the customer the follow-up deadline and how to check the status."""
        t = self.ticket
        local = timezone.localtime(at)
        promised = (local + dt.timedelta(days=1)).replace(
            hour=18, minute=0, second=0, microsecond=0
        )
        message = (
            f"您好，您的投诉已受理，工单号 {t.number}。我们将在 {promised.month}月{promised.day}日"
            f" 18:00 前回复处理结果，您也可以随时通过 {status_url(t)} 输入工单号和手机后四位"
            "查询进度。"
        )
        t.promised_followup_at = promised
        self._move("first_response", Status.ASSIGNED)
        t.first_responded_at = t.first_response_sent_at = at
        after = {"promised_followup_at": _iso(promised)}
        self._event(at, actor, EventKind.FIRST_RESPONSE, message, after=after)

    def start(self, at, actor):
        if self.ticket.first_responded_at is None:
            raise CommandError("Demo plan bug: start before the first response")
        self._move("start", Status.IN_PROGRESS)
        self.ticket.started_at = at
        before, after = {"status": Status.ASSIGNED}, {"status": self.state}
        self._event(at, actor, EventKind.STARTED, before=before, after=after)

    def write(self, at, actor, *, body: str, internal: bool):
        self.ticket.version += 1
        self._event(at, actor, EventKind.NOTE if internal else EventKind.REPLY, body)

    def escalate(self, at, actor, *, reason: str):
        t = self.ticket
        if self.state not in OPEN_STATUSES:
            raise CommandError("Demo plan bug: escalating a ticket that is not open")
        t.escalation_level += 1
        t.version += 1
        before = {"escalation_level": t.escalation_level - 1}
        after = {"escalation_level": t.escalation_level}
        self._event(at, actor, EventKind.ESCALATED, reason, before=before, after=after)

    def resolve(self, at, actor, *, solution, responsible_person, resolution_time, evidence_ref):
        t = self.ticket
        t.solution, t.responsible_person = solution, responsible_person
        t.resolution_time, t.evidence_ref = resolution_time, evidence_ref
        if t.missing_four_elements(has_attachment=False):
            raise CommandError("Demo plan bug: a resolution without the four elements")
        self._move("resolve", Status.RESOLVED)
        t.resolved_at = at
        after = {
            "status": self.state,
            "resolution_time": _iso(resolution_time),
            "responsible_person": responsible_person,
            "evidence_ref": evidence_ref,
        }
        before = {"status": Status.IN_PROGRESS}
        self._event(at, actor, EventKind.RESOLVED, solution, before=before, after=after)

    def follow_up(self, at, actor, *, note: str):
        self.ticket.followup_note = note
        self._move("follow_up", Status.FOLLOWED_UP)
        self.ticket.followed_up_at = at
        before, after = {"status": Status.RESOLVED}, {"status": self.state}
        self._event(at, actor, EventKind.FOLLOWED_UP, note, before=before, after=after)

    def close(self, at, actor):
        before = {"status": self.state}
        self._move("close", Status.CLOSED)
        self.ticket.closed_at = at
        self._event(at, actor, EventKind.CLOSED, before=before, after={"status": self.state})

    def reopen(self, at, actor, *, reason: str):
        t = self.ticket
        before = {"status": self.state}
        self._move("reopen", Status.IN_PROGRESS)
        t.reopen_count += 1
        t.resolved_at = t.followed_up_at = t.closed_at = None
        after = {"status": self.state, "reopen_count": t.reopen_count}
        self._event(at, actor, EventKind.REOPENED, reason, before=before, after=after)

    def merge(self, at, actor, *, into: "TicketReplay"):
        target = into.ticket
        if into.state not in OPEN_STATUSES or target.customer is not self.ticket.customer:
            raise CommandError("Demo plan bug: merge target not open or of another customer")
        before = {"status": self.state}
        self._move("merge", Status.MERGED)
        self.ticket.merged_into = self.contact_ticket = target
        after = {"status": self.state, "merged_into": target.number}
        self._event(at, actor, EventKind.MERGED, target.number, before=before, after=after)
        target.contact_count += 1
        target.version += 1
        after = {"merged_from": self.ticket.number, "contacts_moved": 1}
        into._event(at, actor, EventKind.MERGED_FROM, self.ticket.number, after=after)

    def finish(self) -> None:
        if self.state != self.ticket.status:
            raise CommandError(f"Demo plan bug: ended {self.state}, planned {self.ticket.status}")
        ticket_set_deadlines(self.ticket)


# --- planning ---------------------------------------------------------------------


@dataclass
class Step:
    minutes: float  # since the ticket was received
    name: str
    actor: object = None
    data: dict = field(default_factory=dict)


@dataclass
class CustomerDraft:
    customer: Customer
    channel_kinds: set = field(default_factory=set)
    first_seen: dt.datetime | None = None


@dataclass
class TicketPlan:
    customer: CustomerDraft
    channel: Channel
    team: Department
    text: str
    category: Category
    grades: tuple[int, int, int]
    steps: list[Step]
    created_at: dt.datetime
    into: "TicketPlan | None" = None  # the open ticket a duplicate is merged into
    replay: TicketReplay | None = None

    @property
    def final_status(self) -> str:
        targets = {
            "classify": Status.CLASSIFIED,
            "assign": Status.ASSIGNED,
            "start": Status.IN_PROGRESS,
            "resolve": Status.RESOLVED,
            "follow_up": Status.FOLLOWED_UP,
            "close": Status.CLOSED,
            "reopen": Status.IN_PROGRESS,
            "merge": Status.MERGED,
        }
        status = Status.RECEIVED
        for step in self.steps:
            status = targets.get(step.name, status)
        return status

    def at(self, step: Step) -> dt.datetime:
        return self.created_at + dt.timedelta(minutes=step.minutes)


class DemoBuilder:
    """Plans the demo tickets, replays them in memory, and `save()`s them in bulk."""

    def __init__(
        self,
        *,
        rng: random.Random,
        now: dt.datetime,
        users: dict,
        teams: dict,
        channels: list[Channel],
        categories: dict[str, Category],
        texts: list[str],
    ):
        self.rng, self.now = rng, now
        self.users, self.teams, self.categories = users, teams, categories
        self.channels = channels
        self.channel_weights = [share for *_rest, share in DEMO_CHANNELS]
        self.texts = texts
        self.customers: list[CustomerDraft] = []
        self.used_phones: set[str] = set()
        self.used_keys: set[tuple[str, str]] = set()
        self.plans: list[TicketPlan] = []
        self.duplicates: list[TicketPlan] = []
        # Compensation and tasks on the replayed tickets (demo_collaboration), if any.
        self.collaboration = None

    # -- people ---------------------------------------------------------------------

    def _new_customer(self) -> CustomerDraft:
        rng = self.rng
        surname = rng.choice(SURNAMES)
        # Hotline agents often note only the surname.
        title = rng.choice(["先生", "女士"]) if rng.random() < 0.1 else rng.choice(GIVEN_NAMES)
        while True:
            digits = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
            # Numbers arrive in every shape; they are stored normalized, as intake does.
            shapes = [digits, f"{digits[:3]} {digits[3:7]} {digits[7:]}", f"+86-{digits}"]
            phone = normalize_phone(rng.choice([*shapes, f"0086{digits}"]))
            if phone and phone not in self.used_phones:
                self.used_phones.add(phone)
                break
        region = rng.choice(REGIONS)
        address = (
            f"{region}{rng.choice(STREETS)}{rng.randint(1, 999)}号{rng.randint(1, 30)}栋"
            f"{rng.randint(1, 6)}单元{rng.randint(101, 2802)}室"
        )
        vip = rng.choices([0, 1, 2, 3], weights=[88, 7, 3, 2])[0]
        customer = Customer(
            name=surname + title, phone=phone, region=region, address=address, vip_level=vip
        )
        draft = CustomerDraft(customer)
        self.customers.append(draft)
        return draft

    def _pick_customer(self) -> CustomerDraft:
        if self.customers and self.rng.random() < 0.2:
            return self.rng.choice(self.customers)  # a returning customer
        return self._new_customer()

    def _team_members(self, team: str) -> list:
        return [self.users[username] for username, _weight in TEAM_ASSIGNEES[team]]

    def _pick_assignee(self, team: str):
        names, weights = zip(*TEAM_ASSIGNEES[team], strict=True)
        return self.users[self.rng.choices(names, weights=weights)[0]]

    def _grades(self, channel: Channel, vip: int) -> tuple[int, int, int]:
        rng = self.rng
        amount = rng.choices([Level.LOW, Level.MEDIUM, Level.HIGH], weights=[60, 30, 10])[0]
        if channel.kind in PUBLIC_KINDS or (channel.kind in SOCIAL_KINDS and rng.random() < 0.25):
            impact = Impact.PUBLIC
        else:
            impact = rng.choices(list(Impact), weights=[88, 9, 3])[0]
        urgency = rng.choices([Level.LOW, Level.MEDIUM, Level.HIGH], weights=[45, 47, 8])[0]
        if vip >= 2:
            urgency = max(urgency, Level.MEDIUM)
        return int(amount), int(impact), int(urgency)

    # -- paths ----------------------------------------------------------------------

    def _steps(
        self, flow: str, *, team: str, channel: Channel, category: str, grades: tuple[int, int, int]
    ) -> list[Step]:
        rng, users = self.rng, self.users
        lead = users[TEAM_LEAD[team]]
        names = FLOWS[flow]
        assignee = self._pick_assignee(team) if "assign" in names else None
        # Tier-1 agents mostly take tickets themselves; otherwise the lead assigns.
        self_take = assignee is not None and assignee.profile.role == Role.AGENT
        self_take = self_take and rng.random() < 0.65
        # Hotline agents type the call in; other channels arrive through intake.
        creator = None
        if channel.kind == ChannelKind.HOTLINE:
            creator = rng.choice([m for m in self._team_members(team) if m is not lead])
        steps = [Step(0.0, "create", creator)]
        clock = 0.0

        def add(name, actor, *, extra=0.0, **data):
            nonlocal clock
            low, high = STEP_MINUTES[name]
            clock += rng.uniform(low, high) + extra
            steps.append(Step(clock, name, actor, data))

        # Escalation is a flag raised while the ticket is still being worked.
        public = grades[1] == Impact.PUBLIC
        level = 0
        if rng.random() < (0.35 if public or grades[2] == Level.HIGH else 0.03):
            level = 2 if public and rng.random() < 0.5 else 1
        open_steps = names.index("resolve") if "resolve" in names else len(names)
        escalate_after = rng.randrange(open_steps + 1) - 1  # -1: right after receipt

        def maybe_escalate(position):
            if level and position == escalate_after:
                cause = "public" if public else rng.choice(["overdue", "urgent"])
                add("escalate", lead, reason=ESCALATION_REASONS[cause])
                if level == 2:
                    add("escalate", users["supervisor"], reason=ESCALATION_REASONS[cause])

        maybe_escalate(-1)
        for position, entry in enumerate(names):
            name, _sep, variant = entry.partition(":")
            if name == "classify":
                add(name, assignee if self_take else rng.choice(self._team_members(team)))
            elif name == "assign":
                add(name, assignee if self_take else lead, assignee=assignee)
            elif name == "first_response":
                # A few tickets miss the 4-hour first-response target.
                late = rng.uniform(240, 600) if rng.random() < 0.04 else 0.0
                add(name, assignee, extra=late)
            elif name == "start":
                add(name, assignee)
                if rng.random() < 0.3:
                    add("note", assignee, body=NOTES[category], internal=True)
                if rng.random() < 0.2:
                    add("reply", assignee, body=rng.choice(REPLIES), internal=False)
            elif name == "resolve":
                add(name, assignee)
            elif name == "follow_up":
                note = UNHAPPY_FOLLOW_UP if variant == "unhappy" else rng.choice(FOLLOW_UPS)
                add(name, assignee, note=note)
            elif name == "close":
                add(name, assignee if rng.random() < 0.7 else lead)
            elif name == "reopen":
                actor = lead if rng.random() < 0.6 else assignee
                add(name, actor, reason=REOPEN_REASONS[variant])
            maybe_escalate(position)
        return steps

    def _plan(self, flow: str, text: str) -> TicketPlan:
        rng = self.rng
        channel = rng.choices(self.channels, weights=self.channel_weights)[0]
        customer = self._pick_customer()
        customer.channel_kinds.add(channel.kind)
        team = "team-a" if rng.random() < 0.6 else "team-b"
        category = category_code_for(text)
        grades = self._grades(channel, customer.customer.vip_level)
        steps = self._steps(flow, team=team, channel=channel, category=category, grades=grades)
        span = dt.timedelta(minutes=steps[-1].minutes)
        if flow in CLOSED_FLOWS:
            latest = self.now - span - dt.timedelta(minutes=30)
            earliest = self.now - dt.timedelta(days=HISTORY_DAYS)
            created = earliest + (latest - earliest) * rng.random()
        else:
            max_idle, power = IDLE[flow]
            created = self.now - span - dt.timedelta(minutes=1 + max_idle * rng.random() ** power)
        return TicketPlan(
            customer=customer,
            channel=channel,
            team=self.teams[team],
            text=text,
            category=self.categories[category],
            grades=grades,
            steps=steps,
            created_at=created,
        )

    def _plan_duplicate(self, target: TicketPlan) -> TicketPlan | None:
        """The customer complains again through another channel; a lead merges the two."""
        rng = self.rng
        window = self.now - target.created_at
        if window < dt.timedelta(minutes=30):
            return None
        created = target.created_at + window * rng.uniform(0.05, 0.6)
        merge_minutes = (self.now - created).total_seconds() / 60 * rng.uniform(0.2, 0.9)
        channel = rng.choice(
            [c for c in self.channels if c.code != target.channel.code and c.kind != "other"]
        )
        target.customer.channel_kinds.add(channel.kind)
        team = target.team.code
        steps = [Step(0.0, "create", None)]
        if rng.random() < 0.4:
            classifier = rng.choice(self._team_members(team))
            steps.append(Step(merge_minutes * 0.4, "classify", classifier))
        merger = rng.choice([self.users[TEAM_LEAD[team]], self.users["supervisor"]])
        steps.append(Step(merge_minutes, "merge", merger))
        return TicketPlan(
            customer=target.customer,
            channel=channel,
            team=target.team,
            text=target.text,
            category=target.category,
            grades=target.grades,
            steps=steps,
            created_at=created,
            into=target,
        )

    def plan(self, count: int) -> None:
        rng = self.rng
        merged = round(count * MERGED_SHARE)
        flows = []
        for flow, share in FLOW_SHARES.items():
            # From 30 tickets on, every state shows up at least once.
            flows += [flow] * (max(round(count * share), 1 if count >= 30 else 0))
        flows = flows[: count - merged]
        flows += ["closed"] * (count - merged - len(flows))
        rng.shuffle(flows)
        texts = rng.sample(self.texts, min(len(flows), len(self.texts)))
        self.plans = [self._plan(flow, texts[i % len(texts)]) for i, flow in enumerate(flows)]
        targets = [
            p
            for p in self.plans
            if p.final_status in OPEN_STATUSES and not any(s.name == "reopen" for s in p.steps)
        ]
        rng.shuffle(targets)
        for target in targets:
            if len(self.duplicates) >= merged:
                break
            if duplicate := self._plan_duplicate(target):
                self.duplicates.append(duplicate)

    def all_plans(self) -> list[TicketPlan]:
        return [*self.plans, *self.duplicates]

    # -- replay ---------------------------------------------------------------------

    def replay(self, numbers: dict[int, str]) -> None:
        """Walk every plan through its steps; `numbers` maps id(plan) to its ticket number.

        Surviving tickets go first, so a duplicate's merge finds its target replayed.
        """
        for plan in self.all_plans():
            self._replay(plan, numbers[id(plan)])
            customer = plan.customer
            if customer.first_seen is None or plan.created_at < customer.first_seen:
                customer.first_seen = plan.created_at

    def _replay(self, plan: TicketPlan, number: str) -> None:
        rng = self.rng
        category = plan.category.code
        order_no = ""
        if rng.random() < (0.8 if category in ORDER_CATEGORIES else 0.35):
            ordered = timezone.localtime(plan.created_at) - dt.timedelta(days=rng.randint(0, 20))
            order_no = f"DD{ordered:%Y%m%d}{rng.randrange(10**6):06d}"
        ticket = Ticket(
            number=number,
            status=plan.final_status,
            customer=plan.customer.customer,
            channel=plan.channel,
            subject=subject_from(plan.text),
            body=plan.text,
            order_no=order_no,
            team=plan.team,
            created_at=plan.created_at,
        )
        replay = plan.replay = TicketReplay(ticket, at=plan.created_at, actor=plan.steps[0].actor)
        assignee = None
        for step in plan.steps[1:]:
            at, actor, data = plan.at(step), step.actor, step.data
            if step.name == "classify":
                replay.classify(at, actor, category=plan.category, grades=plan.grades)
            elif step.name == "assign":
                assignee = data["assignee"]
                replay.assign(at, actor, assignee=assignee)
            elif step.name == "first_response":
                replay.first_response(at, actor)
            elif step.name == "start":
                replay.start(at, actor)
            elif step.name in ("note", "reply"):
                replay.write(at, actor, body=data["body"], internal=data["internal"])
            elif step.name == "escalate":
                replay.escalate(at, actor, reason=data["reason"])
            elif step.name == "resolve":
                replay.resolve(
                    at,
                    actor,
                    solution=rng.choice(SOLUTIONS[category]),
                    responsible_person=RESPONSIBLE.get(category)
                    or f"{plan.team.name} {_name(assignee)}",
                    # The solution was carried out a little before it was recorded.
                    resolution_time=at - dt.timedelta(minutes=rng.uniform(5, 50)),
                    evidence_ref=self._evidence(category, number),
                )
            elif step.name == "follow_up":
                replay.follow_up(at, actor, note=data["note"])
            elif step.name == "close":
                replay.close(at, actor)
            elif step.name == "reopen":
                replay.reopen(at, actor, reason=data["reason"])
            elif step.name == "merge":
                replay.merge(at, actor, into=plan.into.replay)
            else:
                raise CommandError(f"Demo plan bug: unknown step {step.name}")

    def _evidence(self, category: str, number: str) -> str:
        rng = self.rng
        if category == "logistics":
            return f"快递单号 SF{rng.randrange(10**12):012d}"
        if category in ("quality", "returns"):
            return f"退换货单 RH{rng.randrange(10**10):010d}"
        if category in ("install-delay", "repair-response"):
            return f"上门服务单 FW{rng.randrange(10**10):010d}"
        return f"通话录音 REC-{number}"

    # -- identities -----------------------------------------------------------------

    def _unique_key(self, kind: str, make) -> str:
        while True:
            key = make()
            if (kind, key) not in self.used_keys:
                self.used_keys.add((kind, key))
                return key

    def _surveys(self, replays) -> tuple[list[Survey], list[TimelineEvent]]:
        surveys, events = [], []
        for replay in replays:
            if replay.ticket.resolved_at is not None:
                survey, survey_events = _demo_survey(self, replay)
                surveys.append(survey)
                events.extend(survey_events)
        return surveys, events

    def identities(self) -> list[CustomerIdentity]:
        """The keys by which each customer's channels know them (some have several)."""
        rng = self.rng
        makers = {
            IdentityKind.WECHAT_OPENID: lambda: "o" + "".join(rng.choices(_ID_CHARS, k=27)),
            IdentityKind.WECHAT_UNIONID: lambda: "o" + "".join(rng.choices(_ID_CHARS, k=27)),
            IdentityKind.APP_USER_ID: lambda: f"U{rng.randrange(10**9):09d}",
            IdentityKind.WEIBO_UID: lambda: str(rng.randrange(10**9, 10**10)),
            IdentityKind.DOUYIN_UID: lambda: str(rng.randrange(10**14, 10**15)),
            IdentityKind.EMAIL: lambda: (
                "".join(rng.choices(_LETTERS, k=rng.randint(4, 9)))
                + f"{rng.randrange(1000)}@{rng.choice(MAIL_DOMAINS)}"
            ),
        }
        by_channel = {
            ChannelKind.WECHAT: IdentityKind.WECHAT_OPENID,
            ChannelKind.MINIPROGRAM: IdentityKind.WECHAT_OPENID,
            ChannelKind.APP: IdentityKind.APP_USER_ID,
            ChannelKind.WEIBO: IdentityKind.WEIBO_UID,
            ChannelKind.DOUYIN: IdentityKind.DOUYIN_UID,
            ChannelKind.EMAIL: IdentityKind.EMAIL,
            ChannelKind.HOTLINE: IdentityKind.PHONE,
        }
        identities = []
        for draft in self.customers:
            customer = draft.customer
            customer.created_at = draft.first_seen
            kinds = {by_channel[k] for k in draft.channel_kinds if k in by_channel}
            if IdentityKind.WECHAT_OPENID in kinds and rng.random() < 0.3:
                kinds.add(IdentityKind.WECHAT_UNIONID)
            if rng.random() < 0.2:
                # Also known on a channel other than the ones they complained through.
                kinds.add(rng.choice([IdentityKind.WECHAT_OPENID, IdentityKind.APP_USER_ID]))
            if IdentityKind.EMAIL in kinds or ChannelKind.WEB in draft.channel_kinds:
                customer.email = self._unique_key(IdentityKind.EMAIL, makers[IdentityKind.EMAIL])
            for kind in sorted(kinds):
                if kind == IdentityKind.EMAIL:
                    key = customer.email
                elif kind == IdentityKind.PHONE:
                    key = customer.phone
                else:
                    key = self._unique_key(kind, makers[kind])
                identities.append(
                    CustomerIdentity(
                        customer=customer, kind=kind, external_key=key, created_at=draft.first_seen
                    )
                )
        return identities

    # -- writing --------------------------------------------------------------------

    def save(self) -> dict[str, int]:
        for plan in self.all_plans():
            plan.replay.finish()
        identities = self.identities()
        customers = [draft.customer for draft in self.customers]

        def by_time(plans):
            return sorted((p.replay for p in plans), key=lambda r: r.ticket.created_at)

        survivors, duplicates = by_time(self.plans), by_time(self.duplicates)
        replays = [*survivors, *duplicates]
        contacts = [
            Contact(
                ticket=r.contact_ticket,
                channel=r.ticket.channel,
                external_id=f"{DEMO_CONTACT_PREFIX}{i:06d}",
                body=r.ticket.body,
                occurred_at=r.ticket.created_at,
                created_at=r.ticket.created_at,
            )
            for i, r in enumerate(replays, start=1)
        ]
        events = sorted((e for r in replays for e in r.events), key=lambda e: e.created_at)
        Customer.objects.bulk_create(customers, batch_size=500)
        CustomerIdentity.objects.bulk_create(identities, batch_size=500)
        # Duplicates point at the tickets they were merged into, which need ids first.
        Ticket.objects.bulk_create([r.ticket for r in survivors], batch_size=500)
        Ticket.objects.bulk_create([r.ticket for r in duplicates], batch_size=500)
        Contact.objects.bulk_create(contacts, batch_size=1000)
        made = {"compensations": 0, "tasks": 0, "notifications": 0}
        if self.collaboration is not None:
            # Tasks and compensations first: their timeline events name them.
            made.update(self.collaboration.save())
        surveys, survey_events = self._surveys(survivors)
        Survey.objects.bulk_create(surveys, batch_size=500)
        events = sorted([*events, *survey_events], key=lambda e: e.created_at)
        made["surveys"] = len(surveys)
        TimelineEvent.objects.bulk_create(events, batch_size=1000)
        if self.collaboration is not None:
            made["notifications"] = self.collaboration.save_notifications()
        return {
            "customers": len(customers),
            "identities": len(identities),
            "tickets": len(replays),
            "events": len(events),
            **made,
        }


# What the field's customers answered on tickets that went on to close: mostly satisfied,
# some passives and detractors (a score under 6 would have reopened the ticket).
SURVEY_OVERALL = (10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 7, 7, 6, 6)


def _demo_survey(builder, replay) -> tuple[Survey, list[TimelineEvent]]:
    """The survey sent at resolution; answered (about 70 %) on tickets followed up since."""
    ticket, rng = replay.ticket, builder.rng
    sent = ticket.resolved_at
    survey = Survey(
        ticket=ticket,
        token=f"demo{rng.getrandbits(128):032x}",
        created_at=sent,
        expires_at=sent + dt.timedelta(days=settings.CLOSELOOP_SURVEY_VALID_DAYS),
    )
    resolver = next(e.actor for e in reversed(replay.events) if e.kind == EventKind.RESOLVED)
    events = [
        TimelineEvent(
            ticket=ticket,
            actor=resolver,
            kind=EventKind.SURVEY_SENT,
            message="",
            after={"expires_at": _iso(survey.expires_at)},
            created_at=sent,
        )
    ]
    if ticket.followed_up_at is None or rng.random() > 0.7:
        return survey, events
    overall = rng.choice(SURVEY_OVERALL)
    base = 5 if overall >= 9 else 4 if overall >= 7 else 3 if overall >= 5 else 2
    for dimension in Survey.DIMENSIONS:
        setattr(survey, dimension, max(1, min(5, base + rng.choice((-1, 0, 0, 0, 1)))))
    survey.overall = overall
    survey.answered_at = sent + (ticket.followed_up_at - sent) * rng.uniform(0.2, 0.9)
    scores = {d: getattr(survey, d) for d in Survey.DIMENSIONS}
    events.append(
        TimelineEvent(  # the customer's answer: no staff actor, as in survey_answer
            ticket=ticket,
            kind=EventKind.SURVEY_ANSWERED,
            after={"overall": overall, **scores},
            created_at=survey.answered_at,
        )
    )
    return survey, events


def reserve_ticket_numbers(per_day: Counter) -> dict[dt.date, int]:
    """Take a block of serials from each day's counter; returns each block's first serial.

    The creators' upsert (`complaints.numbering.UPSERT`) by `count` instead of 1, in the
    loader's transaction: the counter ends at the highest number used, and concurrent
    creators wait for the loader's commit (after `numbering.LOCK_TIMEOUT_MS`, in their own
    transaction).
    """
    first = {}
    with connection.cursor() as cursor:
        for day, count in sorted(per_day.items()):
            cursor.execute(numbering.UPSERT, [day.isoformat(), count])
            (last,) = cursor.fetchone()
            first[day] = last - count + 1
    return first
