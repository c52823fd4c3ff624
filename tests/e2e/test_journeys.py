"""Whole journeys in Chromium, one per user kind (issue: trust, browser journeys)."""

import re

import pytest
from playwright.sync_api import expect

from complaints import services
from complaints.models import CollaborationTask, Status, Ticket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def open_action(page, name):
    details = page.locator(f'details[data-action="{name}"]')
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    return details.locator("form")


def test_agent_journey_from_queue_to_resolution(open_as, live_server, agent, logistics, ticket):
    page = open_as(agent)
    page.goto(f"{live_server.url}/?tab=team")
    page.get_by_role("link", name=ticket.number).click()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket.number}/$"))

    form = open_action(page, "classify")
    form.locator("select[name=classify-category]").select_option(label="物流配送")
    form.locator("select[name=classify-amount_level]").select_option(value="1")
    form.locator("select[name=classify-impact]").select_option(value="1")
    form.locator("select[name=classify-urgency]").select_option(value="2")
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("ticket-category")).to_have_text("物流配送")

    open_action(page, "assign").locator("button[type=submit]").click()
    expect(page.get_by_test_id("ticket-status")).to_have_text("已分派")

    # The first response comes pre-filled from the script: number, deadline, status link.
    form = open_action(page, "first_response")
    script = form.locator("textarea[name=first_response-message]").input_value()
    assert ticket.number in script and "/status/" in script
    form.locator("button[type=submit]").click()
    expect(page.locator('details[data-action="start"]')).to_be_visible()
    open_action(page, "start").locator("button[type=submit]").click()
    expect(page.get_by_test_id("ticket-status")).to_have_text("处理中")

    panel = page.get_by_test_id("compensation")
    panel.locator("summary").click()
    panel.locator("input[name=amount]").fill("10")
    panel.locator("textarea[name=reason]").fill("物流延误致歉券")
    panel.locator("button[value=grant]").click()
    expect(page.get_by_test_id("compensation-total")).to_have_text("¥10.00")

    tasks = page.get_by_test_id("tasks")
    tasks.locator("summary").click()
    tasks.locator("input[name=dept_logistics]").check()
    tasks.locator("input[name=resp_logistics]").fill("核实轨迹并补发")
    tasks.locator("textarea[name=instruction]").fill("客户三天未收到货，请补发")
    tasks.locator("button[type=submit]").click()
    expect(page.get_by_test_id("task-row")).to_have_count(1)

    # While the task is open the ticket cannot be resolved; the logistics user finishes it.
    task = CollaborationTask.objects.get(ticket=ticket)
    services.task_complete(task=task.pk, actor=logistics, result="已补发 SF100")
    page.reload()
    form = open_action(page, "resolve")
    form.locator("textarea[name=resolve-solution]").fill("补发商品并发放 10 元优惠券")
    form.locator("input[name=resolve-responsible_person]").fill("物流部 周强")
    form.locator("input[name=resolve-evidence_ref]").fill("顺丰单号 SF100")
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("ticket-status")).to_have_text("已解决")
    assert Ticket.objects.get(pk=ticket.pk).status == Status.RESOLVED
