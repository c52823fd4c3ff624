"""Stage clocks: started at receipt, met by the steps, versioned policies, pause/resume."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from channels import outbox
from complaints import services
from complaints.models import EventKind, Impact, Level, Priority, Status
from sla import services as sla
from sla.models import Clock, SlaPolicy, Stage
from tests.conftest import drive, first_response_text
from tests.factories import leaf_category, make_ticket
from tests.sla.conftest import T0

H = dt.timedelta(hours=1)


def respond(ticket, actor):
    services.ticket_first_response(
        ticket=ticket.number,
        actor=actor,
        message=first_response_text(ticket),
        promised_followup_at=T0 + 200 * H,
    )
    outbox.deliver_due()  # the first response counts once it was sent


def clocks(ticket) -> dict[str, Clock]:
    return {c.stage: c for c in Clock.objects.filter(ticket=ticket)}


def test_a_new_ticket_starts_all_four_clocks_from_receipt(clock_at, ticket):
    found = clocks(ticket)
    assert set(found) == set(Stage.values)
    assert found["first_response"].due_at == T0 + 4 * H
    assert found["assessment"].due_at == T0 + 24 * H
    assert found["solution"].due_at == T0 + 72 * H
    assert found["closure"].due_at == T0 + 120 * H
    assert found["first_response"].next_check_at == T0 + 2 * H  # warning 1 at 50 %
    version = found["solution"].policy_version
    assert version.policy.priority == Priority.P3 and version.number == 1
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == T0 + 4 * H
    assert ticket.resolve_due_at == T0 + 72 * H
    assert ticket.close_due_at == T0 + 120 * H
    assert ticket.due_at == ticket.first_response_due_at


def test_steps_meet_their_clocks_and_move_the_queue_deadline(clock_at, ticket, agent):
    clock_at.shift(H)
    drive(ticket, agent, "assigned")
    assert clocks(ticket)["assessment"].met_at == T0 + H  # 初判: classified and assigned
    clock_at.shift(H)
    respond(ticket, agent)
    found = clocks(ticket)
    assert found["first_response"].met_at == T0 + 2 * H
    assert found["first_response"].next_check_at is None
    assert not found["first_response"].is_late()
    ticket.refresh_from_db()
    assert ticket.due_at == ticket.resolve_due_at == T0 + 72 * H
    services.ticket_start(ticket=ticket.number, actor=agent)
    services.ticket_resolve(
        ticket=ticket.number,
        actor=agent,
        solution="补发",
        responsible_person="刘师傅",
        resolution_time=T0 + 2 * H,
        evidence_ref="SF1",
    )
    services.ticket_follow_up(ticket=ticket.number, actor=agent, note="满意")
    services.ticket_close(ticket=ticket.number, actor=agent)
    ticket.refresh_from_db()
    found = clocks(ticket)
    assert all(c.met_at is not None for c in found.values())
    assert ticket.due_at is None


def test_a_late_step_records_the_breach(clock_at, ticket, agent):
    clock_at.shift(5 * H)
    drive(ticket, agent, "first_responded")
    clock = clocks(ticket)["first_response"]
    assert clock.met_at == T0 + 5 * H
    assert clock.breached_at == T0 + 4 * H
    assert clock.is_late()


def test_reopen_restarts_solution_and_closure(clock_at, ticket, agent):
    drive(ticket, agent, "closed")
    clock_at.shift(10 * H)
    services.ticket_reopen(ticket=ticket.number, actor=agent, reason="客户说还是坏的")
    found = clocks(ticket)
    assert found["solution"].met_at is None
    assert found["solution"].started_at == T0 + 10 * H
    assert found["solution"].due_at == T0 + 82 * H
    assert found["closure"].met_at is None
    assert found["first_response"].met_at is not None  # earlier stages stay met
    ticket.refresh_from_db()
    assert ticket.due_at == T0 + 82 * H


def test_merge_stops_the_clocks(clock_at, ticket, supervisor, customer, channel, team_a):
    target = make_ticket(customer=customer, channel=channel, team=team_a)
    services.ticket_merge(ticket=ticket.number, actor=supervisor, into=target.number)
    assert all(c.next_check_at is None for c in clocks(ticket).values())
    ticket.refresh_from_db()
    assert ticket.due_at is None


def test_tickets_without_clocks_keep_plain_deadlines(ticket, agent):
    Clock.objects.filter(ticket=ticket).delete()
    drive(ticket, agent, "first_responded")
    ticket.refresh_from_db()
    assert ticket.due_at == ticket.resolve_due_at


# --- policies ------------------------------------------------------------------------


def p3_policy() -> SlaPolicy:
    return SlaPolicy.objects.get(priority=Priority.P3, category=None, channel=None)


def test_editing_a_policy_publishes_a_version_running_tickets_keep_theirs(clock_at, ticket):
    policy = p3_policy()
    assert sla.policy_publish(policy).number == 1  # unchanged terms: no new version
    policy.first_response_minutes = 120
    policy.save()
    assert sla.policy_publish(policy).number == 2
    assert clocks(ticket)["first_response"].due_at == T0 + 4 * H
    newer = make_ticket(customer=ticket.customer, channel=ticket.channel, team=ticket.team)
    assert clocks(newer)["first_response"].due_at == T0 + 2 * H
    assert clocks(newer)["first_response"].policy_version.number == 2


def test_classification_moves_clocks_to_the_matching_policy(clock_at, ticket, agent):
    p1 = SlaPolicy.objects.get(priority=Priority.P1)
    p1.first_response_minutes = 60
    p1.save()
    sla.policy_publish(p1)
    clock_at.shift(dt.timedelta(minutes=10))
    services.ticket_classify(
        ticket=ticket.number,
        actor=agent,
        category=leaf_category("logistics"),
        amount_level=Level.LOW,
        impact=Impact.PUBLIC,  # public impact → P1
        urgency=Level.LOW,
    )
    ticket.refresh_from_db()
    assert ticket.priority == Priority.P1
    clock = clocks(ticket)["first_response"]
    assert clock.policy_version.policy == p1
    assert clock.due_at == T0 + H  # still counted from receipt
    assert ticket.first_response_due_at == ticket.due_at == T0 + H


def test_a_category_policy_beats_the_priority_default(clock_at, ticket, agent):
    special = SlaPolicy.objects.create(
        name="物流 P3",
        priority=Priority.P3,
        category=leaf_category("logistics"),
        solution_minutes=24 * 60,
    )
    sla.policy_publish(special)
    drive(ticket, agent, "classified")  # logistics, grades giving P3
    assert clocks(ticket)["solution"].due_at == T0 + 24 * H


def test_business_hours_policy(team_a, customer, channel):
    policy = p3_policy()
    policy.calendar = "business"
    policy.save()
    sla.policy_publish(policy)
    # Wed 30 Sep 2026 16:00, the eve of 国庆: 2 h that day, then 8 Oct.
    start = dt.datetime(2026, 9, 30, 16, tzinfo=T0.tzinfo)
    import time_machine

    with time_machine.travel(start, tick=False):
        ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    assert clocks(ticket)["first_response"].due_at == dt.datetime(2026, 10, 8, 11, tzinfo=T0.tzinfo)


def test_invalid_warning_thresholds_are_refused():
    policy = SlaPolicy(name="x", priority=Priority.P2, warn_1_percent=80, warn_2_percent=75)
    with pytest.raises(ValidationError) as info:
        policy.full_clean()
    assert "warn_3_percent" in info.value.message_dict


# --- waiting for the customer ---------------------------------------------------------


def test_pause_and_resume_push_the_due_times(clock_at, ticket, agent):
    drive(ticket, agent, "first_responded")
    clock_at.shift(H)
    sla.ticket_pause(ticket=ticket.number, actor=agent, reason="请客户提供快递单照片")
    ticket.refresh_from_db()
    assert ticket.sla_paused_at == T0 + H
    solution = clocks(ticket)["solution"]
    assert solution.paused_at == T0 + H and solution.next_check_at is None
    assert clocks(ticket)["first_response"].paused_at is None  # already met
    clock_at.shift(2 * H)
    sla.ticket_resume(ticket=ticket.number, actor=agent)
    solution = clocks(ticket)["solution"]
    assert solution.paused_at is None
    assert solution.paused_seconds == 2 * 3600
    assert solution.due_at == T0 + 74 * H
    ticket.refresh_from_db()
    assert ticket.sla_paused_at is None and ticket.due_at == T0 + 74 * H
    kinds = list(ticket.events.values_list("kind", flat=True))
    assert EventKind.SLA_PAUSED in kinds and EventKind.SLA_RESUMED in kinds


def test_a_step_while_paused_counts_the_pause(clock_at, ticket, agent):
    drive(ticket, agent, "assigned")
    sla.ticket_pause(ticket=ticket.number, actor=agent, reason="等客户回电")
    clock_at.shift(5 * H)
    respond(ticket, agent)
    clock = clocks(ticket)["first_response"]
    assert clock.paused_seconds == 5 * 3600
    assert clock.due_at == T0 + 9 * H and not clock.is_late()


def test_closing_ends_the_wait(clock_at, ticket, agent):
    drive(ticket, agent, "followed_up")
    sla.ticket_pause(ticket=ticket.number, actor=agent, reason="等客户确认")
    services.ticket_close(ticket=ticket.number, actor=agent)
    ticket.refresh_from_db()
    assert ticket.sla_paused_at is None and ticket.status == Status.CLOSED


def test_pause_refusals(ticket, agent, agent2, outsider):
    with pytest.raises(PermissionDenied):
        sla.ticket_pause(ticket=ticket.number, actor=outsider, reason="x")
    drive(ticket, agent, "assigned")
    with pytest.raises(ValidationError):
        sla.ticket_pause(ticket=ticket.number, actor=agent, reason="  ")
    with pytest.raises(services.Conflict):
        sla.ticket_resume(ticket=ticket.number, actor=agent)
    with pytest.raises(PermissionDenied):
        sla.ticket_pause(ticket=ticket.number, actor=agent2, reason="not mine")
    sla.ticket_pause(ticket=ticket.number, actor=agent, reason="等客户")
    with pytest.raises(services.Conflict):
        sla.ticket_pause(ticket=ticket.number, actor=agent, reason="again")
    with pytest.raises(ValidationError):
        sla.ticket_pause(ticket="TS-NOPE", actor=agent, reason="x")


def test_backfill_gives_clock_less_tickets_their_clocks_without_old_warnings(
    clock_at, ticket, agent, customer, channel, team_a
):
    from django.core.management import call_command

    from sla.models import WarningLevel

    done = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(done, agent, "closed")
    Clock.objects.all().delete()
    clock_at.move_to(T0 + 5 * H)
    call_command("sla_backfill")
    call_command("sla_backfill")  # idempotent
    assert Clock.objects.count() == 8
    running = clocks(ticket)["first_response"]
    assert running.warned_level == WarningLevel.BREACH and running.breached_at == T0 + 4 * H
    assert clocks(ticket)["solution"].next_check_at == T0 + 36 * H
    assert all(c.met_at is not None for c in clocks(done).values())
    assert all(c.next_check_at is None for c in clocks(done).values())
    assert sla.sweep().notified == 0  # nothing old is sent
    ticket.refresh_from_db()
    assert ticket.due_at == T0 + 4 * H


def test_admin_edit_publishes_a_new_version(admin_user, client):
    from django.urls import reverse

    policy = p3_policy()
    client.force_login(admin_user)
    url = reverse("admin:sla_slapolicy_change", args=[policy.pk])
    assert client.get(url).status_code == 200
    data = {
        "name": policy.name,
        "priority": policy.priority,
        "is_active": "on",
        "first_response_minutes": 60,
        "assessment_minutes": policy.assessment_minutes,
        "solution_minutes": policy.solution_minutes,
        "closure_minutes": policy.closure_minutes,
        "warn_1_percent": 50,
        "warn_2_percent": 75,
        "warn_3_percent": 90,
        "calendar": "business",
        "work_start": "09:00",
        "work_end": "18:00",
        "chinese_holidays": "on",
        # The read-only versions inline still sends its management form.
        "versions-TOTAL_FORMS": 1,
        "versions-INITIAL_FORMS": 1,
        "versions-MIN_NUM_FORMS": 0,
        "versions-MAX_NUM_FORMS": 1000,
        "versions-0-id": policy.current_version.pk,
        "versions-0-policy": policy.pk,
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert policy.current_version.number == 2
    assert policy.current_version.first_response_minutes == 60
    assert policy.current_version.calendar == "business"
    bad = {**data, "warn_1_percent": 95}
    assert client.post(url, bad).status_code == 200  # the form shows the error
    policy.refresh_from_db()
    assert policy.current_version.number == 2
    # Department task targets are terms too: a new version carries them.
    page = client.get(url).content.decode()
    assert 'name="task_response_hours"' in page and 'name="task_completion_hours"' in page
    targets = {**data, "task_response_hours": 2, "task_completion_hours": 24}
    assert client.post(url, targets).status_code == 302
    policy.refresh_from_db()
    version = policy.current_version
    assert (version.number, version.task_response_hours, version.task_completion_hours) == (
        3,
        2,
        24,
    )
    backwards = {**data, "task_response_hours": 24, "task_completion_hours": 2}
    response = client.post(url, backwards)
    assert response.status_code == 200
    assert "before its response deadline" in response.content.decode()
    policy.refresh_from_db()
    assert policy.current_version.number == 3
