"""Tiered compensation authority: caps per ticket, approvals, refusals."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from complaints import selectors, services
from complaints.models import (
    Compensation,
    CompensationLimit,
    CompensationState,
    EventKind,
    Notification,
    TimelineEvent,
)


def grant(ticket, actor, amount, *, kind="coupon", request=False, reason="物流延误致歉"):
    return services.compensation_grant(
        ticket=ticket.number, actor=actor, kind=kind, amount=amount, reason=reason, request=request
    )


def nothing_written(ticket):
    return not Compensation.objects.filter(ticket=ticket).exists() and not (
        TimelineEvent.objects.filter(ticket=ticket, kind__startswith="compensation").exists()
    )


def test_agent_grants_within_ten_yuan_at_once(ticket, agent):
    compensation = grant(ticket, agent, "10")
    assert compensation.state == CompensationState.GRANTED
    assert compensation.amount == Decimal("10.00")
    assert services.compensation_total(ticket) == Decimal("10.00")
    event = ticket.events.get(kind=EventKind.COMPENSATION_GRANTED)
    assert event.actor == agent
    assert event.after["amount"] == "10.00"
    assert event.after["ticket_total"] == "10.00"


def test_cap_is_on_the_ticket_total_not_per_grant(ticket, agent):
    grant(ticket, agent, "10")
    with pytest.raises(services.CapExceeded) as refused:
        grant(ticket, agent, "1")
    assert "¥11.00" in str(refused.value)
    assert refused.value.approver_tier == 2
    assert ticket.compensations.count() == 1


def test_split_grants_cannot_replace_one_large_grant(ticket, agent):
    grant(ticket, agent, "4")
    grant(ticket, agent, "4")
    with pytest.raises(services.CapExceeded):
        grant(ticket, agent, "4")
    assert services.compensation_total(ticket) == Decimal("8.00")


def test_senior_grants_up_to_a_hundred(ticket, senior):
    grant(ticket, senior, "60")
    grant(ticket, senior, "40")
    with pytest.raises(services.CapExceeded) as refused:
        grant(ticket, senior, "0.01")
    assert refused.value.approver_tier == 3


def test_request_routes_to_lowest_tier_that_covers_the_new_total(ticket, agent):
    grant(ticket, agent, "10")
    small = grant(ticket, agent, "5", request=True)
    assert (small.state, small.approver_tier) == (CompensationState.REQUESTED, 2)
    large = grant(ticket, agent, "95", request=True)
    assert large.approver_tier == 3  # 10 paid + 95 > the senior's ¥100
    # Requests do not count until approved.
    assert services.compensation_total(ticket) == Decimal("10.00")


def test_senior_approves_and_requester_is_notified(ticket, agent, senior):
    grant(ticket, agent, "10")
    request = grant(ticket, agent, "5", request=True)
    assert list(selectors.pending_approvals(senior)) == [request]
    services.compensation_approve(compensation=request.pk, actor=senior, note="同意")
    request.refresh_from_db()
    assert request.state == CompensationState.APPROVED
    assert request.decided_by == senior
    assert services.compensation_total(ticket) == Decimal("15.00")
    kinds = list(
        ticket.events.filter(kind__startswith="compensation").values_list("kind", flat=True)
    )
    assert kinds == [
        EventKind.COMPENSATION_GRANTED,
        EventKind.COMPENSATION_REQUESTED,
        EventKind.COMPENSATION_APPROVED,
    ]
    note = Notification.objects.get(recipient=agent)
    assert ticket.number in note.message and "¥5.00" in note.message
    assert not selectors.pending_approvals(senior).exists()


def test_reject_needs_a_reason_and_tells_the_requester(ticket, agent, senior):
    request = grant(ticket, agent, "50", request=True)
    with pytest.raises(ValidationError):
        services.compensation_reject(compensation=request.pk, actor=senior, reason=" ")
    services.compensation_reject(
        compensation=request.pk, actor=senior, reason="已补发商品，无需补偿"
    )
    request.refresh_from_db()
    assert request.state == CompensationState.REJECTED
    assert "已补发商品" in Notification.objects.get(recipient=agent).message
    assert services.compensation_total(ticket) == Decimal("0.00")


def test_nobody_approves_their_own_request(ticket, senior, supervisor):
    request = grant(ticket, senior, "150", request=True)
    assert request.approver_tier == 3
    assert not selectors.pending_approvals(senior).exists()
    with pytest.raises(PermissionDenied):
        services.compensation_approve(compensation=request.pk, actor=senior)
    services.compensation_approve(compensation=request.pk, actor=supervisor)
    assert services.compensation_total(ticket) == Decimal("150.00")


def test_beyond_the_ceiling_nobody_can_approve(ticket, agent, supervisor):
    from tests.factories import make_staff

    # A supervisor's request needs another supervisor.
    CompensationLimit.objects.filter(tier=2).update(amount=Decimal("100.00"))
    grant(ticket, supervisor, "5000")
    with pytest.raises(ValidationError):
        grant(ticket, supervisor, "1", request=True)  # beyond every tier: nobody can approve
    second = make_staff("supervisor2", "supervisor", None)
    CompensationLimit.objects.filter(tier=3).update(amount=Decimal("6000.00"))
    request = grant(ticket, agent, "100", request=True)
    with pytest.raises(PermissionDenied):
        services.compensation_approve(compensation=request.pk, actor=agent)
    services.compensation_approve(compensation=request.pk, actor=second)
    assert services.compensation_total(ticket) == Decimal("5100.00")


def test_agent_and_other_team_lead_cannot_decide(ticket, agent, agent2, other_agent, team_b):
    from tests.factories import make_staff

    other_lead = make_staff("lead_b", "senior", team_b)
    request = grant(ticket, agent, "30", request=True)
    for user in (agent, agent2, other_lead):
        with pytest.raises(PermissionDenied):
            services.compensation_approve(compensation=request.pk, actor=user)
    assert not selectors.pending_approvals(other_lead).exists()
    request.refresh_from_db()
    assert request.state == CompensationState.REQUESTED


def test_senior_cannot_approve_what_needs_a_supervisor(ticket, agent, senior, supervisor):
    request = grant(ticket, agent, "300", request=True)
    assert request.approver_tier == 3
    with pytest.raises(PermissionDenied):
        services.compensation_approve(compensation=request.pk, actor=senior)
    services.compensation_approve(compensation=request.pk, actor=supervisor)
    assert services.compensation_total(ticket) == Decimal("300.00")


def test_approval_rechecks_the_total_at_decision_time(ticket, agent, senior):
    request = grant(ticket, agent, "90", request=True)
    grant(ticket, senior, "20")  # meanwhile the lead gives ¥20 directly
    with pytest.raises(services.CapExceeded):
        services.compensation_approve(compensation=request.pk, actor=senior)
    request.refresh_from_db()
    assert request.state == CompensationState.REQUESTED


def test_decided_request_cannot_be_decided_again(ticket, agent, senior, supervisor):
    request = grant(ticket, agent, "20", request=True)
    services.compensation_approve(compensation=request.pk, actor=senior)
    with pytest.raises(services.Conflict):
        services.compensation_reject(compensation=request.pk, actor=supervisor, reason="no")


def test_requester_can_withdraw(ticket, agent, agent2, senior):
    request = grant(ticket, agent, "20", request=True)
    with pytest.raises(PermissionDenied):
        services.compensation_cancel(compensation=request.pk, actor=agent2)
    services.compensation_cancel(compensation=request.pk, actor=agent)
    request.refresh_from_db()
    assert request.state == CompensationState.CANCELLED
    assert not selectors.pending_approvals(senior).exists()


def test_request_within_own_authority_is_refused(ticket, agent):
    with pytest.raises(ValidationError):
        grant(ticket, agent, "5", request=True)
    assert nothing_written(ticket)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "more than zero"),
        ("-5", "more than zero"),
        ("0.00", "more than zero"),
        ("1.005", "two decimal"),
        ("abc", "Enter an amount"),
        ("NaN", "Enter an amount"),
        ("Infinity", "Enter an amount"),
        ("", "Enter an amount"),
        (None, "Enter an amount"),
        (True, "Enter an amount"),
        ("1e9", "not plausible"),
        ("99999999999999999999", "not plausible"),
    ],
)
def test_bad_amounts_are_refused_and_nothing_is_written(ticket, agent, amount, message):
    with pytest.raises(ValidationError) as refused:
        grant(ticket, agent, amount)
    assert message in " ".join(refused.value.message_dict["amount"])
    assert nothing_written(ticket)


def test_amount_above_every_tier_is_refused(ticket, supervisor):
    with pytest.raises(ValidationError) as refused:
        grant(ticket, supervisor, "5000.01")
    assert "¥5,000.00" in str(refused.value)
    assert nothing_written(ticket)


def test_unknown_kind_and_missing_reason_are_refused(ticket, agent):
    with pytest.raises(ValidationError) as refused:
        grant(ticket, agent, "5", kind="bitcoin", reason="")
    assert set(refused.value.message_dict) == {"kind", "reason"}
    assert nothing_written(ticket)


def test_closed_and_merged_tickets_refuse_compensation(ticket, agent, drive_ticket):
    drive_ticket(ticket, agent, "closed")
    with pytest.raises(ValidationError) as refused:
        grant(ticket, agent, "5")
    assert "Closed" in str(refused.value)
    assert nothing_written(ticket)


def test_department_staff_and_outsiders_cannot_grant(ticket, logistics, outsider):
    for user in (logistics, outsider):
        with pytest.raises(PermissionDenied):
            grant(ticket, user, "5")
    assert nothing_written(ticket)


def test_other_team_agent_cannot_grant(ticket, other_agent):
    with pytest.raises(PermissionDenied):
        grant(ticket, other_agent, "5")


def test_admin_edits_the_limits(ticket, agent):
    CompensationLimit.objects.filter(tier=1).update(amount=Decimal("20.00"))
    grant(ticket, agent, "20")
    assert services.compensation_total(ticket) == Decimal("20.00")


def test_customer_total_spans_tickets(ticket, agent, customer, channel, team_a):
    from tests.factories import make_ticket

    second = make_ticket(customer=customer, channel=channel, team=team_a)
    grant(ticket, agent, "10")
    grant(second, agent, "8.50")
    grant(second, agent, "50", request=True)  # pending: not counted
    assert selectors.customer_compensation_total(customer) == Decimal("18.50")
