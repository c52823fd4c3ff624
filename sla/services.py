"""The SLA engine: policy choice, stage clocks, pause/resume, warnings and the sweep.

The departments' default targets: first response within 4 h, initial assessment
within 24 h, solution within 72 h, closure within 5 days, all from receipt. Admins
refine them per priority (and category or channel) with versioned `SlaPolicy` rows.

How the pieces meet the ticket services (complaints/services.py):
- `ticket_plan_clocks` / `on_ticket_created` run in `ticket_create` (before and
  after the first save), start all four clocks at receipt and raise the risk
  signals of a new ticket (sla/risks.py);
- `ticket_sync_clocks` runs in `_save`, i.e. on every ticket write under the ticket's
  row lock: it marks a clock met when its step happened (first response, assignment,
  resolution, closure), restarts the solution and closure clocks after a reopen,
  stops everything on merge, and copies the deadlines onto the ticket's indexed
  columns (`due_at` is the queue's sort key);
- `on_ticket_classified` runs in `ticket_classify`, when priority and category
  become known and the policy may change (and repeat/spike signals can be checked).
Clock rows are only written while the ticket row is locked, by those hooks, by
pause/resume and by the sweep, so the ticket lock is the one lock to take.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from complaints.refcache import ReferenceCache

from . import risks
from .calendars import ALWAYS, BusinessCalendar, add_business_time, business_time_between
from .models import STAGE_ORDER, Clock, SlaPolicy, SlaPolicyVersion, Stage, WarningLevel

logger = logging.getLogger(__name__)

DEFAULT_TARGETS = {
    "first_response": dt.timedelta(hours=4),
    "assessment": dt.timedelta(hours=24),
    "solution": dt.timedelta(hours=72),
    "closure": dt.timedelta(days=5),
}

# The ticket timestamp that meets each stage.
MET_BY = {
    Stage.FIRST_RESPONSE: "first_response_sent_at",  # sent, not just written (outbox)
    Stage.ASSESSMENT: "assigned_at",
    Stage.SOLUTION: "resolved_at",
    Stage.CLOSURE: "closed_at",
}
# Ticket columns that mirror a clock's due time (the assessment has none).
TICKET_DUE_COLUMN = {
    Stage.FIRST_RESPONSE: "first_response_due_at",
    Stage.SOLUTION: "resolve_due_at",
    Stage.CLOSURE: "close_due_at",
}
# A reopened ticket is worked again: these stages start over.
RESTARTED_ON_REOPEN = (Stage.SOLUTION, Stage.CLOSURE)
# Who hears of each warning level, and the escalation level it raises the ticket to.
# Escalation levels follow complaints.services: 1 team lead, 2 supervisor, 3 management.
ESCALATION_FOR_LEVEL = {1: 0, 2: 1, 3: 2, 4: 3}
ENDED_STATUSES = ("closed", "merged")


def _complaints():
    # complaints.services imports this module; import it back lazily.
    from complaints import services

    return services


# --- plain deadlines (tickets without clocks: demo data, old rows) --------------------


def ticket_set_deadlines(ticket) -> None:
    """Fill the stage deadlines from receipt with the default 24×7 targets (no clocks)."""
    start = ticket.created_at
    ticket.first_response_due_at = start + DEFAULT_TARGETS["first_response"]
    ticket.resolve_due_at = start + DEFAULT_TARGETS["solution"]
    ticket.close_due_at = start + DEFAULT_TARGETS["closure"]
    ticket_refresh_due_at(ticket)


def ticket_refresh_due_at(ticket) -> None:
    """Point `due_at` (the indexed queue sort key) at the next deadline that matters."""
    if ticket.status in ENDED_STATUSES:
        ticket.due_at = None
    elif ticket.first_responded_at is None:
        ticket.due_at = ticket.first_response_due_at
    elif ticket.resolved_at is None:
        ticket.due_at = ticket.resolve_due_at
    else:
        ticket.due_at = ticket.close_due_at


# --- policies --------------------------------------------------------------------------


@transaction.atomic
def policy_publish(policy: SlaPolicy) -> SlaPolicyVersion:
    """Freeze the policy's terms as a new version, unless they equal the current one.

    Called after every admin save; tickets already running keep their version.
    """
    policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
    current = policy.current_version
    if current is not None and current.terms() == policy.terms():
        return current
    last = policy.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = SlaPolicyVersion.objects.create(policy=policy, number=last + 1, **policy.terms())
    SlaPolicy.objects.filter(pk=policy.pk).update(current_version=version)
    return version


def _specificity(policy: SlaPolicy, ticket) -> int | None:
    """How closely a policy fits the ticket (higher wins); None if it does not apply."""
    score = 0
    if policy.category_id is not None:
        if policy.category_id == ticket.category_id:
            score += 4
        elif ticket.category_id and policy.category_id == ticket.category.parent_id:
            score += 2
        else:
            return None
    if policy.channel_id is not None:
        if policy.channel_id != ticket.channel_id:
            return None
        score += 1
    return score


def _active_policies() -> list[SlaPolicy]:
    return list(
        SlaPolicy.objects.filter(is_active=True, current_version__isnull=False)
        .select_related("current_version")
        .order_by("id")
    )


# Every new ticket and every classification picks a policy: keep the few active ones
# per process until an admin saves a policy or a version (sla.apps).
policies_cache = ReferenceCache("sla-policies", _active_policies)


def policy_for_ticket(ticket) -> SlaPolicyVersion | None:
    """The current version of the most specific active policy for the ticket (no query
    while the cached policies are fresh)."""
    best, best_score = None, -1
    for policy in policies_cache.get():
        if policy.priority != ticket.priority:
            continue
        score = _specificity(policy, ticket)
        if score is not None and score > best_score:
            best, best_score = policy, score
    return best.current_version if best else None


def _terms(version: SlaPolicyVersion | None):
    # Without any policy (all deactivated) the built-in defaults apply.
    return version if version is not None else SlaPolicyVersion()


# --- clock arithmetic ------------------------------------------------------------------


def _moment(clock: Clock, terms, percent: int) -> dt.datetime:
    """When `percent` of the clock's target (plus its paused time) has run out."""
    allowed = dt.timedelta(minutes=clock.target_minutes) * percent / 100
    allowed += dt.timedelta(seconds=clock.paused_seconds)
    return add_business_time(clock.started_at, allowed, terms.business_calendar())


def _level_moments(clock: Clock, terms) -> dict[int, dt.datetime]:
    moments = {
        level: _moment(clock, terms, pct)
        for level, pct in zip((1, 2, 3), terms.thresholds(), strict=True)
    }
    moments[WarningLevel.BREACH] = clock.due_at
    return moments


def _replan(clock: Clock, terms) -> None:
    """Recompute the due time and the next time the sweep must look at the clock."""
    clock.due_at = _moment(clock, terms, 100)
    if clock.met_at is not None or clock.paused_at is not None:
        clock.next_check_at = None
        return
    if clock.warned_level >= WarningLevel.BREACH:
        clock.next_check_at = None
        return
    clock.next_check_at = _level_moments(clock, terms)[clock.warned_level + 1]


def _level_reached(clock: Clock, terms, now: dt.datetime) -> int:
    reached = WarningLevel.NONE
    for level, moment in _level_moments(clock, terms).items():
        if moment <= now:
            reached = max(reached, level)
    return reached


def _resume_clock(clock: Clock, terms, until: dt.datetime) -> None:
    if clock.paused_at is None:
        return
    paused = business_time_between(clock.paused_at, until, terms.business_calendar())
    clock.paused_seconds += int(paused.total_seconds())
    clock.paused_at = None


CLOCK_FIELDS = [
    "policy_version",
    "target_minutes",
    "started_at",
    "due_at",
    "met_at",
    "breached_at",
    "paused_at",
    "paused_seconds",
    "warned_level",
    "next_check_at",
]


def _new_clock(ticket, stage: str, version, start: dt.datetime) -> Clock:
    terms = _terms(version)
    clock = Clock(
        ticket=ticket if ticket.pk else None,
        stage=stage,
        policy_version=version,
        target_minutes=int(terms.target(stage).total_seconds() // 60),
        started_at=start,
        due_at=start,
    )
    _replan(clock, terms)
    return clock


def _copy_deadlines(ticket, clocks: dict[str, Clock]) -> None:
    for stage, column in TICKET_DUE_COLUMN.items():
        setattr(ticket, column, clocks[stage].due_at if stage in clocks else None)
    pending = [c.due_at for c in clocks.values() if c.met_at is None]
    if ticket.status in ENDED_STATUSES or not pending:
        ticket.due_at = None
    else:
        ticket.due_at = min(pending)


# --- hooks called by complaints.services -----------------------------------------------


def ticket_plan_clocks(ticket) -> None:
    """Before a new ticket's first save: choose its policy and fill its deadlines."""
    version = policy_for_ticket(ticket)
    clocks = {stage: _new_clock(ticket, stage, version, ticket.created_at) for stage in STAGE_ORDER}
    ticket._sla_new_clocks = clocks
    _copy_deadlines(ticket, clocks)


def on_ticket_created(ticket, *, new_customer: bool = False) -> None:
    """After a new ticket's first save: its clocks, and the signals of its receipt."""
    ticket_start_clocks(ticket)
    risks.on_ticket_created(ticket, new_customer=new_customer)


def on_ticket_classified(ticket) -> None:
    """On (re)classification, before the save: the fitting policy, repeat and spike signals."""
    ticket_retarget_clocks(ticket)
    risks.on_ticket_classified(ticket)


def ticket_start_clocks(ticket) -> None:
    """After a new ticket's first save: store the clocks planned for it (one insert)."""
    clocks = getattr(ticket, "_sla_new_clocks", None)
    if clocks is None:
        ticket_plan_clocks(ticket)
        clocks = ticket._sla_new_clocks
    for clock in clocks.values():
        clock.ticket = ticket
    Clock.objects.bulk_create(clocks.values())
    del ticket._sla_new_clocks
    if all(clock.pk for clock in clocks.values()):
        # The ticket being created keeps the rows it just wrote: the classification and
        # the save that follow at intake (routing rules) read them from here, not back
        # from the table. Every later service locks and reads a fresh ticket.
        ticket._sla_clocks = clocks


def _load_clocks(ticket) -> dict[str, Clock]:
    written = ticket.__dict__.get("_sla_clocks")
    if written is not None:
        return written
    return {
        c.stage: c
        for c in Clock.objects.filter(ticket_id=ticket.pk).select_related("policy_version")
    }


def ticket_sync_clocks(ticket, now: dt.datetime | None = None) -> None:
    """On every ticket write (before saving it): bring the clocks in line with the ticket.

    Tickets without clocks (bulk-loaded demo data) keep the plain default deadlines.
    """
    clocks = _load_clocks(ticket) if ticket.pk else {}
    if not clocks:
        ticket_refresh_due_at(ticket)
        return
    now = now or timezone.now()
    ended = ticket.status in ENDED_STATUSES
    if ended:
        ticket.sla_paused_at = None
    changed = []
    for stage, clock in clocks.items():
        terms = _terms(clock.policy_version)
        before = [getattr(clock, f) for f in CLOCK_FIELDS]
        met = getattr(ticket, MET_BY[stage])
        if met is not None and clock.met_at is None:
            _resume_clock(clock, terms, min(met, now))
            clock.met_at = met
            _replan(clock, terms)
            if met > clock.due_at and clock.breached_at is None:
                clock.breached_at = clock.due_at
        elif met is None and clock.met_at is not None and stage in RESTARTED_ON_REOPEN:
            restarted = _new_clock(ticket, stage, clock.policy_version, now)
            for field in CLOCK_FIELDS:
                setattr(clock, field, getattr(restarted, field))
            if ticket.sla_paused_at is not None:
                clock.paused_at = now
                clock.next_check_at = None
        elif ended and clock.met_at is None:
            _resume_clock(clock, terms, now)
            clock.next_check_at = None
        if [getattr(clock, f) for f in CLOCK_FIELDS] != before:
            changed.append(clock)
    if changed:
        Clock.objects.bulk_update(changed, CLOCK_FIELDS)
    _copy_deadlines(ticket, clocks)


def ticket_retarget_clocks(ticket) -> None:
    """After (re)classification: move the running clocks to the policy that now fits.

    A clock stays on its version when the same policy still fits, so editing a policy
    never changes a ticket already under it; a different policy (new priority or
    category) brings its current version. Warnings already sent are not sent again.
    """
    version = policy_for_ticket(ticket)
    changed = []
    for clock in _load_clocks(ticket).values():
        if clock.met_at is not None:
            continue
        current = clock.policy_version
        if current is not None and version is not None and current.policy_id == version.policy_id:
            continue
        if current is None and version is None:
            continue
        terms = _terms(version)
        clock.policy_version = version
        clock.target_minutes = int(terms.target(clock.stage).total_seconds() // 60)
        _replan(clock, terms)
        changed.append(clock)
    if changed:
        Clock.objects.bulk_update(changed, CLOCK_FIELDS)


# --- department task targets ------------------------------------------------------------


@dataclass(frozen=True)
class TaskTargets:
    """Claim and completion times of collaboration tasks opened on one ticket.

    From the ticket's policy version when it sets them (counted on the policy's
    calendar), otherwise the department's own hours (counted round the clock).
    """

    response: dt.timedelta | None = None
    completion: dt.timedelta | None = None
    calendar: BusinessCalendar = ALWAYS

    def deadlines(self, department, start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        if self.response is not None:
            respond = add_business_time(start, self.response, self.calendar)
        else:
            respond = start + dt.timedelta(hours=department.task_response_hours)
        if self.completion is not None:
            complete = add_business_time(start, self.completion, self.calendar)
        else:
            complete = start + dt.timedelta(hours=department.task_completion_hours)
        return respond, max(respond, complete)


def ticket_policy_version(ticket) -> SlaPolicyVersion | None:
    """The policy version the ticket runs under: its closure clock's (the one clock that
    runs until the end and follows reclassification), else the policy that fits now."""
    clock = (
        Clock.objects.filter(ticket_id=ticket.pk, stage=Stage.CLOSURE)
        .select_related("policy_version")
        .first()
    )
    if clock is not None:
        return clock.policy_version
    return policy_for_ticket(ticket)


def task_targets(ticket) -> TaskTargets:
    """For complaints.services.task_open / task_resend (two queries at most)."""
    version = ticket_policy_version(ticket)
    if version is None:
        return TaskTargets()
    hours = version.task_response_hours, version.task_completion_hours
    if hours == (None, None):
        return TaskTargets()
    return TaskTargets(
        response=dt.timedelta(hours=hours[0]) if hours[0] else None,
        completion=dt.timedelta(hours=hours[1]) if hours[1] else None,
        calendar=version.business_calendar(),
    )


# --- waiting for the customer ----------------------------------------------------------


@transaction.atomic
def ticket_pause(*, ticket, actor, reason: str):
    """Stop the running clocks while the ticket waits for the customer (等待客户)."""
    cs = _complaints()
    ticket = cs._lock(ticket)
    refused = _pause_refusal(actor, ticket)
    if refused:
        raise PermissionDenied(refused)
    if not ticket.is_open:
        raise cs.Conflict(_("Closed or merged tickets have no running SLA clocks."))
    if ticket.sla_paused_at is not None:
        raise cs.Conflict(_("The ticket is already waiting for the customer."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Say what the customer is asked for.")]})
    if len(reason) > 1000:
        raise ValidationError({"reason": [_("Keep the reason under 1,000 characters.")]})
    now = timezone.now()
    paused = []
    for clock in _load_clocks(ticket).values():
        if clock.is_running:
            clock.paused_at = now
            clock.next_check_at = None
            paused.append(clock)
    Clock.objects.bulk_update(paused, ["paused_at", "next_check_at"])
    ticket.sla_paused_at = now
    cs._save(ticket)
    cs._record(
        ticket,
        actor,
        cs.EventKind.SLA_PAUSED,
        reason,
        after={"stages": [str(Stage(c.stage).label) for c in paused]},
    )
    return ticket


@transaction.atomic
def ticket_resume(*, ticket, actor):
    """The customer answered: restart the clocks, their due times pushed by the pause."""
    cs = _complaints()
    ticket = cs._lock(ticket)
    refused = _pause_refusal(actor, ticket)
    if refused:
        raise PermissionDenied(refused)
    if ticket.sla_paused_at is None:
        raise cs.Conflict(_("The ticket is not waiting for the customer."))
    now = timezone.now()
    resumed = []
    for clock in _load_clocks(ticket).values():
        if clock.paused_at is not None:
            terms = _terms(clock.policy_version)
            _resume_clock(clock, terms, now)
            _replan(clock, terms)
            resumed.append(clock)
    Clock.objects.bulk_update(resumed, CLOCK_FIELDS)
    waited = now - ticket.sla_paused_at
    ticket.sla_paused_at = None
    cs._save(ticket)
    cs._record(
        ticket,
        actor,
        cs.EventKind.SLA_RESUMED,
        _("Waited %(minutes)d minutes for the customer.")
        % {"minutes": int(waited.total_seconds() // 60)},
        after={"due_at": cs._iso(ticket.due_at)},
    )
    return ticket


def _pause_refusal(actor, ticket) -> str | None:
    from complaints import policies

    # Whoever may reply to the customer may say the ticket waits for the customer.
    return policies.action_refusal(actor, ticket, "reply")


# --- warnings ----------------------------------------------------------------------------


def level_label(level: int) -> str:
    return str(WarningLevel(level).label)


def _recipients(ticket, levels) -> list:
    """Assignee (level 1), team leads (2), supervisors (3); everyone at the breach."""
    from complaints.models import Role

    levels = set(levels)
    if WarningLevel.BREACH in levels:
        levels |= {1, 2, 3}
    wanted = Q(pk__in=[])
    if 1 in levels and ticket.assignee_id:
        wanted |= Q(pk=ticket.assignee_id)
    if (2 in levels or (1 in levels and not ticket.assignee_id)) and ticket.team_id:
        wanted |= Q(profile__role=Role.SENIOR, profile__department_id=ticket.team_id)
    if 3 in levels:
        wanted |= Q(profile__role=Role.SUPERVISOR)
    users = get_user_model().objects.filter(is_active=True).order_by("pk")
    found = list(users.filter(wanted))
    # Nobody in line (no assignee, no team, no lead): a warning must still reach someone.
    return found or list(users.filter(profile__role=Role.SUPERVISOR))


def _warning_message(ticket, clock: Clock, level: int) -> str:
    due = date_format(timezone.localtime(clock.due_at), "Y-m-d H:i")
    stage = Stage(clock.stage).label
    if level == WarningLevel.BREACH:
        return _("SLA breached on %(number)s: %(stage)s was due %(due)s.") % {
            "number": ticket.number,
            "stage": stage,
            "due": due,
        }
    return _("SLA warning %(level)d on %(number)s: %(stage)s due %(due)s.") % {
        "level": level,
        "number": ticket.number,
        "stage": stage,
        "due": due,
    }


def _fire(ticket, clock: Clock, level: int, levels) -> int:
    """Notify, escalate and record one warning (already decided to be new)."""
    cs = _complaints()
    message = _warning_message(ticket, clock, level)
    recipients = _recipients(ticket, levels)
    url = cs._ticket_url(ticket)
    cs._notify(recipients, ticket=ticket, message=message, url=url)
    before = ticket.escalation_level
    target = min(ESCALATION_FOR_LEVEL[level], cs.MAX_ESCALATION_LEVEL)
    if target > before:
        # Not a version bump: an open form on the ticket is not made stale by this.
        ticket.escalation_level = target
        ticket.save(update_fields=["escalation_level", "updated_at"])
    cs._record(
        ticket,
        None,
        cs.EventKind.SLA_WARNING,
        message,
        before={"escalation_level": before},
        after={"escalation_level": ticket.escalation_level},
    )
    emails = sorted({u.email for u in recipients if u.email})
    if emails:
        link = settings.CLOSELOOP_SITE_URL + url
        # robust: a broker hiccup is logged and does not count the (committed)
        # warning as a failed ticket of the sweep.
        transaction.on_commit(
            lambda: _queue_email(subject=message, body=f"{message}\n\n{link}", to=emails),
            robust=True,
        )
    return len(recipients)


def _queue_email(*, subject: str, body: str, to: list[str]) -> None:
    from django_q.tasks import async_task

    # Runs after the warning's commit. django-q2's ORM broker calls
    # close_old_connections() before an enqueue made outside a transaction, which
    # with CONN_MAX_AGE=0 (the default) is a new database connection per mail: a
    # third of a busy sweep's time at 1M tickets. Inside an atomic block it keeps it.
    with transaction.atomic():
        async_task("sla.tasks.send_email", subject, body, to)


def _advance(ticket, clock: Clock, now: dt.datetime) -> int:
    """Fire the highest newly reached level of one clock; return how many were told."""
    told = 0
    if not ticket.is_open or clock.met_at is not None or clock.paused_at is not None:
        clock.next_check_at = None
    else:
        terms = _terms(clock.policy_version)
        reached = _level_reached(clock, terms, now)
        if reached > clock.warned_level:
            skipped = range(clock.warned_level + 1, reached + 1)
            told = _fire(ticket, clock, reached, skipped)
            clock.warned_level = reached
            if reached == WarningLevel.BREACH:
                clock.breached_at = clock.due_at
                risks.on_breach(ticket, clock.stage)
        _replan(clock, terms)
    clock.save(update_fields=["warned_level", "breached_at", "next_check_at", "due_at"])
    return told


# --- the sweep -----------------------------------------------------------------------------


@dataclass
class SweepResult:
    tickets: int = 0
    skipped: int = 0
    failed: int = 0
    notified: int = 0


def _sweep_ticket(ticket_id: int, now: dt.datetime) -> int | None:
    """Handle one ticket's due clocks in its own transaction; None if another worker has it."""
    from complaints.models import Ticket

    with transaction.atomic():
        # SKIP LOCKED (PostgreSQL): a ticket being written or swept elsewhere is left
        # for the next run instead of waited for. No joins: the locked row is re-read.
        ticket = Ticket.objects.select_for_update(skip_locked=True).filter(pk=ticket_id).first()
        if ticket is None:
            return None
        # Re-read under the lock: another sweep may have just handled these clocks.
        clocks = Clock.objects.filter(ticket_id=ticket_id, next_check_at__lte=now).select_related(
            "policy_version"
        )
        return sum(_advance(ticket, clock, now) for clock in clocks)


def sweep(*, now: dt.datetime | None = None, batch_size: int = 200, max_batches: int = 50):
    """Send the warnings that are due. Cost grows with due clocks, not with all tickets.

    Safe to run twice at once (row locks, state re-checked under them) and after a crash
    (each ticket commits on its own; an unhandled one is still due next time).
    """
    now = now or timezone.now()
    result = SweepResult()
    left_alone: set[int] = set()
    for _batch in range(max_batches):
        due = Clock.objects.filter(next_check_at__lte=now)
        if left_alone:
            due = due.exclude(ticket_id__in=left_alone)
        ticket_ids = list(
            dict.fromkeys(
                due.order_by("next_check_at").values_list("ticket_id", flat=True)[:batch_size]
            )
        )
        if not ticket_ids:
            break
        for ticket_id in ticket_ids:
            try:
                told = _sweep_ticket(ticket_id, now)
            except Exception:  # one bad ticket must not stop the others
                logger.exception("SLA sweep failed on ticket %s", ticket_id)
                result.failed += 1
                left_alone.add(ticket_id)
                continue
            if told is None:
                result.skipped += 1
                left_alone.add(ticket_id)
            else:
                result.tickets += 1
                result.notified += told
    return result


# --- backfill ----------------------------------------------------------------------------


def backfill_clocks(
    *,
    now: dt.datetime | None = None,
    batch_size: int = 500,
    start_after: int = 0,
    open_only: bool = False,
) -> int:
    """Give clocks to tickets that have none (bulk-loaded demo data, rows from before the
    SLA engine); return how many tickets got them. `open_only`: only the open backlog
    (what the queue countdowns and the sweep need), not the closed history.

    Stages already done are met at their step times; warnings a running clock would
    already have reached are marked as sent without sending them, so a first sweep after
    a backfill does not flood everyone with old news. Idempotent; meant for set-up time
    (`make run` calls it before the workers start), not for a busy system.
    """
    from complaints.models import OPEN_STATUSES, Status, Ticket

    now = now or timezone.now()
    versions: dict[tuple, SlaPolicyVersion | None] = {}
    done = 0
    last_pk = start_after
    tickets = Ticket.objects.exclude(status=Status.MERGED)
    if open_only:
        tickets = tickets.filter(status__in=OPEN_STATUSES)
    while True:
        # Keyset pagination: each batch starts after the previous one instead of
        # skipping every ticket already done (quadratic at 1M tickets).
        batch = list(
            tickets.filter(pk__gt=last_pk, sla_clocks__isnull=True)
            .select_related("category__parent")
            .order_by("pk")[:batch_size]
        )
        if not batch:
            return done
        last_pk = batch[-1].pk
        new_clocks = []
        for ticket in batch:
            key = (ticket.priority, ticket.category_id, ticket.channel_id)
            if key not in versions:
                versions[key] = policy_for_ticket(ticket)
            clocks = {}
            for stage in STAGE_ORDER:
                clock = _new_clock(ticket, stage, versions[key], ticket.created_at)
                terms = _terms(clock.policy_version)
                met = getattr(ticket, MET_BY[stage])
                if met is not None:
                    clock.met_at = met
                    if met > clock.due_at:
                        clock.breached_at = clock.due_at
                elif ticket.is_open:
                    clock.warned_level = _level_reached(clock, terms, now)
                    if clock.warned_level == WarningLevel.BREACH:
                        clock.breached_at = clock.due_at
                _replan(clock, terms)
                if not ticket.is_open:
                    clock.next_check_at = None
                clocks[stage] = clock
            _copy_deadlines(ticket, clocks)
            new_clocks.extend(clocks.values())
        with transaction.atomic():
            Clock.objects.bulk_create(new_clocks, ignore_conflicts=True)
            Ticket.objects.bulk_update(
                batch, ["first_response_due_at", "resolve_due_at", "close_due_at", "due_at"]
            )
        done += len(batch)
