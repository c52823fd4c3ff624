"""Department task targets in SLA policies: tasks take their deadlines from the ticket's
policy version when it sets them, else from the department; risk signal 8 follows them."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from complaints import services
from complaints.models import CollaborationTask, Department, Impact, Level, Priority
from sla import risks
from sla import services as sla
from sla.models import CalendarKind, RiskKind, SlaPolicy
from tests.factories import leaf_category, make_ticket
from tests.sla.conftest import T0

H = dt.timedelta(hours=1)


def p3_policy() -> SlaPolicy:
    return SlaPolicy.objects.get(priority=Priority.P3, category=None, channel=None)


def set_task_targets(policy: SlaPolicy, response, completion, **terms) -> None:
    policy.task_response_hours = response
    policy.task_completion_hours = completion
    for name, value in terms.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    sla.policy_publish(policy)


def open_task(ticket, actor, department="logistics", **deadlines) -> CollaborationTask:
    (task,) = services.task_open(
        ticket=ticket.number,
        actor=actor,
        specs=[services.TaskSpec(department=department, responsibility="查件", **deadlines)],
        instruction="核实物流",
    )
    return task


def alert_kinds(ticket) -> set[str]:
    return set(ticket.risk_alerts.values_list("kind", flat=True))


def test_without_policy_targets_the_department_times_apply(clock_at, ticket, agent):
    task = open_task(ticket, agent)  # logistics: 4 h to claim, 48 h to complete
    assert (task.respond_due_at, task.complete_due_at) == (T0 + 4 * H, T0 + 48 * H)


def test_the_policy_task_targets_win_over_the_department(
    clock_at, agent, customer, channel, team_a
):
    set_task_targets(p3_policy(), 1, 12)
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    logistics, tech = services.task_open(
        ticket=ticket.number,
        actor=agent,
        specs=[
            services.TaskSpec(department="logistics", responsibility="查件"),
            services.TaskSpec(department="tech", responsibility="排查"),
        ],
        instruction="会诊",
    )
    for task in (logistics, tech):
        assert (task.respond_due_at, task.complete_due_at) == (T0 + H, T0 + 12 * H)
    timeline = ticket.events.filter(task=logistics).get()
    assert timeline.after["respond_due_at"].startswith("2026-11-23T02:00")  # 10:00 Shanghai


def test_one_target_set_the_other_from_the_department(clock_at, agent, customer, channel, team_a):
    set_task_targets(p3_policy(), None, 6)
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    task = open_task(ticket, agent)
    assert (task.respond_due_at, task.complete_due_at) == (T0 + 4 * H, T0 + 6 * H)


def test_completion_never_before_response(clock_at, agent, customer, channel, team_a):
    Department.objects.filter(code="logistics").update(task_response_hours=10)
    set_task_targets(p3_policy(), None, 6)
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    task = open_task(ticket, agent)
    assert (task.respond_due_at, task.complete_due_at) == (T0 + 10 * H, T0 + 10 * H)


def test_explicit_deadlines_still_win(clock_at, agent, customer, channel, team_a):
    set_task_targets(p3_policy(), 1, 12)
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    task = open_task(ticket, agent, respond_due_at=T0 + 3 * H)
    assert (task.respond_due_at, task.complete_due_at) == (T0 + 3 * H, T0 + 12 * H)


def test_a_running_ticket_keeps_its_policy_version(clock_at, ticket, agent):
    """Editing the policy after receipt does not change the tasks of a running ticket."""
    set_task_targets(p3_policy(), 1, 12)
    task = open_task(ticket, agent)
    assert task.respond_due_at == T0 + 4 * H  # the ticket runs under version 1 (no targets)


def test_business_hours_policy_counts_task_time_in_working_hours(
    clock_at, agent, customer, channel, team_a
):
    set_task_targets(p3_policy(), 2, 16, calendar=CalendarKind.BUSINESS)
    clock_at.move_to(T0 + 8 * H)  # Monday 17:00 Shanghai: one working hour left today
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    task = open_task(ticket, agent)
    tuesday = T0 + 24 * H  # Tuesday 09:00
    assert task.respond_due_at == tuesday + H  # 1 h Monday + 1 h Tuesday
    assert task.complete_due_at == tuesday + 24 * H + 6 * H  # 1 + 9 (Tue) + 6 (Wed 15:00)


def test_resending_a_returned_task_uses_the_policy_targets(
    clock_at, agent, logistics, customer, channel, team_a
):
    set_task_targets(p3_policy(), 2, 20)
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    task = open_task(ticket, agent)
    services.task_claim(task=task.pk, actor=logistics)
    services.task_return(task=task.pk, actor=logistics, reason="不归物流管")
    clock_at.shift(5 * H)
    task = services.task_resend(task=task.pk, actor=agent)
    assert (task.respond_due_at, task.complete_due_at) == (T0 + 7 * H, T0 + 25 * H)


def test_reclassification_brings_the_new_policys_task_targets(
    clock_at, agent, senior, customer, channel, team_a
):
    set_task_targets(SlaPolicy.objects.get(priority=Priority.P1), 1, 4)
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    services.ticket_classify(
        ticket=ticket.number,
        actor=senior,
        category=leaf_category("logistics"),
        amount_level=Level.LOW,
        impact=Impact.PUBLIC,  # public impact → P1
        urgency=Level.LOW,
    )
    task = open_task(ticket, agent)
    assert (task.respond_due_at, task.complete_due_at) == (T0 + H, T0 + 4 * H)


def test_policy_refuses_completion_before_response():
    policy = SlaPolicy(name="x", priority=Priority.P2, task_response_hours=8)
    policy.task_completion_hours = 4
    with pytest.raises(ValidationError) as refused:
        policy.full_clean()
    assert "task_completion_hours" in refused.value.message_dict


def test_signal_8_follows_the_policy_response_target(clock_at, agent, customer, channel, team_a):
    set_task_targets(p3_policy(), 1, 12)
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    open_task(ticket, agent)  # the department alone would allow 4 h
    clock_at.shift(H - dt.timedelta(minutes=1))
    risks.scan()
    assert alert_kinds(ticket) == set()
    clock_at.shift(2 * dt.timedelta(minutes=1))
    risks.scan()
    assert alert_kinds(ticket) == {RiskKind.TASK_UNCLAIMED}


def test_signal_8_is_not_raised_for_a_claimed_task(
    clock_at, agent, logistics, customer, channel, team_a
):
    set_task_targets(p3_policy(), 1, 12)
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    task = open_task(ticket, agent)
    clock_at.shift(30 * dt.timedelta(minutes=1))
    services.task_claim(task=task.pk, actor=logistics)
    clock_at.shift(5 * H)
    risks.scan()
    assert alert_kinds(ticket) == set()
