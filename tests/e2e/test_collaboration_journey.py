"""Compensation within and above authority, and a cross-department task, in Chromium."""

import os
import re

import pytest
from playwright.sync_api import expect

from complaints.models import CollaborationTask, CompensationState, EventKind, TaskState
from tests.conftest import drive

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def snap(page, name):
    """Screenshots for a human look when CLOSELOOP_SHOTS names a folder (never committed)."""
    folder = os.environ.get("CLOSELOOP_SHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def compensate(page, amount, *, reason="快递延误三天，致歉补偿"):
    panel = page.get_by_test_id("compensation")
    if not panel.locator("details[open]").count():
        panel.locator("summary").click()
    panel.locator("input[name=amount]").fill(amount)
    panel.locator("textarea[name=reason]").fill(reason)
    return panel


def test_agent_grants_is_capped_requests_and_senior_approves(
    open_as, live_server, agent, senior, ticket
):
    drive(ticket, agent, "in_progress")
    url = f"{live_server.url}/tickets/{ticket.number}/"
    page = open_as(agent)
    page.goto(url)

    panel = compensate(page, "10")
    panel.locator("button[value=grant]").click()
    expect(page.get_by_test_id("compensation-total")).to_have_text("¥10.00")

    panel = compensate(page, "5")
    panel.locator("button[value=grant]").click()
    refusal = page.get_by_test_id("cap-refusal")
    expect(refusal).to_contain_text("¥15.00")
    expect(refusal).to_contain_text("¥10.00")
    snap(page, "compensation-refused")
    assert ticket.compensations.count() == 1
    page.get_by_test_id("request-approval").click()
    expect(page.get_by_test_id("compensation-row")).to_have_count(2)
    expect(page.get_by_test_id("compensation-total")).to_have_text("¥10.00")

    lead = open_as(senior)
    expect(lead.get_by_test_id("badge-approvals")).to_have_text("1")
    lead.goto(f"{live_server.url}/approvals/")
    row = lead.get_by_test_id("approval-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(ticket.number)
    snap(lead, "approvals")
    row.get_by_test_id("approve").click()
    expect(lead.get_by_test_id("approval-row")).to_have_count(0)

    page.goto(url)
    expect(page.get_by_test_id("compensation-total")).to_have_text("¥15.00")
    timeline = page.get_by_test_id("timeline")
    for kind in ("compensation_approved", "compensation_requested", "compensation_granted"):
        expect(timeline.locator(f"li.ev-{kind}")).to_have_count(1)
    expect(page.get_by_test_id("badge-notifications")).to_have_text("1")
    expect(page.get_by_test_id("customer-compensation")).to_have_text("¥15.00")
    snap(page, "compensation-approved")
    states = sorted(ticket.compensations.values_list("state", flat=True))
    assert states == [CompensationState.APPROVED, CompensationState.GRANTED]


def test_agent_opens_tasks_logistics_claims_and_completes(
    open_as, live_server, agent, logistics, ticket
):
    drive(ticket, agent, "in_progress")
    url = f"{live_server.url}/tickets/{ticket.number}/"
    page = open_as(agent)
    page.goto(url)
    panel = page.get_by_test_id("tasks")
    panel.locator("summary").click()
    panel.locator("input[name=dept_logistics]").check()
    panel.locator("input[name=resp_logistics]").fill("核实物流轨迹并补发")
    panel.locator("input[name=dept_installation]").check()
    panel.locator("input[name=resp_installation]").fill("预约上门安装")
    panel.locator("textarea[name=instruction]").fill(
        "客户订单 SO20261122001 延误三天，请 24 小时内处理"
    )
    panel.locator("button[type=submit]").click()
    expect(page.get_by_test_id("task-row")).to_have_count(2)
    snap(page, "tasks-opened")

    dept = open_as(logistics)
    expect(dept).to_have_url(re.compile(r"/tasks/$"))
    board = dept.get_by_test_id("board-row")
    expect(board).to_have_count(1)  # only the logistics task, not installation's
    expect(board).to_contain_text("核实物流轨迹并补发")
    snap(dept, "task-board")
    board.get_by_test_id("claim").click()
    expect(dept).to_have_url(re.compile(r"tab=mine"))
    dept.get_by_test_id("board-row").get_by_role("link", name="核实物流轨迹并补发").click()
    expect(dept.get_by_test_id("customer-phone")).to_have_text("138****1234")
    form = dept.locator('details[data-action="complete"] form')
    form.locator("textarea[name=text]").fill("已补发，顺丰 SF1234567890，明日送达")
    form.locator("button[type=submit]").click()
    expect(dept.get_by_test_id("task-state")).to_have_text(re.compile(".+"))
    snap(dept, "task-done")
    task = CollaborationTask.objects.get(ticket=ticket, department__code="logistics")
    assert (task.state, task.assignee) == (TaskState.DONE, logistics)

    page.goto(url)
    logistics_row = page.locator('[data-testid=task-row][data-department="logistics"]')
    expect(logistics_row.get_by_test_id("task-result")).to_contain_text("SF1234567890")
    expect(
        page.get_by_test_id("timeline").locator(f"li.ev-{EventKind.TASK_COMPLETED}")
    ).to_have_count(1)
    expect(page.get_by_test_id("badge-notifications")).to_have_text("1")
    snap(page, "task-result-on-ticket")

    # The other department's task and any other ticket stay out of reach.
    other = CollaborationTask.objects.get(ticket=ticket, department__code="installation")
    assert dept.goto(f"{live_server.url}/tasks/{other.pk}/").status == 404
