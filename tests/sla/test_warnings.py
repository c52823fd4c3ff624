"""Warnings: four levels per clock, each once, up the chain; e-mail after commit; schedule."""

import datetime as dt
from unittest import mock

import pytest
from django.core import mail
from django.core.management import call_command
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler

from complaints.models import EventKind, Notification
from sla import services as sla
from sla.models import Clock
from tests.conftest import drive
from tests.sla.conftest import T0
from tests.sla.test_clocks import respond

H = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)


def counts(ticket, *users) -> list[int]:
    return [Notification.objects.filter(ticket=ticket, recipient=u).count() for u in users]


def first_response(ticket) -> Clock:
    return Clock.objects.get(ticket=ticket, stage="first_response")


def test_each_level_fires_once_and_climbs_the_chain(clock_at, ticket, agent, senior, supervisor):
    drive(ticket, agent, "assigned")
    people = (agent, senior, supervisor)

    clock_at.move_to(T0 + 2 * H - MINUTE)
    assert sla.sweep().notified == 0
    clock_at.move_to(T0 + 2 * H)  # 50 %: the assignee
    assert sla.sweep().notified == 1
    sla.sweep()
    assert counts(ticket, *people) == [1, 0, 0]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 0

    clock_at.move_to(T0 + 3 * H)  # 75 %: the team lead
    sla.sweep()
    sla.sweep()
    assert counts(ticket, *people) == [1, 1, 0]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1

    clock_at.move_to(T0 + 4 * H - 24 * MINUTE)  # 90 %: the supervisor
    sla.sweep()
    assert counts(ticket, *people) == [1, 1, 1]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 2

    clock_at.move_to(T0 + 4 * H)  # breach: all of them
    sla.sweep()
    sla.sweep()
    assert counts(ticket, *people) == [2, 2, 2]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 3
    clock = first_response(ticket)
    assert clock.warned_level == 4 and clock.breached_at == T0 + 4 * H
    assert clock.next_check_at is None
    warnings = ticket.events.filter(kind=EventKind.SLA_WARNING)
    assert warnings.count() == 4
    assert "SLA breached" in warnings.last().message


def test_a_late_first_sweep_fires_only_the_highest_level_to_everyone_skipped(
    clock_at, ticket, agent, senior, supervisor
):
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 5 * H)
    result = sla.sweep()
    assert result.tickets == 1
    assert counts(ticket, agent, senior, supervisor) == [1, 1, 1]
    assert ticket.events.filter(kind=EventKind.SLA_WARNING).count() == 1
    ticket.refresh_from_db()
    assert ticket.escalation_level == 3


def test_escalation_never_goes_down_or_past_three(clock_at, ticket, agent, senior, supervisor):
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 5 * H)
    sla.sweep()
    clock_at.move_to(T0 + 40 * H)  # solution clock at 55 %: warning 1 only
    sla.sweep()
    ticket.refresh_from_db()
    assert ticket.escalation_level == 3


def test_unassigned_ticket_warns_the_team_lead(clock_at, ticket, agent, senior):
    clock_at.move_to(T0 + 2 * H)
    sla.sweep()
    assert counts(ticket, agent, senior) == [0, 1]


def test_met_and_paused_clocks_do_not_warn(clock_at, ticket, agent, senior, supervisor):
    drive(ticket, agent, "assigned")
    respond(ticket, agent)
    sla.ticket_pause(ticket=ticket.number, actor=agent, reason="等客户照片")
    clock_at.move_to(T0 + 100 * H)
    assert sla.sweep().notified == 0
    assert not Notification.objects.filter(ticket=ticket).exists()
    sla.ticket_resume(ticket=ticket.number, actor=agent)
    # Resumed after 100 h: the solution clock (72 h) is now due at 172 h.
    clock_at.move_to(T0 + 136 * H)
    sla.sweep()
    assert counts(ticket, agent) == [1]


def test_closed_tickets_are_not_warned(clock_at, ticket, agent):
    drive(ticket, agent, "closed")
    clock_at.move_to(T0 + 300 * H)
    assert sla.sweep().notified == 0
    assert not Clock.objects.filter(ticket=ticket, next_check_at__isnull=False).exists()


def test_sweep_only_reads_due_clocks(clock_at, ticket, agent, django_assert_max_num_queries):
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + H)
    with django_assert_max_num_queries(1):
        assert sla.sweep().tickets == 0


def test_warning_email_is_queued_after_commit(
    clock_at, ticket, agent, senior, django_capture_on_commit_callbacks
):
    agent.email = "xiaoli@example.cn"
    agent.save()
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 2 * H)
    with mock.patch("django_q.conf.Conf.SYNC", True):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            sla.sweep()
        assert mail.outbox == []  # nothing leaves before the commit
        for callback in callbacks:
            callback()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["xiaoli@example.cn"]
    assert ticket.number in message.subject and ticket.number in message.body


def test_schedule_command_is_idempotent_and_the_scheduler_runs_the_sweep(
    clock_at, ticket, agent, senior
):
    call_command("sla_schedule")
    call_command("sla_schedule")
    assert Schedule.objects.filter(name="sla-sweep").count() == 1
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 2 * H)
    Schedule.objects.filter(name="sla-sweep").update(next_run=T0)
    with mock.patch("django_q.conf.Conf.SYNC", True):
        scheduler(broker=get_broker())
    assert counts(ticket, agent) == [1]
    assert Schedule.objects.get(name="sla-sweep").next_run > T0 + 2 * H


@pytest.mark.parametrize("stage", ["assessment", "solution", "closure"])
def test_every_stage_warns_at_its_own_target(clock_at, ticket, agent, senior, stage):
    targets = {"assessment": 24, "solution": 72, "closure": 120}
    if stage != "assessment":
        drive(ticket, agent, "assigned")
        respond(ticket, agent)
    clock_at.move_to(T0 + targets[stage] * H)
    sla.sweep()
    clock = Clock.objects.get(ticket=ticket, stage=stage)
    assert clock.warned_level == 4 and clock.breached_at == T0 + targets[stage] * H


def test_a_warning_nobody_is_in_line_for_goes_to_the_supervisors(
    clock_at, supervisor, customer, channel
):
    from tests.factories import make_ticket

    orphan = make_ticket(customer=customer, channel=channel, team=None)
    clock_at.move_to(T0 + 2 * H)
    sla.sweep()
    assert counts(orphan, supervisor) == [1]


def test_a_failing_ticket_does_not_stop_the_sweep_and_stays_due(
    clock_at, agent, senior, customer, channel, team_a
):
    from tests.factories import make_ticket

    broken, fine = (make_ticket(customer=customer, channel=channel, team=team_a) for _ in "ab")
    clock_at.move_to(T0 + 2 * H)
    real_advance = sla._advance

    def advance(ticket, clock, now):
        if ticket.pk == broken.pk:
            raise RuntimeError("worker crashed")
        return real_advance(ticket, clock, now)

    with mock.patch("sla.services._advance", advance):
        result = sla.sweep()
    assert result.failed == 1 and result.tickets == 1
    assert counts(fine, senior) == [1] and counts(broken, senior) == [0]
    assert first_response(broken).next_check_at == T0 + 2 * H  # still due
    sla.sweep()
    assert counts(broken, senior) == [1] and counts(fine, senior) == [1]


def test_each_level_mails_its_recipients_once_and_those_without_an_address_only_in_app(
    clock_at, ticket, agent, senior, supervisor, django_capture_on_commit_callbacks
):
    agent.email, supervisor.email, senior.email = "xiaoli@example.cn", "chen@example.cn", ""
    for user in (agent, senior, supervisor):
        user.save()
    drive(ticket, agent, "assigned")
    sent = []
    with mock.patch("django_q.conf.Conf.SYNC", True):
        for hours in (2, 3, 3.6, 4):  # 50 %, 75 %, 90 %, breach
            clock_at.move_to(T0 + hours * H)
            with django_capture_on_commit_callbacks(execute=True):
                sla.sweep()
                sla.sweep()  # the same level again: nothing more
            sent.append([sorted(m.to) for m in mail.outbox])
            mail.outbox.clear()
    assert sent == [
        [["xiaoli@example.cn"]],  # warning 1: the assignee
        [],  # warning 2: the team lead, who has no address (in-app only)
        [["chen@example.cn"]],  # warning 3: the supervisor
        [["chen@example.cn", "xiaoli@example.cn"]],  # breach: everyone in line with one
    ]
    assert counts(ticket, agent, senior, supervisor) == [2, 2, 2]


@pytest.mark.django_db(
    transaction=True, serialized_rollback=True
)  # real commits: the callback runs inside sweep()
def test_a_broker_failure_after_commit_does_not_fail_the_sweep(clock_at, ticket, agent, caplog):
    agent.email = "xiaoli@example.cn"
    agent.save()
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 2 * H)
    with mock.patch("django_q.tasks.async_task", side_effect=ConnectionError("broker down")):
        result = sla.sweep()
    assert "broker down" in caplog.text  # logged by Django's robust on_commit
    # The warning itself committed: notified in the app, not retried as a failure.
    assert (result.tickets, result.failed) == (1, 0)
    assert counts(ticket, agent) == [1]
    assert first_response(ticket).warned_level == 1
