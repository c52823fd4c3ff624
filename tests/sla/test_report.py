"""The SLA report: rates per stage and breaches by team and category, aggregates only."""

import datetime as dt

from django.urls import reverse

from sla import selectors
from tests.conftest import drive
from tests.factories import make_ticket
from tests.sla.conftest import T0
from tests.sla.test_clocks import respond

H = dt.timedelta(hours=1)
URL = reverse("sla:report")


def test_rates_and_breaches(clock_at, agent, senior, customer, channel, team_a, team_b):
    on_time = make_ticket(customer=customer, channel=channel, team=team_a)
    late = make_ticket(customer=customer, channel=channel, team=team_a)
    make_ticket(customer=customer, channel=channel, team=team_b)  # unclassified, overdue
    drive(on_time, agent, "assigned")
    respond(on_time, agent)
    clock_at.shift(5 * H)
    drive(late, agent, "assigned")  # assessment on time (24 h), first response overdue
    report = selectors.sla_report(T0 - H, T0 + H)
    rates = {s.stage: s for s in report.stages}
    assert report.tickets == 3
    first = rates["first_response"]
    assert (first.on_time, first.late, first.pending) == (1, 2, 0)
    assert round(first.rate, 1) == 33.3
    assessment = rates["assessment"]
    assert (assessment.on_time, assessment.late, assessment.pending) == (2, 0, 1)
    assert rates["closure"].rate is None  # nothing decided yet
    teams = {r["team"]: r for r in report.by_team}
    assert teams["客服一组"]["breaches"] == 1 and teams["客服二组"]["breaches"] == 1
    categories = {r["category"]: r["breaches"] for r in report.by_category}
    assert categories == {"物流配送": 1, None: 1}


def test_outside_the_range_is_not_counted(clock_at, agent, ticket):
    assert selectors.sla_report(T0 + H, T0 + 2 * H).tickets == 0


def test_report_page_for_leads(
    clock_at, login, senior, agent, ticket, django_assert_max_num_queries
):
    clock_at.shift(5 * H)
    client = login(senior)
    with django_assert_max_num_queries(9):
        response = client.get(URL, {"date_from": "2026-11-01", "date_to": "2026-11-30"})
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="rate-first_response"' in body and "0.0%" in body
    assert "客服一组" in body
    assert login(senior).get(URL).status_code == 200  # default range: the last 30 days


def test_report_refuses_agents_and_bad_ranges(login, agent, senior):
    assert login(agent).get(URL).status_code == 403
    client = login(senior)
    response = client.get(URL, {"date_from": "2026-11-30", "date_to": "2026-11-01"})
    assert response.status_code == 400
    assert "must not be after" in response.content.decode()
    assert client.get(URL, {"date_from": "nonsense", "date_to": "x"}).status_code == 400
    response = client.get(URL, {"date_from": "2020-01-01", "date_to": "2026-01-01"})
    assert response.status_code == 400
