"""Collaboration tasks: opening for several departments, claiming, completing, returning."""

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from complaints import selectors, services
from complaints.models import (
    CollaborationTask,
    Department,
    EventKind,
    Notification,
    Role,
    TaskState,
)
from tests.factories import make_staff


def spec(department, responsibility="核实物流轨迹", **extra):
    return services.TaskSpec(department=department, responsibility=responsibility, **extra)


def open_tasks(ticket, actor, *departments, instruction="客户订单延误，请处理"):
    return services.task_open(
        ticket=ticket.number,
        actor=actor,
        specs=[spec(d, f"{d} 负责") for d in departments],
        instruction=instruction,
    )


@pytest.fixture
def head(reference_data):
    user = make_staff("wl_head", Role.DEPARTMENT, Department.objects.get(code="logistics"))
    user.profile.is_head = True
    user.profile.save()
    return user


@pytest.fixture
def logistics2(reference_data):
    return make_staff("logistics2", Role.DEPARTMENT, Department.objects.get(code="logistics"))


class TestOpening:
    def test_several_departments_at_once_with_their_default_deadlines(self, ticket, agent):
        now = timezone.now()
        with time_machine.travel(now, tick=False):
            logistics, tech = open_tasks(ticket, agent, "logistics", "tech")
        assert (logistics.department.code, tech.department.code) == ("logistics", "tech")
        assert logistics.state == TaskState.OPEN and logistics.assignee is None
        # Tech is the "green channel": 2 h to respond, 24 h to finish; logistics 4 h / 48 h.
        assert tech.respond_due_at == now + dt.timedelta(hours=2)
        assert tech.complete_due_at == now + dt.timedelta(hours=24)
        assert logistics.respond_due_at == now + dt.timedelta(hours=4)
        events = ticket.events.filter(kind=EventKind.TASK_OPENED)
        assert events.count() == 2
        assert {e.task_id for e in events} == {logistics.pk, tech.pk}

    def test_admin_edited_department_defaults_apply(self, ticket, agent):
        Department.objects.filter(code="logistics").update(
            task_response_hours=1, task_completion_hours=8
        )
        now = timezone.now()
        with time_machine.travel(now, tick=False):
            (task,) = open_tasks(ticket, agent, "logistics")
        assert task.complete_due_at == now + dt.timedelta(hours=8)

    def test_explicit_deadlines_are_checked(self, ticket, agent):
        past = timezone.now() - dt.timedelta(hours=1)
        with pytest.raises(ValidationError) as refused:
            services.task_open(
                ticket=ticket.number,
                actor=agent,
                specs=[spec("logistics", respond_due_at=past)],
                instruction="x",
            )
        assert "future" in str(refused.value)
        soon = timezone.now() + dt.timedelta(hours=3)
        with pytest.raises(ValidationError):
            services.task_open(
                ticket=ticket.number,
                actor=agent,
                specs=[
                    spec(
                        "logistics",
                        respond_due_at=soon,
                        complete_due_at=soon - dt.timedelta(hours=1),
                    )
                ],
                instruction="x",
            )
        assert not CollaborationTask.objects.exists()

    @pytest.mark.parametrize(
        ("specs", "instruction", "message"),
        [
            ([], "x", "at least one department"),
            ([spec("nowhere")], "x", "Unknown collaborating department"),
            ([spec("team-a")], "x", "Unknown collaborating department"),
            ([spec("logistics"), spec("logistics")], "x", "listed twice"),
            ([spec("logistics", responsibility=" ")], "x", "responsible for"),
            ([spec("logistics")], "", "instruction"),
        ],
    )
    def test_bad_requests_write_nothing(self, ticket, agent, specs, instruction, message):
        with pytest.raises(ValidationError) as refused:
            services.task_open(
                ticket=ticket.number, actor=agent, specs=specs, instruction=instruction
            )
        assert message in str(refused.value)
        assert not CollaborationTask.objects.exists()
        assert not ticket.events.filter(kind=EventKind.TASK_OPENED).exists()

    def test_closed_tickets_and_department_staff_cannot_open(
        self, ticket, agent, logistics, drive_ticket
    ):
        with pytest.raises(PermissionDenied):
            open_tasks(ticket, logistics, "tech")
        drive_ticket(ticket, agent, "closed")
        with pytest.raises(ValidationError):
            open_tasks(ticket, agent, "logistics")
        assert not CollaborationTask.objects.exists()


class TestWorking:
    def test_claim_note_complete_notifies_the_agent(self, ticket, agent, logistics, drive_ticket):
        drive_ticket(ticket, agent, "in_progress")
        (task,) = open_tasks(ticket, agent, "logistics")
        services.task_claim(task=task.pk, actor=logistics)
        services.task_note(task=task.pk, actor=logistics, body="已联系快递站点")
        services.task_complete(task=task.pk, actor=logistics, result="已补发，顺丰 SF123")
        task.refresh_from_db()
        assert (task.state, task.assignee, task.result) == (
            TaskState.DONE,
            logistics,
            "已补发，顺丰 SF123",
        )
        assert task.claimed_at and task.completed_at
        kinds = list(task.events.values_list("kind", flat=True))
        assert kinds == [
            EventKind.TASK_OPENED,
            EventKind.TASK_CLAIMED,
            EventKind.TASK_NOTE,
            EventKind.TASK_COMPLETED,
        ]
        (note,) = Notification.objects.filter(recipient=agent)
        assert "SF123" in note.message and ticket.number in note.message

    def test_second_claim_is_a_conflict(self, ticket, agent, logistics, logistics2):
        (task,) = open_tasks(ticket, agent, "logistics")
        services.task_claim(task=task.pk, actor=logistics)
        with pytest.raises(services.Conflict) as conflict:
            services.task_claim(task=task.pk, actor=logistics2)
        assert "already claimed" in str(conflict.value)

    def test_only_the_claimer_or_head_completes(self, ticket, agent, logistics, logistics2, head):
        (task,) = open_tasks(ticket, agent, "logistics")
        services.task_claim(task=task.pk, actor=logistics)
        with pytest.raises(PermissionDenied):
            services.task_complete(task=task.pk, actor=logistics2, result="done")
        services.task_complete(task=task.pk, actor=head, result="组长代为完成")
        task.refresh_from_db()
        assert task.state == TaskState.DONE

    def test_other_departments_and_agents_cannot_work_it(self, ticket, agent, tech):
        (task,) = open_tasks(ticket, agent, "logistics")
        for user in (tech, agent):
            with pytest.raises(PermissionDenied):
                services.task_claim(task=task.pk, actor=user)
        with pytest.raises(PermissionDenied):
            services.task_complete(task=task.pk, actor=agent, result="x")

    def test_complete_needs_a_result(self, ticket, agent, logistics):
        (task,) = open_tasks(ticket, agent, "logistics")
        with pytest.raises(ValidationError):
            services.task_complete(task=task.pk, actor=logistics, result="  ")
        task.refresh_from_db()
        assert task.state == TaskState.OPEN

    def test_return_with_reason_then_agent_sends_again(self, ticket, agent, logistics, logistics2):
        (task,) = open_tasks(ticket, agent, "logistics")
        with pytest.raises(ValidationError):
            services.task_return(task=task.pk, actor=logistics, reason="")
        services.task_return(task=task.pk, actor=logistics, reason="缺少订单号")
        task.refresh_from_db()
        assert task.state == TaskState.RETURNED
        assert "缺少订单号" in Notification.objects.get(recipient=agent).message
        with pytest.raises(services.Conflict):
            services.task_claim(task=task.pk, actor=logistics2)
        services.task_resend(task=task.pk, actor=agent, instruction="订单号 SO20261122001")
        task.refresh_from_db()
        assert (task.state, task.instruction) == (TaskState.OPEN, "订单号 SO20261122001")
        services.task_claim(task=task.pk, actor=logistics2)

    def test_head_reassigns_within_the_department_only(
        self, ticket, agent, logistics, logistics2, head, tech
    ):
        (task,) = open_tasks(ticket, agent, "logistics")
        services.task_claim(task=task.pk, actor=logistics)
        with pytest.raises(PermissionDenied):
            services.task_reassign(task=task.pk, actor=logistics, assignee=logistics2)
        with pytest.raises(ValidationError):
            services.task_reassign(task=task.pk, actor=head, assignee=tech)
        services.task_reassign(task=task.pk, actor=head, assignee=logistics2)
        task.refresh_from_db()
        assert task.assignee == logistics2
        assert Notification.objects.filter(recipient=logistics2).count() == 1

    def test_agent_cancels_with_a_reason(self, ticket, agent, logistics, agent2):
        (task,) = open_tasks(ticket, agent, "logistics")
        with pytest.raises(PermissionDenied):
            services.task_cancel(task=task.pk, actor=logistics, reason="x")
        services.task_cancel(task=task.pk, actor=agent2, reason="客户已自行解决")
        task.refresh_from_db()
        assert task.state == TaskState.CANCELLED
        with pytest.raises(services.Conflict):
            services.task_complete(task=task.pk, actor=logistics, result="x")

    def test_open_tasks_block_resolve_and_merge(
        self, ticket, agent, logistics, drive_ticket, customer, channel, team_a
    ):
        from tests.factories import make_ticket

        drive_ticket(ticket, agent, "in_progress")
        (task,) = open_tasks(ticket, agent, "logistics")

        def resolve():
            return services.ticket_resolve(
                ticket=ticket.number,
                actor=agent,
                solution="补发",
                responsible_person="物流部",
                resolution_time=timezone.now(),
                evidence_ref="SF123",
            )

        with pytest.raises(services.Conflict) as conflict:
            resolve()
        assert "物流部" in str(conflict.value)
        duplicate = make_ticket(customer=customer, channel=channel, team=team_a)
        with pytest.raises(services.Conflict):
            services.ticket_merge(ticket=ticket.number, actor=agent, into=duplicate.number)
        services.task_complete(task=task.pk, actor=logistics, result="已处理")
        assert resolve().status == "resolved"


class TestBoardAndVisibility:
    def test_board_tabs_and_counts(
        self, ticket, agent, logistics, logistics2, customer, channel, team_a
    ):
        from tests.factories import make_ticket

        first, second, third = (
            open_tasks(
                make_ticket(customer=customer, channel=channel, team=team_a), agent, "logistics"
            )[0]
            for _ in range(3)
        )
        open_tasks(ticket, agent, "tech")
        services.task_claim(task=second.pk, actor=logistics)
        services.task_claim(task=third.pk, actor=logistics2)
        services.task_complete(task=third.pk, actor=logistics2, result="ok")
        assert list(selectors.task_board(logistics, tab="unclaimed")) == [first]
        assert list(selectors.task_board(logistics, tab="mine")) == [second]
        assert list(selectors.task_board(logistics2, tab="done")) == [third]
        assert selectors.board_counts(logistics) == {
            "unclaimed": 1,
            "mine": 1,
            "department": 1,
            "done": 1,
        }

    def test_overdue_flag_follows_the_clock(self, ticket, agent, logistics):
        (task,) = open_tasks(ticket, agent, "logistics")
        assert not task.is_overdue()
        assert task.is_overdue(timezone.now() + dt.timedelta(hours=4, minutes=1))
        services.task_claim(task=task.pk, actor=logistics)
        task.refresh_from_db()
        # Claimed in time: now the completion deadline (48 h) counts.
        assert not task.is_overdue(timezone.now() + dt.timedelta(hours=5))
        assert task.is_overdue(timezone.now() + dt.timedelta(hours=49))

    def test_department_staff_see_only_tickets_with_their_tasks(
        self, ticket, agent, logistics, tech, customer, channel, team_a
    ):
        from complaints import policies
        from tests.factories import make_ticket

        other = make_ticket(customer=customer, channel=channel, team=team_a)
        open_tasks(ticket, agent, "logistics")
        assert policies.can_view_ticket(logistics, ticket)
        assert not policies.can_view_ticket(logistics, other)
        assert not policies.can_view_ticket(tech, ticket)
        assert list(selectors.department_tickets(logistics)) == [ticket]
