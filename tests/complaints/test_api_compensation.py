"""Compensation through the staff API: grants, the cap, requests, approvals and refusals."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from complaints import services
from complaints.models import (
    CollaborationTask,
    Compensation,
    CompensationState,
    EventKind,
    Notification,
    TimelineEvent,
)
from tests.factories import make_staff, make_ticket

pytestmark = pytest.mark.django_db

QUEUE_URL = "/api/v1/compensations/"


def comp_url(number):
    return f"/api/v1/tickets/{number}/compensations/"


def decide_url(pk, decision):
    return f"/api/v1/compensations/{pk}/{decision}/"


@pytest.fixture
def anon():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def api_as():
    def _as(user):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _as


def post(client, url, data=None):
    return client.post(url, data if data is not None else {}, format="json")


def grant_body(amount, **extra):
    return {"kind": "coupon", "amount": amount, "reason": "物流延误致歉", **extra}


def snapshot(ticket):
    """What a refused request must leave untouched."""
    return (
        list(Compensation.objects.filter(ticket=ticket).values_list("pk", "state")),
        TimelineEvent.objects.filter(ticket=ticket).count(),
        Notification.objects.count(),
    )


def request_comp(ticket, actor, amount):
    return services.compensation_grant(
        ticket=ticket.number,
        actor=actor,
        kind="refund",
        amount=amount,
        reason="商品破损部分退款",
        request=True,
    )


# --- grants and the cap ------------------------------------------------------------


def test_agent_grants_within_authority(api_as, agent, ticket):
    response = post(api_as(agent), comp_url(ticket.number), grant_body(10))
    assert response.status_code == 201, response.content
    data = response.json()
    compensation = Compensation.objects.get(ticket=ticket)
    assert data == {
        "id": compensation.pk,
        "ticket": ticket.number,
        "kind": "coupon",
        "kind_display": "Coupon",
        "amount": "10.00",
        "reason": "物流延误致歉",
        "state": "granted",
        "state_display": "Granted",
        "approver_tier": None,
        "requested_by": {"username": "agent", "name": "小李"},
        "decided_by": None,
        "decided_at": None,
        "decision_note": "",
        "created_at": data["created_at"],
        "ticket_total": "10.00",
    }
    event = ticket.events.get(kind=EventKind.COMPENSATION_GRANTED)
    assert event.actor == agent
    assert event.after["amount"] == "10.00"


def test_amount_may_be_a_string_with_two_decimals(api_as, agent, ticket):
    client = api_as(agent)
    assert post(client, comp_url(ticket.number), grant_body("4.50")).json()["amount"] == "4.50"
    response = post(client, comp_url(ticket.number), grant_body(5.5))
    assert response.status_code == 201
    assert response.json()["ticket_total"] == "10.00"


def test_above_the_cap_is_403_with_code_and_nothing_written(api_as, agent, ticket):
    client = api_as(agent)
    assert post(client, comp_url(ticket.number), grant_body(10)).status_code == 201
    before = snapshot(ticket)
    response = post(client, comp_url(ticket.number), grant_body(5))
    assert response.status_code == 403
    data = response.json()
    assert data["code"] == "cap_exceeded"
    assert data["approver_tier"] == 2
    assert "approval" in data["detail"] and "request it" in data["detail"]
    assert "¥15.00" in data["detail"]
    assert snapshot(ticket) == before


def test_request_above_the_cap_is_routed_to_the_lowest_tier(api_as, agent, ticket):
    client = api_as(agent)
    post(client, comp_url(ticket.number), grant_body(10))
    response = post(client, comp_url(ticket.number), grant_body("5", request=True))
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["state"], data["state_display"], data["approver_tier"]) == (
        "requested",
        "Awaiting approval",
        2,
    )
    assert data["ticket_total"] == "10.00"  # a request does not count until approved
    big = post(client, comp_url(ticket.number), grant_body("95", request=True)).json()
    assert big["approver_tier"] == 3


def test_request_within_authority_is_400(api_as, agent, ticket):
    before = snapshot(ticket)
    response = post(api_as(agent), comp_url(ticket.number), grant_body(5, request=True))
    assert response.status_code == 400
    assert "grant it directly" in response.json()["detail"]
    assert snapshot(ticket) == before


def test_whole_approval_flow_through_the_api(api_as, agent, senior, ticket):
    """Grant ¥10, be refused ¥5, request it, the lead approves: the ticket shows ¥15."""
    agent_client, lead = api_as(agent), api_as(senior)
    post(agent_client, comp_url(ticket.number), grant_body(10))
    assert post(agent_client, comp_url(ticket.number), grant_body(5)).status_code == 403
    requested = post(agent_client, comp_url(ticket.number), grant_body(5, request=True)).json()

    queue = lead.get(QUEUE_URL)
    assert queue.status_code == 200
    (row,) = queue.json()["results"]
    assert (row["id"], row["ticket"], row["ticket_total"]) == (
        requested["id"],
        ticket.number,
        "10.00",
    )
    # The requester has nothing to decide.
    assert agent_client.get(QUEUE_URL).json()["count"] == 0

    response = post(lead, decide_url(requested["id"], "approve"), {"note": "同意"})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["state"] == "approved"
    assert data["decided_by"]["username"] == "senior"
    assert data["decision_note"] == "同意"
    assert data["decided_at"] is not None
    assert data["ticket_total"] == "15.00"
    assert lead.get(QUEUE_URL).json()["count"] == 0

    listed = agent_client.get(comp_url(ticket.number))
    assert listed.status_code == 200
    assert listed.json()["total"] == "15.00"
    assert [c["state"] for c in listed.json()["compensations"]] == ["granted", "approved"]
    assert {c["ticket_total"] for c in listed.json()["compensations"]} == {"15.00"}
    kinds = list(
        ticket.events.filter(kind__startswith="compensation").values_list("kind", flat=True)
    )
    assert kinds == [
        EventKind.COMPENSATION_GRANTED,
        EventKind.COMPENSATION_REQUESTED,
        EventKind.COMPENSATION_APPROVED,
    ]
    assert "¥5.00" in Notification.objects.get(recipient=agent).message


def test_nobody_approves_their_own_request(api_as, senior, supervisor, ticket):
    requested = request_comp(ticket, senior, "150")
    before = snapshot(ticket)
    response = post(api_as(senior), decide_url(requested.pk, "approve"))
    assert response.status_code == 403
    assert "own request" in response.json()["detail"]
    assert snapshot(ticket) == before
    assert post(api_as(supervisor), decide_url(requested.pk, "approve")).status_code == 200


def test_agents_cannot_decide(api_as, agent, agent2, ticket):
    requested = request_comp(ticket, agent, "30")
    before = snapshot(ticket)
    for user in (agent, agent2):
        for decision, body in (("approve", {}), ("reject", {"reason": "不行"})):
            response = post(api_as(user), decide_url(requested.pk, decision), body)
            assert response.status_code == 403, (user, decision)
    assert snapshot(ticket) == before


def test_a_lead_cannot_approve_what_needs_a_supervisor(api_as, agent, senior, ticket):
    requested = request_comp(ticket, agent, "300")
    response = post(api_as(senior), decide_url(requested.pk, "approve"))
    assert response.status_code == 403
    requested.refresh_from_db()
    assert requested.state == CompensationState.REQUESTED


def test_reject_needs_a_reason(api_as, agent, senior, ticket):
    requested = request_comp(ticket, agent, "30")
    before = snapshot(ticket)
    for body in ({}, {"reason": "   "}):
        response = post(api_as(senior), decide_url(requested.pk, "reject"), body)
        assert response.status_code == 400
        assert "reason" in response.json()
    assert snapshot(ticket) == before
    response = post(api_as(senior), decide_url(requested.pk, "reject"), {"reason": "已补发商品"})
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["decision_note"]) == (
        "rejected",
        "已补发商品",
    )
    assert response.json()["ticket_total"] == "0.00"
    assert "已补发商品" in Notification.objects.get(recipient=agent).message


def test_a_decided_request_is_409(api_as, agent, senior, supervisor, ticket):
    requested = request_comp(ticket, agent, "30")
    assert post(api_as(senior), decide_url(requested.pk, "approve")).status_code == 200
    for decision, body in (("approve", {}), ("reject", {"reason": "x"}), ("cancel", {})):
        response = post(api_as(supervisor), decide_url(requested.pk, decision), body)
        assert response.status_code == 409, decision
        assert "already decided" in response.json()["detail"]


def test_requester_withdraws_a_request(api_as, agent, agent2, senior, ticket):
    requested = request_comp(ticket, agent, "30")
    assert post(api_as(agent2), decide_url(requested.pk, "cancel")).status_code == 403
    response = post(api_as(agent), decide_url(requested.pk, "cancel"))
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert response.json()["state_display"] == "Withdrawn"
    assert api_as(senior).get(QUEUE_URL).json()["count"] == 0
    assert post(api_as(senior), decide_url(requested.pk, "approve")).status_code == 409


def test_deciding_a_direct_grant_is_refused_not_a_server_error(
    api_as, agent, senior, supervisor, ticket
):
    """A grant is not a request: nobody can approve, reject or withdraw it."""
    granted = post(api_as(agent), comp_url(ticket.number), grant_body(5)).json()
    before = snapshot(ticket)
    for decision, body in (("approve", {}), ("reject", {"reason": "x"}), ("cancel", {})):
        assert post(api_as(senior), decide_url(granted["id"], decision), body).status_code == 403
        response = post(api_as(supervisor), decide_url(granted["id"], decision), body)
        assert response.status_code == 409, decision
    assert snapshot(ticket) == before


def test_approving_on_a_closed_ticket_is_409(api_as, agent, senior, ticket, drive_ticket):
    requested = request_comp(ticket, agent, "30")
    drive_ticket(ticket, agent, "closed")
    response = post(api_as(senior), decide_url(requested.pk, "approve"))
    assert response.status_code == 409
    assert (
        post(api_as(senior), decide_url(requested.pk, "reject"), {"reason": "已关闭"}).status_code
        == 200
    )


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        0,
        -1,
        1.005,
        "abc",
        True,
        [],
        1e9,
        "0",
        "-5",
        "1.005",
        "",
        None,
        {},
        {"amount": 5},
        "NaN",
        "Infinity",
        "1e9",
        "9" * 30,
        "x" * 10_000,
        "\x00",
    ],
)
def test_bad_amounts_are_400_and_nothing_is_written(api_as, agent, ticket, amount):
    before = snapshot(ticket)
    response = post(api_as(agent), comp_url(ticket.number), grant_body(amount))
    assert response.status_code == 400, response.content
    assert "amount" in response.json()
    assert snapshot(ticket) == before


def test_missing_amount_is_400(api_as, agent, ticket):
    response = post(api_as(agent), comp_url(ticket.number), {"kind": "coupon", "reason": "x"})
    assert response.status_code == 400
    assert "amount" in response.json()


@pytest.mark.parametrize("kind", ["bitcoin", "", "COUPON", None, 1, ["coupon"], "\x00"])
def test_unknown_kind_is_400(api_as, agent, ticket, kind):
    before = snapshot(ticket)
    response = post(api_as(agent), comp_url(ticket.number), {**grant_body(5), "kind": kind})
    assert response.status_code == 400
    assert "kind" in response.json()
    assert snapshot(ticket) == before


def test_missing_reason_is_400(api_as, agent, ticket):
    response = post(api_as(agent), comp_url(ticket.number), grant_body(5, reason=" "))
    assert response.status_code == 400
    assert "reason" in response.json()
    assert not Compensation.objects.exists()


def test_junk_request_flag_is_400(api_as, agent, ticket):
    response = post(api_as(agent), comp_url(ticket.number), grant_body(5, request="maybe"))
    assert response.status_code == 400
    assert "request" in response.json()
    assert not Compensation.objects.exists()


def test_closed_ticket_refuses_compensation(api_as, agent, ticket, drive_ticket):
    drive_ticket(ticket, agent, "closed")
    before = snapshot(ticket)
    response = post(api_as(agent), comp_url(ticket.number), grant_body(5))
    assert response.status_code == 400
    assert "Closed" in response.json()["detail"]
    assert snapshot(ticket) == before


def test_no_junk_value_in_any_field_is_a_server_error(api_as, supervisor, ticket):
    client = api_as(supervisor)
    junk = [None, "", " ", [], {}, [None], True, 0, -1, 10**30, 1.5, "x" * 5000, "\x00", "null"]
    for field in ("kind", "amount", "reason", "request"):
        for value in junk:
            response = post(client, comp_url(ticket.number), {**grant_body(1), field: value})
            assert response.status_code in (201, 400), (field, value, response.content)
    requested = request_comp(ticket, make_staff("agent9", "agent", ticket.team), "30")
    for decision, field in (("approve", "note"), ("reject", "reason")):
        for value in junk:
            response = post(client, decide_url(requested.pk, decision), {field: value})
            assert response.status_code in (200, 400, 409), (decision, value, response.content)


# --- who may do it -----------------------------------------------------------------


def test_another_teams_agent_cannot_grant(api_as, other_agent, ticket):
    response = post(api_as(other_agent), comp_url(ticket.number), grant_body(5))
    assert response.status_code == 403
    assert not Compensation.objects.exists()


def test_department_staff_get_403_on_their_tasks_ticket_and_404_elsewhere(
    api_as, agent, logistics, ticket, customer, channel, team_a
):
    services.task_open(
        ticket=ticket.number,
        actor=agent,
        specs=[services.TaskSpec("logistics", "核实物流轨迹", "请核实")],
    )
    other = make_ticket(customer=customer, channel=channel, team=team_a)
    client = api_as(logistics)
    response = post(client, comp_url(ticket.number), grant_body(5))
    assert response.status_code == 403
    assert response.json()["detail"] == "Department staff cannot grant compensation."
    # Refused before the body is read: junk is still a 403, not a 400.
    assert post(client, comp_url(ticket.number), grant_body("abc")).status_code == 403
    assert client.get(comp_url(ticket.number)).status_code == 403
    assert post(client, comp_url(other.number), grant_body(5)).status_code == 404
    assert client.get(comp_url(other.number)).status_code == 404
    assert not Compensation.objects.exists()
    assert CollaborationTask.objects.count() == 1


def test_department_staff_and_outsiders_cannot_reach_compensations(
    api_as, agent, logistics, outsider, ticket
):
    requested = request_comp(ticket, agent, "30")
    for user in (logistics, outsider):
        client = api_as(user)
        for decision in ("approve", "reject", "cancel"):
            response = post(client, decide_url(requested.pk, decision), {"reason": "x"})
            assert response.status_code == 404, (user, decision)
        assert client.get(QUEUE_URL).json()["count"] == 0
        assert client.get(QUEUE_URL, {"state": "requested"}).json()["count"] == 0
    assert post(api_as(outsider), comp_url(ticket.number), grant_body(5)).status_code == 404
    requested.refresh_from_db()
    assert requested.state == CompensationState.REQUESTED


def test_anonymous_is_401(anon, agent, ticket):
    requested = request_comp(ticket, agent, "30")
    for response in (
        anon.get(comp_url(ticket.number)),
        post(anon, comp_url(ticket.number), grant_body(5)),
        anon.get(QUEUE_URL),
        post(anon, decide_url(requested.pk, "approve")),
        post(anon, decide_url(requested.pk, "reject"), {"reason": "x"}),
        post(anon, decide_url(requested.pk, "cancel")),
    ):
        assert response.status_code == 401
    assert Compensation.objects.count() == 1


@pytest.mark.parametrize("pk", ["999999", "0", "999999999999999999"])
def test_unknown_compensation_is_404(api_as, supervisor, ticket, pk):
    assert post(api_as(supervisor), decide_url(pk, "approve")).status_code == 404


def test_unknown_ticket_is_404(api_as, agent, ticket):
    client = api_as(agent)
    assert post(client, comp_url("TS20000101-000001"), grant_body(5)).status_code == 404
    assert client.get(comp_url("TS20000101-000001")).status_code == 404


# --- the queue ---------------------------------------------------------------------


def test_queue_by_state_for_service_staff(api_as, agent, senior, supervisor, ticket):
    client = api_as(agent)
    post(client, comp_url(ticket.number), grant_body(10))
    small = request_comp(ticket, agent, "5")
    big = request_comp(ticket, agent, "500")
    # A lead sees what a lead may approve; a supervisor everything pending.
    assert [r["id"] for r in api_as(senior).get(QUEUE_URL).json()["results"]] == [small.pk]
    assert [r["id"] for r in api_as(supervisor).get(QUEUE_URL).json()["results"]] == [
        small.pk,
        big.pk,
    ]
    granted = client.get(QUEUE_URL, {"state": "granted"}).json()
    assert [(r["amount"], r["ticket_total"]) for r in granted["results"]] == [("10.00", "10.00")]
    assert client.get(QUEUE_URL, {"state": "requested"}).json()["count"] == 2
    for junk in ("bogus", "GRANTED", "\x00"):
        response = client.get(QUEUE_URL, {"state": junk})
        assert response.status_code == 400
        assert "state" in response.json()


def test_queue_query_count_is_constant(
    api_as, agent, senior, ticket, customer, channel, team_a, django_assert_max_num_queries
):
    client = api_as(senior)
    request_comp(ticket, agent, "30")
    with CaptureQueriesContext(connection) as one:
        assert client.get(QUEUE_URL).json()["count"] == 1
    for _ in range(8):
        other = make_ticket(customer=customer, channel=channel, team=team_a)
        services.compensation_grant(
            ticket=other.number, actor=agent, kind="gift", amount="3", reason="致歉"
        )
        request_comp(other, agent, "30")
    with django_assert_max_num_queries(len(one.captured_queries)):
        data = client.get(QUEUE_URL).json()
    assert data["count"] == 9
    assert {r["ticket_total"] for r in data["results"]} == {"0.00", "3.00"}
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert client.get(QUEUE_URL, {"state": "granted"}).json()["count"] == 8


def test_ticket_compensation_list_query_count_is_constant(
    api_as, agent, ticket, django_assert_max_num_queries
):
    client = api_as(agent)
    services.compensation_grant(
        ticket=ticket.number, actor=agent, kind="gift", amount="1", reason="致歉"
    )
    with CaptureQueriesContext(connection) as one:
        assert client.get(comp_url(ticket.number)).status_code == 200
    for _ in range(5):
        request_comp(ticket, agent, "20")
    with django_assert_max_num_queries(len(one.captured_queries)):
        data = client.get(comp_url(ticket.number)).json()
    assert len(data["compensations"]) == 6
    assert data["total"] == "1.00"


# --- schema ------------------------------------------------------------------------


def test_schema_documents_the_compensation_endpoints(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    grant = paths["/api/v1/tickets/{number}/compensations/"]["post"]
    assert grant["tags"] == ["compensations"]
    assert grant["responses"]["403"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RefusalOutput"
    )
    assert "get" in paths["/api/v1/tickets/{number}/compensations/"]
    assert "get" in paths["/api/v1/compensations/"]
    for decision in ("approve", "reject", "cancel"):
        operation = paths[f"/api/v1/compensations/{{id}}/{decision}/"]["post"]
        assert operation["tags"] == ["compensations"]
        assert {"200", "403", "404", "409"} <= set(operation["responses"])
    components = schema["components"]["schemas"]
    assert set(components["CompensationInputRequest"]["properties"]) == {
        "kind",
        "amount",
        "reason",
        "request",
    }
    assert components["RefusalOutput"]["required"] == ["detail"]
