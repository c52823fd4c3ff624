"""Compensation and collaboration tasks on the demo tickets, written as the services write them.

The services stamp every row with the current time and refuse closed tickets, so they
cannot put a ¥5 coupon on a ticket closed last month. Like the ticket replay, this
module writes the same rows, timeline events (kind, actor, message, before/after, task)
and notifications the services write, at times inside the ticket's history, under the
same rules: a grant stays within the granter's tier limit on the ticket's total
(`services.compensation_limits`), a request is routed to the lowest tier that covers
the new total, nobody decides their own request, tasks are worked by members of their
department, and every task on a resolved ticket finished before the ticket was resolved.

What it makes (shares of the demo tickets): coupons of ¥5–¥10 granted by agents and
¥30–¥80 by seniors, a few approved requests, one rejected request, pending requests
waiting for `senior` and for `supervisor`; finished tasks (with results) on resolved
tickets; on tickets still being worked, unclaimed tasks, tasks claimed by `logistics`,
a returned task and one overdue task.
"""

import datetime as dt
from decimal import Decimal

from django.urls import reverse
from django.utils.translation import gettext as _

from complaints import policies
from complaints.models import (
    CollaborationTask,
    Compensation,
    CompensationState,
    EventKind,
    Notification,
    Status,
    TaskState,
    Tier,
    TimelineEvent,
)
from complaints.services import compensation_limits, lowest_approver_tier, yuan

from .demo_data import (
    AGENT_GRANTS,
    APPROVAL_NOTES,
    CATEGORY_DEPARTMENTS,
    COMPENSATION_REASONS,
    DEFAULT_DEPARTMENTS,
    DEPARTMENT_MEMBERS,
    REJECTION_NOTE,
    REQUEST_AMOUNTS,
    RESPONSIBILITIES,
    SENIOR_GRANTS,
    TASK_INSTRUCTIONS,
    TASK_NOTES,
    TASK_RESULTS,
    TASK_RETURN_REASONS,
    TEAM_LEAD,
)

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
# Share of tickets with a compensation grant, and of resolved tickets that needed a task.
GRANT_SHARE = 0.12
SENIOR_GRANT_SHARE = 0.15  # of the grants on agents' tickets, given by the team lead
HISTORY_TASK_SHARE = 0.08
LIVE_TASK_SHARE = 0.35  # of the tickets still being worked
# What the first live tickets show, in order; the rest get a random mix.
LIVE_SCENARIOS = [
    ("open", ["logistics"], None),
    ("claimed", ["logistics"], "logistics"),
    ("open", ["logistics", "installation"], None),
    ("returned", ["logistics"], "logistics2"),
    ("claimed", ["installation"], "install"),
    ("done", ["logistics"], "logistics"),
    ("claimed", ["tech"], "tech"),
    ("open", ["tech"], None),
    ("claimed", ["logistics"], "logistics2"),
    ("open", ["installation"], None),
]
RANDOM_SCENARIOS = ["open", "claimed", "claimed", "done"]


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _iso(value):
    return value.isoformat() if value else None


class Collaboration:
    """Adds compensation and tasks to a replayed DemoBuilder; `save()` writes them."""

    def __init__(self, builder, departments: dict):
        self.b = builder
        self.rng = builder.rng
        self.now = builder.now
        self.users = builder.users
        self.departments = departments  # code → Department
        self.limits = compensation_limits()
        self.compensations: list[Compensation] = []
        self.tasks: list[CollaborationTask] = []
        self.notifications: list[Notification] = []
        # (event, row): the event's "after" names the row's id, known once it is saved.
        self._fixups: list[tuple[TimelineEvent, object, str]] = []

    # -- helpers ----------------------------------------------------------------------

    def _event(self, replay, at, actor, kind, message="", *, before=None, after=None, task=None):
        event = TimelineEvent(
            ticket=replay.ticket,
            actor=actor,
            kind=kind,
            task=task,
            message=message,
            before=before or {},
            after=after or {},
            created_at=at,
        )
        replay.events.append(event)
        return event

    def _notify(self, recipients, *, ticket, message, at, actor, url=None):
        seen = set()
        for user in recipients:
            if user is None or user.pk in seen or user.pk == actor.pk:
                continue
            seen.add(user.pk)
            # Older messages have been read; the last day's are still waiting.
            read_at = at + dt.timedelta(minutes=self.rng.uniform(5, 240))
            self.notifications.append(
                Notification(
                    recipient=user,
                    ticket=ticket,
                    message=message[:300],
                    url=url or reverse("workspace:ticket", args=[ticket.number]),
                    created_at=at,
                    read_at=read_at if read_at < self.now - dt.timedelta(days=1) else None,
                )
            )

    @staticmethod
    def _first(replay, kind):
        return next((e.created_at for e in replay.events if e.kind == kind), None)

    @staticmethod
    def _last(replay):
        return max(e.created_at for e in replay.events)

    def _between(self, start, end):
        return start + (end - start) * self.rng.uniform(0.1, 0.9)

    # -- compensation -----------------------------------------------------------------

    def _paid(self, ticket) -> Decimal:
        return sum(
            (c.amount for c in self.compensations if c.ticket is ticket and c.is_paid),
            Decimal("0.00"),
        )

    def _grant(self, replay, at, actor, kind, amount) -> Compensation | None:
        """A grant within the actor's own authority on the ticket's total, or nothing."""
        ticket = replay.ticket
        amount = Decimal(amount)
        new_total = self._paid(ticket) + amount
        if new_total > self.limits.get(policies.tier_of(actor), Decimal("0.00")):
            return None
        compensation = Compensation(
            ticket=ticket,
            kind=kind,
            amount=amount,
            reason=self.rng.choice(COMPENSATION_REASONS[kind]),
            state=CompensationState.GRANTED,
            requested_by=actor,
            created_at=at,
        )
        self.compensations.append(compensation)
        after = {"kind": kind, "amount": str(amount), "state": compensation.state}
        after["ticket_total"] = str(new_total)
        event = self._event(
            replay, at, actor, EventKind.COMPENSATION_GRANTED, compensation.reason, after=after
        )
        self._fixups.append((event, compensation, "compensation"))
        return compensation

    def _request(self, replay, at, actor, kind, amount) -> Compensation | None:
        """A request above the actor's authority, routed to the lowest tier covering it."""
        ticket = replay.ticket
        amount = Decimal(amount)
        new_total = self._paid(ticket) + amount
        approver = lowest_approver_tier(new_total, self.limits)
        own = self.limits.get(policies.tier_of(actor), Decimal("0.00"))
        if approver is None or new_total <= own:
            return None
        compensation = Compensation(
            ticket=ticket,
            kind=kind,
            amount=amount,
            reason=self.rng.choice(COMPENSATION_REASONS[kind]),
            state=CompensationState.REQUESTED,
            requested_by=actor,
            approver_tier=approver,
            created_at=at,
        )
        self.compensations.append(compensation)
        after = {"kind": kind, "amount": str(amount), "state": compensation.state}
        after["approver_tier"] = approver
        event = self._event(
            replay, at, actor, EventKind.COMPENSATION_REQUESTED, compensation.reason, after=after
        )
        self._fixups.append((event, compensation, "compensation"))
        return compensation

    def _decide(self, replay, compensation, at, actor, state, note):
        """Approve or reject a request (the approver's own limit must cover the total)."""
        if policies.decision_refusal(actor, compensation) is not None:
            raise ValueError("demo plan bug: an approver who may not decide")
        approved = state == CompensationState.APPROVED
        if approved:
            total = self._paid(compensation.ticket) + compensation.amount
            if total > self.limits.get(policies.tier_of(actor), Decimal("0.00")):
                raise ValueError("demo plan bug: approval above the approver's limit")
        compensation.state = state
        compensation.decided_by = actor
        compensation.decided_at = at
        compensation.decision_note = note
        after = {
            "kind": compensation.kind,
            "amount": str(compensation.amount),
            "state": state,
        }
        if approved:
            after["ticket_total"] = str(self._paid(compensation.ticket))
        event = self._event(
            replay,
            at,
            actor,
            EventKind.COMPENSATION_APPROVED if approved else EventKind.COMPENSATION_REJECTED,
            note,
            before={"state": CompensationState.REQUESTED},
            after=after,
        )
        self._fixups.append((event, compensation, "compensation"))
        message = (
            _("%(who)s approved your request of %(amount)s on %(number)s.")
            if approved
            else _("%(who)s rejected your request of %(amount)s on %(number)s: %(note)s")
        ) % {
            "who": _name(actor),
            "amount": yuan(compensation.amount),
            "number": replay.ticket.number,
            "note": note,
        }
        self._notify(
            [compensation.requested_by], ticket=replay.ticket, message=message, at=at, actor=actor
        )

    def _lead(self, replay):
        return self.users[TEAM_LEAD[replay.ticket.team.code]]

    def _agent_owned(self, replay) -> bool:
        return policies.tier_of(replay.ticket.assignee) == Tier.AGENT

    def compensate(self, plans) -> None:
        rng = self.rng
        count = len(plans)
        owned = [p.replay for p in plans if p.replay.ticket.assignee_id]
        open_owned = [r for r in owned if r.ticket.status in (Status.ASSIGNED, Status.IN_PROGRESS)]
        open_owned += [r for r in owned if r.ticket.status in (Status.RESOLVED, Status.FOLLOWED_UP)]
        closed = [r for r in owned if r.ticket.status == Status.CLOSED]
        used = set()

        def take(pool, want, condition=lambda r: True):
            chosen = [r for r in pool if id(r) not in used and condition(r)][:want]
            used.update(id(r) for r in chosen)
            return chosen

        def team_a_agent(replay):
            return replay.ticket.team.code == "team-a" and self._agent_owned(replay)

        # Requests waiting now: the senior's (team A, tier 2) and the supervisor's (tier 3).
        for replay in take(open_owned, max(1, count // 500), team_a_agent):
            at = self._between(self._last(replay), self.now - MINUTE)
            if rng.random() < 0.5:
                self._grant(
                    replay,
                    at - dt.timedelta(minutes=rng.uniform(5, 30)),
                    replay.ticket.assignee,
                    "coupon",
                    "5.00",
                )
            self._request(
                replay, at, replay.ticket.assignee, "refund", rng.choice(REQUEST_AMOUNTS[2])
            )
        for replay in take(open_owned, max(1, count // 700)):
            at = self._between(self._last(replay), self.now - MINUTE)
            self._request(replay, at, self._lead(replay), "refund", rng.choice(REQUEST_AMOUNTS[3]))
        # Decided requests in the history: a few approved, one rejected.
        for index, replay in enumerate(take(closed, max(2, count // 300), self._agent_owned)):
            start = self._first(replay, EventKind.STARTED)
            resolved = self._first(replay, EventKind.RESOLVED)
            at = self._between(start, resolved)
            agent, lead = replay.ticket.assignee, self._lead(replay)
            self._grant(
                replay, at - dt.timedelta(minutes=rng.uniform(5, 30)), agent, "coupon", "10.00"
            )
            kind = "cash" if index == 0 else rng.choice(["refund", "gift"])
            request = self._request(replay, at, agent, kind, rng.choice(REQUEST_AMOUNTS[2]))
            if request is None:  # limits an admin changed leave no room for a request
                continue
            decided = at + (resolved - at) * rng.uniform(0.1, 0.6)
            if index == 0:
                self._decide(
                    replay, request, decided, lead, CompensationState.REJECTED, REJECTION_NOTE
                )
            else:
                note = rng.choice(APPROVAL_NOTES)
                self._decide(replay, request, decided, lead, CompensationState.APPROVED, note)

        # Grants on the spot: coupons by agents, larger amounts by seniors.
        # Most grants are agents' own coupons; seniors' tickets get fewer, larger ones.
        def grant_candidate(replay):
            return self._agent_owned(replay) or rng.random() < 0.3

        for replay in take(owned, round(count * GRANT_SHARE), grant_candidate):
            assigned = self._first(replay, EventKind.ASSIGNED)
            end = self._first(replay, EventKind.RESOLVED) or self._last(replay)
            if end <= assigned:
                continue
            at = self._between(assigned, end)
            senior_grants = not self._agent_owned(replay) or rng.random() < SENIOR_GRANT_SHARE
            if senior_grants:
                actor = (
                    replay.ticket.assignee if not self._agent_owned(replay) else self._lead(replay)
                )
                kind = rng.choice(["refund", "gift", "cash", "coupon"])
                self._grant(replay, at, actor, kind, rng.choice(SENIOR_GRANTS))
            else:
                self._grant(replay, at, replay.ticket.assignee, "coupon", rng.choice(AGENT_GRANTS))

    # -- tasks ------------------------------------------------------------------------

    def _open_task(self, replay, at, department_code, *, respond_due=None) -> CollaborationTask:
        department = self.departments[department_code]
        respond = respond_due or at + dt.timedelta(hours=department.task_response_hours)
        complete = max(respond, at + dt.timedelta(hours=department.task_completion_hours))
        task = CollaborationTask(
            ticket=replay.ticket,
            department=department,
            responsibility=self.rng.choice(RESPONSIBILITIES[department_code]),
            instruction=TASK_INSTRUCTIONS[department_code],
            created_by=replay.ticket.assignee,
            respond_due_at=respond,
            complete_due_at=complete,
            created_at=at,
            updated_at=at,
        )
        self.tasks.append(task)
        after = {
            "department": department.name,
            "responsibility": task.responsibility,
            "respond_due_at": _iso(respond),
            "complete_due_at": _iso(complete),
        }
        event = self._event(
            replay,
            at,
            task.created_by,
            EventKind.TASK_OPENED,
            task.instruction,
            after=after,
            task=task,
        )
        self._fixups.append((event, task, "task"))
        return task

    def _task_event(self, replay, task, at, actor, kind, message, before_state):
        after = {"department": task.department.name, "state": task.state}
        before = {"state": before_state} if before_state else None
        event = self._event(replay, at, actor, kind, message, before=before, after=after, task=task)
        self._fixups.append((event, task, "task"))
        task.updated_at = at

    def _claim(self, replay, task, at, member):
        task.state, task.assignee, task.claimed_at = TaskState.CLAIMED, member, at
        self._task_event(
            replay, task, at, member, EventKind.TASK_CLAIMED, task.responsibility, TaskState.OPEN
        )

    def _note(self, replay, task, at):
        self._task_event(
            replay,
            task,
            at,
            task.assignee,
            EventKind.TASK_NOTE,
            TASK_NOTES[task.department.code],
            None,
        )

    def _complete(self, replay, task, at):
        code = task.department.code
        result = self.rng.choice(TASK_RESULTS[code]).format(n=self.rng.randrange(10**10))
        task.state, task.result, task.completed_at = TaskState.DONE, result, at
        self._task_event(
            replay, task, at, task.assignee, EventKind.TASK_COMPLETED, result, TaskState.CLAIMED
        )
        message = _("%(department)s completed a task on %(number)s: %(result)s") % {
            "department": task.department.name,
            "number": replay.ticket.number,
            "result": result,
        }
        self._notify_owners(replay, task, at, message)

    def _return(self, replay, task, at):
        reason = self.rng.choice(TASK_RETURN_REASONS)
        before = task.state
        task.state, task.return_reason = TaskState.RETURNED, reason
        self._task_event(replay, task, at, task.assignee, EventKind.TASK_RETURNED, reason, before)
        message = _("%(department)s returned a task on %(number)s: %(reason)s") % {
            "department": task.department.name,
            "number": replay.ticket.number,
            "reason": reason,
        }
        self._notify_owners(replay, task, at, message)

    def _notify_owners(self, replay, task, at, message):
        self._notify(
            [task.created_by, replay.ticket.assignee],
            ticket=replay.ticket,
            message=message,
            at=at,
            actor=task.assignee,
        )

    def _member(self, code, preferred=None):
        return self.users[preferred or self.rng.choice(DEPARTMENT_MEMBERS[code])]

    def _departments_for(self, replay) -> list[str]:
        category = replay.ticket.category.code if replay.ticket.category else ""
        return self.rng.choice(CATEGORY_DEPARTMENTS.get(category, DEFAULT_DEPARTMENTS))

    def history_tasks(self, plans) -> None:
        """Tasks finished before their ticket was resolved, each with its result."""
        rng = self.rng
        for plan in plans:
            replay = plan.replay
            start = self._first(replay, EventKind.STARTED)
            resolved = self._first(replay, EventKind.RESOLVED)
            if not (start and resolved) or rng.random() >= HISTORY_TASK_SHARE:
                continue
            if resolved - start < 3 * HOUR:
                continue
            opened = start + dt.timedelta(minutes=rng.uniform(10, 60))
            deadline = resolved - 10 * MINUTE
            for code in self._departments_for(replay):
                task = self._open_task(replay, opened, code)
                claimed = opened + (deadline - opened) * rng.uniform(0.05, 0.3)
                self._claim(replay, task, claimed, self._member(code))
                finished = claimed + (deadline - claimed) * rng.uniform(0.4, 0.95)
                if rng.random() < 0.3:
                    self._note(replay, task, claimed + (finished - claimed) / 2)
                self._complete(replay, task, finished)

    def live_tasks(self, plans) -> None:
        """Tasks on tickets still being worked: on the department boards right now."""
        rng = self.rng
        candidates = [
            p.replay
            for p in plans
            if p.replay.ticket.status in (Status.ASSIGNED, Status.IN_PROGRESS)
            and p.replay.ticket.assignee is not None
        ]
        if not candidates:
            return
        # The overdue task first: it needs a ticket idle for longer than tech's response time.
        tech_hours = dt.timedelta(hours=self.departments["tech"].task_response_hours)
        idle = [r for r in candidates if self._last(r) < self.now - tech_hours * 1.5]
        if idle:
            replay = min(idle, key=self._last)
            candidates.remove(replay)
            earliest = max(self._last(replay), self.now - tech_hours * 3)
            opened = earliest + (self.now - tech_hours * 1.2 - earliest) * rng.uniform(0.2, 0.8)
            self._open_task(replay, opened, "tech")
        rng.shuffle(candidates)
        wanted = max(len(LIVE_SCENARIOS), round(len(candidates) * LIVE_TASK_SHARE))
        for index, replay in enumerate(candidates[:wanted]):
            if index < len(LIVE_SCENARIOS):
                scenario, codes, member = LIVE_SCENARIOS[index]
            else:
                scenario, codes, member = (
                    rng.choice(RANDOM_SCENARIOS),
                    self._departments_for(replay),
                    None,
                )
            last = self._last(replay)
            for code in codes:
                self._live_task(replay, code, scenario, member, last)

    def _live_task(self, replay, code, scenario, member, last):
        rng = self.rng
        response = dt.timedelta(hours=self.departments[code].task_response_hours)
        # Opened recently enough that the response deadline is still ahead.
        earliest = max(last, self.now - response * 0.8)
        if earliest >= self.now - 2 * MINUTE:
            return
        opened = earliest + (self.now - MINUTE - earliest) * rng.uniform(0.05, 0.5)
        task = self._open_task(replay, opened, code)
        if scenario == "open":
            return
        claimed = opened + (self.now - opened) * rng.uniform(0.1, 0.4)
        self._claim(replay, task, claimed, self._member(code, member))
        if scenario == "claimed":
            if rng.random() < 0.5:
                self._note(replay, task, claimed + (self.now - claimed) * rng.uniform(0.2, 0.8))
        elif scenario == "returned":
            self._return(replay, task, claimed + (self.now - claimed) * rng.uniform(0.2, 0.8))
        elif scenario == "done":
            self._complete(replay, task, claimed + (self.now - claimed) * rng.uniform(0.3, 0.9))

    # -- writing ----------------------------------------------------------------------

    def build(self) -> None:
        plans = self.b.plans  # merged duplicates take no compensation or tasks
        self.compensate(plans)
        self.history_tasks(plans)
        self.live_tasks(plans)

    def save(self) -> dict[str, int]:
        """Write the rows (after the tickets, before the timeline events that name them)."""
        CollaborationTask.objects.bulk_create(self.tasks, batch_size=500)
        # auto_now stamped the insert time; the tasks' last step is when they changed.
        CollaborationTask.objects.bulk_update(self.tasks, ["updated_at"], batch_size=500)
        Compensation.objects.bulk_create(self.compensations, batch_size=500)
        for event, row, key in self._fixups:
            event.after = {key: row.pk, **event.after}
        return {"compensations": len(self.compensations), "tasks": len(self.tasks)}

    def save_notifications(self) -> int:
        Notification.objects.bulk_create(self.notifications, batch_size=500)
        return len(self.notifications)
