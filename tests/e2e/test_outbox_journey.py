"""The agent sees a reply's delivery state change on the timeline, without reloading."""

import pytest
from playwright.sync_api import expect

from channels import outbox
from channels.models import ChannelKind, OutboundMessage
from complaints.models import CustomerIdentity
from tests.channels.receiver import start_receiver
from tests.conftest import drive
from tests.factories import ChannelFactory, CustomerFactory, make_ticket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def receiver():
    found, server = start_receiver()
    yield found
    server.shutdown()
    server.server_close()


def test_reply_delivery_state_moves_from_queued_to_sent_to_delivered(
    open_as, live_server, agent, team_a, receiver, settings
):
    settings.CLOSELOOP_DELIVERY_POLL_SECONDS = 1
    channel = ChannelFactory(code="app-e2e", kind=ChannelKind.APP, callback_url=receiver.url)
    customer = CustomerFactory(name="李先生")
    CustomerIdentity.objects.create(customer=customer, kind="app_user_id", external_key="u-e2e")
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(ticket, agent, "in_progress")
    outbox.deliver_due()

    page = open_as(agent)
    page.goto(f"{live_server.url}/tickets/{ticket.number}/")
    page.fill("form.reply textarea[name=body]", "您好，补发的商品明天送达，快递单号 SF1001。")
    page.click("form.reply button[type=submit]")
    badge = page.get_by_test_id("delivery-reply").first
    expect(badge).to_have_attribute("data-state", "queued")

    # The q2 worker sends it: the badge follows by itself.
    assert outbox.deliver_due() == 1
    expect(badge).to_have_attribute("data-state", "sent", timeout=8000)

    message = OutboundMessage.objects.get(ticket=ticket, kind="reply")
    outbox.receipt_record(channel=channel, message_id=message.message_id, state="delivered")
    expect(badge).to_have_attribute("data-state", "delivered", timeout=8000)
    # Final states stop the polling: no more requests for this badge.
    expect(badge).not_to_have_attribute("hx-trigger", "every 1s")


def test_a_dead_reply_shows_its_error_and_retry_now_sends_it(
    open_as, live_server, agent, team_a, receiver, settings
):
    settings.CLOSELOOP_DELIVERY_POLL_SECONDS = 1
    channel = ChannelFactory(code="app-e2e2", kind=ChannelKind.APP, callback_url=receiver.url)
    ticket = make_ticket(channel=channel, team=team_a)
    drive(ticket, agent, "in_progress")
    outbox.deliver_due()
    receiver.plan = [400]

    page = open_as(agent)
    page.goto(f"{live_server.url}/tickets/{ticket.number}/")
    page.fill("form.reply textarea[name=body]", "您好，我们已安排补发。")
    page.click("form.reply button[type=submit]")
    badge = page.get_by_test_id("delivery-reply").first
    outbox.deliver_due()
    expect(badge).to_have_attribute("data-state", "dead", timeout=8000)
    expect(badge).to_contain_text("400")

    badge.locator("button").click()
    expect(badge).to_have_attribute("data-state", "queued")
    outbox.deliver_due()
    expect(badge).to_have_attribute("data-state", "sent", timeout=8000)
