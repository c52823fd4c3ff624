"""The management dashboard in Chromium: every chart is drawn (non-empty canvas)."""

import os
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from complaints import services
from complaints.models import Survey
from dashboard import rollups
from tests.conftest import drive
from tests.factories import ChannelFactory, make_ticket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHARTS = ("volume", "channels", "sla", "pareto", "satisfaction", "compensation", "departments")

# True when the canvas has at least one painted (non-transparent) pixel.
PAINTED = """canvas => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) return true; }
  return false;
}"""


@pytest.fixture
def some_tickets(reference_data, agent, senior, customer, channel, team_a, logistics):
    """Six tickets today: two resolved with answered surveys, compensation, two tasks."""
    app = ChannelFactory(code="app", name="App")
    for index in range(6):
        ticket = make_ticket(customer=customer, channel=app if index % 3 else channel, team=team_a)
        if index < 2:
            drive(ticket, agent, "resolved")
            survey = ticket.surveys.get()
            link = services.survey_url(survey).rsplit("/survey/", 1)[1].strip("/")
            scores = dict.fromkeys(Survey.DIMENSIONS, 4 + index)
            services.survey_answer(link=link, answers={**scores, "overall": 8 + index})
        elif index < 4:
            drive(ticket, agent, "in_progress")
            services.compensation_grant(
                ticket=ticket.number, actor=agent, kind="coupon", amount=Decimal("5"), reason="致歉"
            )
            (task,) = services.task_open(
                ticket=ticket.number,
                actor=agent,
                specs=[services.TaskSpec(department="logistics", responsibility="查件")],
                instruction="请核实物流",
            )
            services.task_claim(task=task, actor=logistics)
    rollups.refresh_recent(2)


def test_charts_render_beside_their_tables(open_as, live_server, senior, some_tickets):
    page = open_as(senior)
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_test_id("dash-kpis")).to_be_visible()
    for name in CHARTS:
        canvas = page.locator(f'canvas[data-chart="{name}"]')
        expect(canvas).to_have_attribute("data-rendered", "true")
        assert canvas.evaluate(PAINTED), f"the {name} chart is blank"
    expect(page.get_by_test_id("dash-channels")).to_contain_text("App")
    shot = os.environ.get("CLOSELOOP_SCREENSHOT_DIR")
    if shot:
        page.screenshot(path=f"{shot}/dash-e2e.png", full_page=True)
