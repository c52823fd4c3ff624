"""An agent works a fresh ticket in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from complaints.models import Status, Ticket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def log_in(page, live_server, username, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_agent_opens_ticket_from_queue_classifies_and_sees_timeline(
    page, live_server, agent, ticket
):
    agent.set_password("agent-pass-1")
    agent.save()
    log_in(page, live_server, "agent", "agent-pass-1")

    page.goto(f"{live_server.url}/?tab=team")
    page.get_by_role("link", name=ticket.number).click()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket.number}/$"))
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator("li")).to_have_count(1)

    page.locator('details[data-action="classify"] summary').click()
    form = page.locator('details[data-action="classify"] form')
    # A refusal first: no category chosen.
    form.locator("button[type=submit]").click()
    expect(form.locator(".error").first).to_be_visible()
    assert Ticket.objects.get(pk=ticket.pk).status == Status.RECEIVED

    form = page.locator('details[data-action="classify"] form')
    form.locator("select[name=classify-category]").select_option(label="售后服务/安装延误")
    form.locator("select[name=classify-amount_level]").select_option(value="2")
    form.locator("select[name=classify-impact]").select_option(value="1")
    form.locator("select[name=classify-urgency]").select_option(value="2")
    form.locator("button[type=submit]").click()

    expect(page.get_by_test_id("ticket-category")).to_have_text("售后服务/安装延误")
    expect(timeline.locator("li")).to_have_count(2)
    expect(timeline.locator("li").first).to_contain_text("售后服务/安装延误")
    assert Ticket.objects.get(pk=ticket.pk).status == Status.CLASSIFIED
