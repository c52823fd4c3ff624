"""Journeys in Chromium across roles: an admin's script edit reaches the agent's reply box;
a customer complains on the web, checks the status, and answers the survey."""

import os
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from complaints import services
from complaints.models import Category, Status, Ticket
from kb import services as kb_services
from kb.models import ScriptKind, SopTemplate
from kb.seeds import ensure_kb_reference_data
from tests.conftest import drive

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def snap(page, name):
    """Screenshots for a human look when CLOSELOOP_SHOTS names a folder (never committed)."""
    folder = os.environ.get("CLOSELOOP_SHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"trust-{name}.png"), full_page=True)


def local(live_server, url: str) -> str:
    """A link the portal prints with CLOSELOOP_SITE_URL, on the live test server."""
    parts = urlsplit(url)
    return f"{live_server.url}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def test_admin_edits_a_reply_script_and_the_agent_gets_it_in_the_reply_box(
    browser, browser_context_args, live_server, open_as, admin_user, agent, ticket
):
    ensure_kb_reference_data()
    template = kb_services.sop_template_create(
        actor=admin_user,
        name="物流投诉 SOP",
        category=Category.objects.get(code="logistics"),
        steps=[("核实物流轨迹", 2)],
        scripts={ScriptKind.APOLOGY: "{customer_name}，抱歉包裹延误了。"},
    )
    drive(ticket, agent, "classified")  # category: logistics

    admin_user.set_password("admin-pass-1")
    admin_user.save()
    context = browser.new_context(**browser_context_args)
    admin = context.new_page()
    admin.goto(f"{live_server.url}/admin/login/?next=/admin/")
    admin.fill("input[name=username]", admin_user.username)
    admin.fill("input[name=password]", "admin-pass-1")
    admin.click("input[type=submit]")
    expect(admin).to_have_url(re.compile(r"/admin/$"))
    admin.goto(f"{live_server.url}/admin/kb/soptemplate/{template.pk}/change/")
    script = admin.locator("textarea[name$='-body']").first
    expect(script).to_have_value("{customer_name}，抱歉包裹延误了。")
    script.fill(
        "{customer_name}，您好：包裹延误是我们的责任，今天已为您加急补发，单号 {ticket_number}。"
    )
    admin.locator("input[name=_save]").click()
    expect(admin.locator(".messagelist .success")).to_be_visible()
    snap(admin, "admin-script")
    context.close()
    assert SopTemplate.objects.get(pk=template.pk).scripts.get().body.startswith("{customer_name}")

    page = open_as(agent)
    page.goto(f"{live_server.url}/tickets/{ticket.number}/")
    picker = page.get_by_test_id("kb-script-select")
    picker.select_option(value=ScriptKind.APOLOGY)
    reply = page.locator("form.reply textarea[name=body]")
    expect(reply).to_have_value(
        f"{ticket.customer.name}，您好：包裹延误是我们的责任，今天已为您加急补发，单号 {ticket.number}。"
    )
    snap(page, "agent-reply-script")


def complain(page, live_server, *, name, phone, body):
    page.goto(f"{live_server.url}/complain/")
    page.fill("input[name=name]", name)
    page.fill("input[name=phone]", phone)
    page.fill("textarea[name=body]", body)
    page.locator("form button.primary").click()
    received = page.get_by_test_id("complaint-received")
    expect(received).to_be_visible()
    number = received.locator("b").first.inner_text().strip()
    return Ticket.objects.get(number=number)


def answer_survey(browser, browser_context_args, live_server, ticket, overall: int, comment=""):
    """The customer opens the link from the message in a browser of their own (no login)."""
    survey = ticket.surveys.order_by("-id").first()
    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    page.goto(local(live_server, services.survey_url(survey)))
    for dimension in page.locator("fieldset.scale:not(.nps)").all():
        dimension.locator("input[type=radio]").last.check()
    page.locator(f"fieldset.nps input[value='{overall}']").check()
    if comment:
        page.fill("textarea[name=comment]", comment)
    page.get_by_test_id("survey-submit").click()
    expect(page.get_by_test_id("survey-thanks")).to_be_visible()
    snap(page, f"survey-{overall}")
    context.close()


def test_customer_complains_checks_status_and_answers_the_survey(
    browser, browser_context_args, live_server, page, supervisor, reference_data, open_as
):
    ticket = complain(
        page, live_server, name="李女士", phone="13912345678", body="网上买的冰箱送来时门是坏的。"
    )
    assert ticket.status == Status.RECEIVED
    snap(page, "complaint-done")

    # The status page: the right last four digits show the status, wrong ones nothing.
    status_link = page.get_by_test_id("complaint-received").locator("xpath=..").locator("a")
    page.goto(local(live_server, status_link.first.get_attribute("href")))
    page.fill("input[name=phone_last4]", "5678")
    page.locator("form button.primary").click()
    result = page.get_by_test_id("public-result")
    expect(result).to_contain_text(ticket.number)
    expect(result).to_contain_text("状态已接收")
    snap(page, "status-right")
    page.goto(f"{live_server.url}/status/?number={ticket.number}&phone_last4=1234")
    expect(page.get_by_test_id("public-result")).to_have_count(0)
    expect(page.get_by_role("alert")).to_be_visible()
    assert "139****5678" not in page.content()

    # Resolved by staff (services): the survey link goes out; a 9 closes the loop.
    drive(ticket, supervisor, "resolved")
    answer_survey(browser, browser_context_args, live_server, ticket, 9, "处理很快，谢谢")
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED and ticket.escalation_level == 0
    assert ticket.surveys.get().overall == 9

    # The answer is the follow-up: staff record it without a call note, then close.
    staff = open_as(supervisor)
    staff.goto(f"{live_server.url}/tickets/{ticket.number}/")
    staff.locator('details[data-action="follow_up"] summary').click()
    staff.locator('details[data-action="follow_up"] form button[type=submit]').click()
    expect(staff.get_by_test_id("ticket-status")).to_have_text("已回访")
    staff.locator('details[data-action="close"] summary').click()
    staff.locator('details[data-action="close"] form button[type=submit]').click()
    expect(staff.get_by_test_id("ticket-status")).to_have_text("已关闭")
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED and "9/10" in ticket.followup_note

    # Another complaint scored 4: reopened and escalated to the team lead.
    other = complain(
        page, live_server, name="李女士", phone="13912345678", body="换货的洗衣机也漏水。"
    )
    drive(other, supervisor, "resolved")
    answer_survey(browser, browser_context_args, live_server, other, 4, "问题根本没解决")
    other.refresh_from_db()
    assert other.status == Status.IN_PROGRESS
    assert other.escalation_level >= 1
    page.goto(f"{live_server.url}/status/?number={other.number}&phone_last4=5678")
    expect(page.get_by_test_id("public-result")).to_contain_text("状态处理中")
