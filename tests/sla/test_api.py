"""The SLA engine in the REST API: clocks and open alerts on the ticket detail, the risk list
and acknowledging an alert (team leads and supervisors only)."""

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from complaints.models import Role
from sla import risks
from sla import services as sla
from sla.models import RiskAlert, RiskKind
from tests.conftest import drive
from tests.factories import make_staff, make_ticket
from tests.sla.conftest import T0
from tests.sla.test_clocks import respond

H = dt.timedelta(hours=1)
RISKS = "/api/v1/risks/"


def detail(number):
    return f"/api/v1/tickets/{number}/"


def acknowledge_url(pk):
    return f"/api/v1/risks/{pk}/acknowledge/"


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_as():
    def _as(user):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _as


@pytest.fixture
def other_lead(team_b):
    return make_staff("lead_b", Role.SENIOR, team_b)


def raise_alert(ticket, kind=RiskKind.MEDIA_WORDS, message="提到了媒体"):
    risks.raise_alert(ticket, kind, message)
    return RiskAlert.objects.get(ticket=ticket, kind=kind)


# --- the ticket detail ----------------------------------------------------------------------


def test_ticket_detail_shows_the_four_clocks(clock_at, ticket, agent, api_as):
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 3 * H)
    sla.sweep()  # first response at 75 %: warning 2
    data = api_as(agent).get(detail(ticket.number)).json()
    clocks = {c["stage"]: c for c in data["sla_clocks"]}
    assert list(clocks) == ["first_response", "assessment", "solution", "closure"]
    first = clocks["first_response"]
    assert first["due_at"] == "2026-11-23T13:00:00+08:00"  # 09:00 + 4 h
    assert (first["state"], first["warning_level"], first["met_at"]) == ("running", 2, None)
    assert first["breached_at"] is None and first["paused_seconds"] == 0
    assert first["target_minutes"] == 240 and first["stage_display"] == "First response"
    assert clocks["assessment"]["state"] == "met"  # classified and assigned
    assert clocks["assessment"]["met_at"] is not None


def test_paused_breached_and_met_clocks_in_the_detail(clock_at, ticket, agent, api_as):
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 5 * H)
    sla.sweep()  # first response breached
    respond(ticket, agent)
    sla.ticket_pause(ticket=ticket.number, actor=agent, reason="等客户照片")
    clock_at.move_to(T0 + 7 * H)
    sla.ticket_resume(ticket=ticket.number, actor=agent)
    data = api_as(agent).get(detail(ticket.number)).json()
    clocks = {c["stage"]: c for c in data["sla_clocks"]}
    first = clocks["first_response"]
    assert (first["state"], first["warning_level"]) == ("met_late", 4)
    assert first["breached_at"] == "2026-11-23T13:00:00+08:00"
    assert clocks["solution"]["paused_seconds"] == 2 * 3600
    assert clocks["solution"]["state"] == "running"


def test_ticket_detail_lists_only_open_risk_alerts(ticket, agent, senior, api_as):
    media = raise_alert(ticket)
    vip = raise_alert(ticket, RiskKind.VIP, "VIP")
    risks.acknowledge(alert=vip, actor=senior)
    data = api_as(agent).get(detail(ticket.number)).json()
    assert [a["id"] for a in data["risk_alerts"]] == [media.pk]
    alert = data["risk_alerts"][0]
    assert alert["kind"] == "media_words" and alert["severity"] == 3
    assert alert["ticket"] == ticket.number and alert["acknowledged_at"] is None


def test_department_staff_see_no_clocks_or_alerts(ticket, agent, logistics, api_as):
    from complaints import services

    raise_alert(ticket)
    services.task_open(
        ticket=ticket.number,
        actor=agent,
        specs=[services.TaskSpec(department="logistics", responsibility="查件")],
        instruction="核实",
    )
    data = api_as(logistics).get(detail(ticket.number)).json()
    assert "sla_clocks" not in data and "risk_alerts" not in data


def test_detail_queries_do_not_grow_with_alerts(ticket, agent, api_as):
    client = api_as(agent)
    raise_alert(ticket)
    with CaptureQueriesContext(connection) as one:
        assert client.get(detail(ticket.number)).status_code == 200
    for kind in (RiskKind.VIP, RiskKind.REPEAT_CONTACT, RiskKind.CATEGORY_SPIKE):
        raise_alert(ticket, kind, "x")
    with CaptureQueriesContext(connection) as four:
        assert len(client.get(detail(ticket.number)).json()["risk_alerts"]) == 4
    assert len(four.captured_queries) == len(one.captured_queries) <= 12


# --- the risk list ------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["agent", "logistics"])
def test_risk_list_is_403_for_agents_and_department_staff(api_as, persona, request):
    response = api_as(request.getfixturevalue(persona)).get(RISKS)
    assert response.status_code == 403
    assert "team leads and supervisors" in response.json()["detail"]


def test_risk_list_needs_authentication(db):
    assert APIClient().get(RISKS).status_code == 401


def test_leads_see_their_team_and_supervisors_everything(
    api_as, senior, supervisor, customer, channel, team_a, team_b, other_lead
):
    ours = raise_alert(make_ticket(customer=customer, channel=channel, team=team_a))
    theirs = raise_alert(make_ticket(customer=customer, channel=channel, team=team_b))
    nobodys = raise_alert(make_ticket(customer=customer, channel=channel, team=None))

    def ids(user, query="?kind=media_words"):  # (one customer: repeat contacts too)
        response = api_as(user).get(RISKS + query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids(senior) == {ours.pk, nobodys.pk}
    assert ids(other_lead) == {theirs.pk, nobodys.pk}
    assert ids(supervisor) == {ours.pk, theirs.pk, nobodys.pk}


def test_risk_list_filters(api_as, supervisor, ticket, senior):
    media = raise_alert(ticket)  # high
    vip = raise_alert(ticket, RiskKind.VIP, "VIP")  # low
    spike = raise_alert(ticket, RiskKind.CATEGORY_SPIKE, "spike")  # high
    risks.acknowledge(alert=spike, actor=senior)
    client = api_as(supervisor)

    def ids(query):
        response = client.get(RISKS + query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert set(ids("")) == {media.pk, vip.pk, spike.pk}
    assert ids("?kind=vip") == [vip.pk]
    assert set(ids("?severity=3")) == {media.pk, spike.pk}
    assert set(ids("?acknowledged=false")) == {media.pk, vip.pk}
    assert ids("?acknowledged=true") == [spike.pk]
    assert ids("?acknowledged=false&severity=3") == [media.pk]
    row = client.get(RISKS + "?acknowledged=true").json()["results"][0]
    assert row["acknowledged_by"] == "senior" and row["acknowledged_at"]


@pytest.mark.parametrize("query", ["?kind=nonsense", "?severity=9", "?severity=x"])
def test_bad_filters_are_400(api_as, supervisor, query):
    response = api_as(supervisor).get(RISKS + query)
    assert response.status_code == 400


def test_risk_list_queries_are_constant(
    api_as, supervisor, customer, channel, team_a, django_assert_max_num_queries
):
    client = api_as(supervisor)
    raise_alert(make_ticket(customer=customer, channel=channel, team=team_a))
    with CaptureQueriesContext(connection) as one:
        client.get(RISKS)
    for _ in range(5):
        raise_alert(make_ticket(customer=customer, channel=channel, team=team_a))
    # The same customer five more times: repeat-contact alerts as well.
    assert RiskAlert.objects.count() == 11
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(client.get(RISKS).json()["results"]) == 11


# --- acknowledging ---------------------------------------------------------------------------------


def test_a_lead_acknowledges_an_alert_once(api_as, senior, supervisor, ticket):
    alert = raise_alert(ticket)
    response = api_as(senior).post(acknowledge_url(alert.pk))
    assert response.status_code == 200, response.content
    assert response.json()["acknowledged_by"] == "senior"
    alert.refresh_from_db()
    assert alert.acknowledged_by == senior and alert.acknowledged_at is not None
    again = api_as(supervisor).post(acknowledge_url(alert.pk))
    assert again.status_code == 409
    alert.refresh_from_db()
    assert alert.acknowledged_by == senior


def test_acknowledge_refusals(api_as, agent, logistics, other_lead, senior, ticket):
    alert = raise_alert(ticket)  # team A's ticket
    assert api_as(agent).post(acknowledge_url(alert.pk)).status_code == 403
    assert api_as(logistics).post(acknowledge_url(alert.pk)).status_code == 403
    assert api_as(other_lead).post(acknowledge_url(alert.pk)).status_code == 404
    assert api_as(senior).post(acknowledge_url(999999)).status_code == 404
    assert APIClient().post(acknowledge_url(alert.pk)).status_code == 401
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
