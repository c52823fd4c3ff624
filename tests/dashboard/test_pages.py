"""The dashboard page and its xlsx export: who sees them, what they show, how many queries."""

import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from dashboard import rollups
from tests.dashboard.conftest import FIRST, LAST

URL = reverse("dashboard:index")
EXPORT = reverse("dashboard:export")
RANGE = {"date_from": FIRST.isoformat(), "date_to": LAST.isoformat()}


@pytest.fixture
def rolled_up(world):
    rollups.refresh(first=FIRST.replace(year=2025), last=LAST)
    return world


def test_leads_see_the_figures_with_bounded_queries(
    rolled_up, login, senior, django_assert_max_num_queries
):
    client = login(senior)
    # Session and user; 3 lookups; 1 rollup state; up to 11 rollup reads (whole months from
    # the month tables, the days at the ends from the day tables); 5 live queries for today.
    with django_assert_max_num_queries(22):
        response = client.get(URL, RANGE)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="dashboard-data" type="application/json"' in body
    assert "vendor/chartjs/chart.umd.min.js" in body and "js/dashboard.js" in body
    assert "<script>" not in body  # CSP: no inline script, only json_script data
    board = response.context["board"]
    assert board.received == 6 and round(board.nps, 1) == 33.3
    assert 'data-testid="sla-first_response"' in body and "50.0%" in body
    assert "¥145.50" in body
    chart = response.context["chart_data"]
    assert chart["volume"]["series"][0]["data"] == [2, 1, 2, 1]
    assert chart["pareto"]["cumulative"] == [50.0, 83.3, 100.0]


def test_same_queries_for_a_whole_year(rolled_up, login, supervisor, django_assert_max_num_queries):
    client = login(supervisor)
    with django_assert_max_num_queries(22):
        response = client.get(URL, {"date_from": "2025-11-24", "date_to": "2026-11-23"})
    assert response.status_code == 200
    assert response.context["board"].received == 7  # t7 (2026-11-19) is in this range


def test_default_range_and_nav_link(rolled_up, login, senior, agent):
    response = login(senior).get(URL)
    assert response.status_code == 200
    assert response.context["board"].filters.last == LAST
    assert f'href="{URL}"' in response.content.decode()
    assert f'href="{URL}"' not in login(agent).get(reverse("workspace:queue")).content.decode()


def test_agents_and_department_staff_are_refused(world, login, agent, logistics):
    assert login(agent).get(URL).status_code == 403
    assert login(logistics).get(URL).status_code == 403
    assert login(agent).get(EXPORT).status_code == 403


@pytest.mark.parametrize(
    "params, message",
    [
        ({"date_from": "2026-11-23", "date_to": "2026-11-01"}, "must not be after"),
        ({"date_from": "2024-01-01", "date_to": "2026-11-23"}, "at most one year"),
        ({"date_from": "2026-11-01", "date_to": "2026-12-31"}, "cannot be in the future"),
        ({"date_from": "nonsense", "date_to": "x"}, "Enter a valid date"),
        ({"team": "999999"}, "Select a valid choice"),
        ({"category": "abc"}, "Select a valid choice"),
    ],
)
def test_bad_filters_are_a_400(world, login, senior, params, message):
    response = login(senior).get(URL, params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert login(senior).get(EXPORT, params).status_code == 400


def test_export_holds_the_same_figures(rolled_up, login, senior):
    response = login(senior).get(EXPORT, RANGE)
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('-2026-11-20-2026-11-23.xlsx"')
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == [
        "Summary",
        "Volume",
        "Channels",
        "Categories",
        "Satisfaction",
        "Departments",
        "Compensation",
    ]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Tickets received"] == 6
    assert summary["Repeat-complaint rate %"] == 33.33
    assert summary["NPS"] == 33.33
    assert summary["First response %"] == 50.0
    volume = list(book["Volume"].iter_rows(min_row=2, values_only=True))
    assert volume == [
        ("2026-11-20", 2, 0),
        ("2026-11-21", 1, 1),
        ("2026-11-22", 2, 0),
        ("2026-11-23", 1, 1),
    ]
    comp = list(book["Compensation"].iter_rows(min_row=2, values_only=True))
    assert comp == [("Coupon", 2, 15.5), ("Refund", 2, 130.0)]
