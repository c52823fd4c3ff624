"""Intake under concurrent retries on PostgreSQL: real threads, real unique indexes."""

import json
import time

import pytest
from django.core.cache import cache
from django.test import Client

from channels import services
from channels.api import sign
from channels.models import IdentityConflict
from complaints.models import Contact, Customer, CustomerIdentity, Ticket
from tests.complaints.test_concurrency import run_concurrently
from tests.factories import ChannelFactory

# serialized_rollback: the flush after a plain transactional test re-creates content
# types, which breaks the serialized_rollback tests that run after this folder.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def _fresh_rate_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def wechat(db):
    return ChannelFactory(code="wechat-main", kind="wechat")


def body(external_id):
    return {
        "external_id": external_id,
        "customer": {"name": "王女士", "phone": "13800001234", "wechat_openid": "o6_abc"},
        "subject": "快递三天没到",
        "body": "买的东西快递三天没有送到。",
        "order_no": "SO20261122001",
    }


def signed_post(channel, data):
    raw = json.dumps(data, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    return Client().post(
        "/api/v1/intake/",
        data=raw,
        content_type="application/json",
        HTTP_X_CLOSELOOP_KEY=channel.key,
        HTTP_X_CLOSELOOP_TIMESTAMP=ts,
        HTTP_X_CLOSELOOP_SIGNATURE=sign(channel.secret, ts, raw),
    )


def test_twenty_concurrent_retries_of_one_contact_make_one_ticket(wechat):
    responses = run_concurrently(lambda i: signed_post(wechat, body("wx-msg-1")), 20)
    assert all(not isinstance(r, Exception) for r in responses), responses
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 19 + [201], [r.content for r in responses]
    numbers = {r.json()["number"] for r in responses}
    assert len(numbers) == 1
    assert Ticket.objects.count() == 1 and Contact.objects.count() == 1
    assert Customer.objects.count() == 1
    assert Ticket.objects.get().contact_count == 1


def test_twenty_concurrent_contacts_of_a_new_customer_join_one_ticket(wechat):
    results = run_concurrently(
        lambda i: services.intake_submit(
            channel=wechat,
            external_id=f"wx-{i}",
            customer={"phone": "13800001234", "wechat_openid": "o6_abc"},
            body="快递没到",
            order_no="SO20261122001",
        ),
        20,
    )
    assert all(isinstance(r, services.IntakeResult) for r in results), results
    assert sum(r.created for r in results) == 1
    assert Customer.objects.count() == 1
    assert CustomerIdentity.objects.count() == 2
    assert not IdentityConflict.objects.exists()
    ticket = Ticket.objects.get()
    assert ticket.contact_count == 20 == ticket.contacts.count()
