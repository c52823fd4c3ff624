"""Hostile text in every free-text field shows as text in Chromium, never as markup.

The CSP would block an injected script anyway, so the test checks escaping itself:
the payload is visible as literal text and no element it describes exists in the DOM.
"""

import pytest

from complaints import services
from tests.conftest import drive
from tests.factories import CustomerFactory, make_ticket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

IMG = '<img src=x data-xss="{field}" onerror=alert(1)>'


def payload(field):
    return IMG.format(field=field)


def test_hostile_text_is_escaped_everywhere(
    page, live_server, agent, senior, logistics, channel, team_a
):
    customer = CustomerFactory(name=payload("customer"), phone="+8613800009999")
    ticket = make_ticket(
        customer=customer,
        channel=channel,
        team=team_a,
        subject=payload("subject"),
        body=payload("body"),
        order_no="SO1",
    )
    drive(ticket, agent, "in_progress")
    services.ticket_reply(ticket=ticket.number, actor=agent, body=payload("reply"))
    services.ticket_reply(ticket=ticket.number, actor=agent, body=payload("note"), internal=True)
    services.compensation_grant(
        ticket=ticket.number, actor=agent, kind="coupon", amount="5", reason=payload("reason")
    )
    services.compensation_grant(
        ticket=ticket.number,
        actor=agent,
        kind="cash",
        amount="50",
        reason=payload("request"),
        request=True,
    )
    (task,) = services.task_open(
        ticket=ticket.number,
        actor=agent,
        specs=[services.TaskSpec(department="logistics", responsibility=payload("duty"))],
        instruction=payload("instruction"),
    )
    services.task_note(task=task.pk, actor=logistics, body=payload("progress"))

    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    def visit_as(user, path, fields):
        user.set_password("xss-pass-1")
        user.save()
        page.context.clear_cookies()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", "xss-pass-1")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.locator("[data-xss]").count() == 0, path
        text = page.locator("body").inner_text()
        for field in fields:
            assert payload(field) in text, (path, field)

    visit_as(
        agent,
        f"/tickets/{ticket.number}/",
        ["subject", "body", "customer", "reply", "note", "reason", "request", "duty"],
    )
    visit_as(agent, "/?tab=open", ["customer"])
    visit_as(agent, f"/customers/{customer.pk}/", ["customer"])
    visit_as(senior, "/approvals/", ["customer", "request"])
    visit_as(
        logistics, f"/tasks/{task.pk}/", ["duty", "instruction", "progress", "customer", "body"]
    )
    visit_as(logistics, "/tasks/", ["duty"])
    assert dialogs == []
