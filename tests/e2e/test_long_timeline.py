"""A long-running ticket: the newest events first, earlier ones a click away."""

import pytest
from playwright.sync_api import expect

from complaints import services
from complaints.views import TIMELINE_PAGE
from tests.conftest import drive

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_earlier_events_load_under_the_newest(open_as, live_server, agent, ticket):
    drive(ticket, agent, "in_progress")
    for i in range(60):
        services.ticket_reply(ticket=ticket.number, actor=agent, body=f"进展{i:02d}", internal=True)
    page = open_as(agent)
    page.goto(f"{live_server.url}/tickets/{ticket.number}/")
    items = page.get_by_test_id("timeline").locator("li.ev")
    expect(items).to_have_count(TIMELINE_PAGE)
    expect(items.first).to_contain_text("进展59")
    page.get_by_test_id("timeline-earlier").click()
    expect(items).to_have_count(65)  # 60 notes + 5 lifecycle events, in order
    expect(items.last).to_contain_text("快递三天没到")  # the complaint itself, received first
    expect(page.get_by_test_id("timeline-earlier")).to_have_count(0)
