"""Claims and grants under real concurrency on PostgreSQL (row locks, real threads)."""

from decimal import Decimal

import pytest

from complaints import services
from complaints.models import (
    CollaborationTask,
    Compensation,
    CompensationState,
    Department,
    EventKind,
    Role,
    TaskState,
)
from tests.complaints.test_concurrency import run_concurrently
from tests.factories import make_staff

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def open_task(ticket, actor, department="logistics"):
    (task,) = services.task_open(
        ticket=ticket.number,
        actor=actor,
        specs=[services.TaskSpec(department=department, responsibility="核实物流轨迹")],
        instruction="请核实并回复",
    )
    return task


def test_twenty_concurrent_claims_have_exactly_one_winner(ticket, agent, reference_data):
    logistics = Department.objects.get(code="logistics")
    staff = [make_staff(f"wl{i:02d}", Role.DEPARTMENT, logistics) for i in range(20)]
    task = open_task(ticket, agent)

    results = run_concurrently(lambda i: services.task_claim(task=task.pk, actor=staff[i]), 20)

    winners = [r for r in results if isinstance(r, CollaborationTask)]
    conflicts = [r for r in results if isinstance(r, services.Conflict)]
    assert len(winners) == 1, results
    assert len(conflicts) == 19, results
    assert all("already claimed" in str(c) for c in conflicts)
    task.refresh_from_db()
    assert task.state == TaskState.CLAIMED
    assert task.assignee == winners[0].assignee
    assert ticket.events.filter(kind=EventKind.TASK_CLAIMED).count() == 1


def test_concurrent_grants_never_pass_the_cap_together(ticket, agent, agent2):
    users = [agent, agent2] * 5  # ten grants of ¥3 against a ¥10 cap on the ticket

    results = run_concurrently(
        lambda i: services.compensation_grant(
            ticket=ticket.number, actor=users[i], kind="coupon", amount="3", reason="致歉"
        ),
        10,
    )

    granted = [r for r in results if isinstance(r, Compensation)]
    refused = [r for r in results if isinstance(r, services.CapExceeded)]
    assert len(granted) == 3 and len(refused) == 7, results
    assert services.compensation_total(ticket) == Decimal("9.00")
    assert ticket.events.filter(kind=EventKind.COMPENSATION_GRANTED).count() == 3


def test_two_grants_that_together_exceed_the_cap_one_is_refused(ticket, agent, agent2):
    users = [agent, agent2]
    results = run_concurrently(
        lambda i: services.compensation_grant(
            ticket=ticket.number, actor=users[i], kind="refund", amount="6", reason="退运费"
        ),
        2,
    )
    assert sum(isinstance(r, Compensation) for r in results) == 1, results
    assert sum(isinstance(r, services.CapExceeded) for r in results) == 1, results
    assert services.compensation_total(ticket) == Decimal("6.00")


def test_approval_and_grant_racing_stay_within_the_approvers_limit(ticket, agent, senior):
    request = services.compensation_grant(
        ticket=ticket.number, actor=agent, kind="cash", amount="95", reason="维修延误", request=True
    )

    def act(i):
        if i == 0:
            return services.compensation_approve(compensation=request.pk, actor=senior)
        return services.compensation_grant(
            ticket=ticket.number, actor=senior, kind="coupon", amount="10", reason="致歉"
        )

    results = run_concurrently(act, 2)
    # Whichever runs first, the ticket never passes the senior's ¥100.
    assert services.compensation_total(ticket) <= Decimal("100.00"), results
    assert sum(isinstance(r, Compensation) for r in results) == 1, results
    request.refresh_from_db()
    assert request.state in (CompensationState.APPROVED, CompensationState.REQUESTED)
