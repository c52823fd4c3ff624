"""Two (or four) outbox workers at once on PostgreSQL: each message is sent exactly once."""

from collections import Counter

import pytest

from channels import outbox
from channels.models import ChannelKind, MessageState, OutboundMessage
from complaints import services
from complaints.models import CustomerIdentity
from tests.channels.receiver import start_receiver
from tests.complaints.test_concurrency import run_concurrently
from tests.conftest import drive
from tests.factories import ChannelFactory, CustomerFactory, make_ticket

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def receiver():
    found, server = start_receiver()
    yield found
    server.shutdown()
    server.server_close()


def test_concurrent_workers_never_send_a_message_twice(receiver, team_a, agent):
    channel = ChannelFactory(code="app-race", kind=ChannelKind.APP, callback_url=receiver.url)
    customer = CustomerFactory()
    CustomerIdentity.objects.create(customer=customer, kind="app_user_id", external_key="u-race")
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(ticket, agent, "in_progress")
    # Queued without a worker: the test's commits would deliver them at once (on_commit),
    # so the rows are written as the reply service writes them, then left for the race.
    OutboundMessage.objects.all().delete()
    for i in range(60):
        outbox.message_queue(ticket=ticket, kind="reply", body=f"第{i}条回复")
    receiver.received.clear()

    results = run_concurrently(lambda i: outbox.deliver_due(), 4)

    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 60  # every message delivered by exactly one worker
    sent = Counter(receiver.idempotency_keys())
    assert len(sent) == 60 and set(sent.values()) == {1}
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {MessageState.SENT}
    assert set(OutboundMessage.objects.values_list("attempts", flat=True)) == {1}


def test_replies_written_concurrently_each_get_one_message(receiver, team_a, agent, agent2):
    channel = ChannelFactory(code="app-race2", kind=ChannelKind.APP, callback_url=receiver.url)
    ticket = make_ticket(channel=channel, team=team_a)
    drive(ticket, agent, "in_progress")
    before = OutboundMessage.objects.count()
    results = run_concurrently(
        lambda i: services.ticket_reply(ticket=ticket.number, actor=agent, body=f"并发回复{i}"), 8
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert OutboundMessage.objects.count() == before + 8
