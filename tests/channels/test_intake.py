"""Signed intake API: signatures, replay window, idempotency, identity, repeats, limits."""

import datetime as dt
import json
import time

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from channels.api import sign
from channels.models import AttachmentLink, Channel, ChannelKind, IdentityConflict
from complaints.models import (
    Contact,
    Customer,
    CustomerIdentity,
    EventKind,
    Status,
    Ticket,
)
from tests.conftest import drive
from tests.factories import ChannelFactory, CustomerFactory, leaf_category

pytestmark = pytest.mark.django_db

URL = "/api/v1/intake/"


@pytest.fixture(autouse=True)
def _fresh_rate_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def wechat(db):
    return ChannelFactory(code="wechat-main", name="微信公众号", kind=ChannelKind.WECHAT)


@pytest.fixture
def app_channel(db):
    return ChannelFactory(code="app", name="App", kind=ChannelKind.APP)


@pytest.fixture
def hotline(db):
    return ChannelFactory(code="hotline", name="热线", kind=ChannelKind.HOTLINE)


def payload(external_id="msg-1", **overrides):
    data = {
        "external_id": external_id,
        "customer": {"name": "王女士", "phone": "13800001234", "wechat_openid": "o6_abc"},
        "subject": "快递三天没到",
        "body": "买的东西快递三天没有送到，客服电话也打不通，非常失望。",
        "order_no": "SO20261122001",
    }
    data.update(overrides)
    return data


def post(channel, data=None, *, raw=None, secret=None, ts=None, key=None, client=None, **headers):
    body = raw if raw is not None else json.dumps(data, ensure_ascii=False).encode()
    ts = str(int(time.time())) if ts is None else str(ts)
    signature = sign(secret or channel.secret, ts, body)
    return (client or Client()).post(
        URL,
        data=body,
        content_type="application/json",
        HTTP_X_CLOSELOOP_KEY=key or channel.key,
        HTTP_X_CLOSELOOP_TIMESTAMP=ts,
        HTTP_X_CLOSELOOP_SIGNATURE=signature,
        **headers,
    )


def nothing_written():
    return not (Ticket.objects.exists() or Contact.objects.exists() or Customer.objects.exists())


# --- the happy path -----------------------------------------------------------------


def test_signed_contact_opens_a_ticket(wechat, reference_data):
    response = post(
        wechat,
        payload(
            attachments=["https://img.example.com/a.jpg"],
            category_hint="logistics",
            occurred_at="2026-11-22T10:00:00+08:00",
        ),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    ticket = Ticket.objects.get()
    assert body == {
        "number": ticket.number,
        "status": "received",
        "created": True,
        "replayed": False,
        "status_url": f"http://127.0.0.1:8000/status/?number={ticket.number}",
        "repeat_of": None,
    }
    assert ticket.channel == wechat and ticket.order_no == "SO20261122001"
    assert ticket.category == leaf_category("logistics")
    assert ticket.customer.name == "王女士" and ticket.customer.phone == "+8613800001234"
    contact = ticket.contacts.get()
    assert contact.external_id == "msg-1" and contact.channel == wechat
    assert contact.occurred_at == dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)
    assert list(AttachmentLink.objects.values_list("url", flat=True)) == [
        "https://img.example.com/a.jpg"
    ]
    assert set(ticket.customer.identities.values_list("kind", "external_key")) == {
        ("phone", "+8613800001234"),
        ("wechat_openid", "o6_abc"),
    }
    assert ticket.events.filter(kind=EventKind.CREATED).count() == 1


def test_subject_defaults_to_the_start_of_the_body(wechat):
    response = post(wechat, payload(subject=""))
    assert response.status_code == 201
    assert Ticket.objects.get().subject.startswith("买的东西快递三天没有送到")


# --- signature and replay window ------------------------------------------------------


def test_wrong_signature_is_refused_and_writes_nothing(wechat):
    response = post(wechat, payload(), secret="not-the-secret")
    assert response.status_code == 401
    assert "signature" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Closeloop-HMAC")
    assert nothing_written()


def test_body_changed_after_signing_is_refused(wechat):
    body = json.dumps(payload()).encode()
    ts = str(int(time.time()))
    response = Client().post(
        URL,
        data=body.replace(b"SO20261122001", b"SO99999999999"),
        content_type="application/json",
        HTTP_X_CLOSELOOP_KEY=wechat.key,
        HTTP_X_CLOSELOOP_TIMESTAMP=ts,
        HTTP_X_CLOSELOOP_SIGNATURE=sign(wechat.secret, ts, body),
    )
    assert response.status_code == 401
    assert nothing_written()


def test_unknown_key_and_missing_headers_are_refused(wechat):
    assert post(wechat, payload(), key="ck_unknown").status_code == 401
    response = Client().post(URL, data=payload(), content_type="application/json")
    assert response.status_code == 401
    assert "X-Closeloop-Signature" in response.json()["detail"]
    assert nothing_written()


def test_inactive_channel_is_refused(wechat):
    Channel.objects.filter(pk=wechat.pk).update(is_active=False)
    wechat.refresh_from_db()
    assert post(wechat, payload()).status_code == 401
    assert nothing_written()


def test_rotated_secret_invalidates_the_old_one(wechat):
    from channels.services import channel_rotate_secret

    old_secret = wechat.secret
    channel_rotate_secret(channel=wechat)
    wechat.refresh_from_db()
    assert post(wechat, payload(), secret=old_secret).status_code == 401
    assert post(wechat, payload()).status_code == 201


@pytest.mark.parametrize(
    ("skew", "expected"),
    [(-301, 401), (-299, 201), (299, 201), (301, 401)],
)
def test_replay_window_is_five_minutes_either_way(wechat, skew, expected):
    with time_machine.travel(dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC), tick=False):
        now = int(time.time())
        response = post(wechat, payload(), ts=now + skew)
    assert response.status_code == expected, response.content


def test_an_old_signed_request_cannot_be_replayed_later(wechat):
    start = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        ts = int(time.time())
        assert post(wechat, payload(), ts=ts).status_code == 201
    with time_machine.travel(start + dt.timedelta(minutes=6), tick=False):
        assert post(wechat, payload("msg-2"), ts=ts).status_code == 401


def test_timestamp_must_be_unix_seconds(wechat):
    assert post(wechat, payload(), ts="2026-11-22T10:00").status_code == 401


# --- idempotency ------------------------------------------------------------------------


def test_same_external_id_again_returns_the_same_ticket_and_writes_nothing(wechat):
    first = post(wechat, payload())
    again = post(wechat, payload(body="重复发送的同一条消息"))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["number"] == first.json()["number"]
    assert again.json()["replayed"] is True and again.json()["created"] is True
    assert Ticket.objects.count() == 1 and Contact.objects.count() == 1
    assert Ticket.objects.get().contact_count == 1


def test_same_external_id_on_another_channel_is_another_contact(wechat, app_channel):
    post(wechat, payload())
    response = post(app_channel, payload())
    assert response.status_code == 200 and response.json()["created"] is False
    assert Contact.objects.count() == 2


# --- bad input --------------------------------------------------------------------------


def test_malformed_json_is_400(wechat):
    response = post(wechat, raw=b'{"external_id": "x", ')
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    response = post(wechat, raw=b"[" * 5000 + b"]" * 5000)
    assert response.status_code in (400, 413)
    response = post(wechat, raw=b"[1, 2]")
    assert response.status_code == 400
    assert nothing_written()


def test_missing_and_invalid_fields_get_field_messages(wechat):
    response = post(wechat, {"customer": {}, "occurred_at": "yesterday"})
    assert response.status_code == 400
    errors = response.json()
    assert {"external_id", "body", "occurred_at"} <= set(errors)
    response = post(
        wechat,
        payload(
            customer={"phone": "12345", "email": "not-an-email"},
            attachments=["ftp://x.example/a.jpg"],
        ),
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors["customer"]) == {"phone", "email"}
    assert "12345" in errors["customer"]["phone"][0]
    assert "attachments" in errors
    assert nothing_written()


def test_a_customer_without_any_key_is_refused(wechat):
    response = post(wechat, payload(customer={"name": "匿名"}))
    assert response.status_code == 400
    assert "at least one way" in response.json()["customer"][0]
    assert nothing_written()


def test_a_future_contact_time_is_refused(wechat):
    future = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    response = post(wechat, payload(occurred_at=future))
    assert response.status_code == 400
    assert response.json() == {"occurred_at": ["The contact cannot be in the future."]}
    assert nothing_written()


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00Z",  # found by probing: the 24 h window overflowed (500)
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1970-01-01T00:00:00Z",
        12345,
        [],
    ],
)
def test_impossible_contact_times_are_400(wechat, occurred_at):
    response = post(wechat, payload(occurred_at=occurred_at))
    assert response.status_code == 400
    assert "occurred_at" in response.json()
    assert nothing_written()


@pytest.mark.parametrize(
    "data",
    [
        {"external_id": "a", "customer": "x", "body": "b"},
        {"external_id": ["a"], "customer": {"phone": 1380000}, "body": 1},
        {"external_id": "a", "customer": {"email": "A@B.CO"}, "body": "x", "attachments": "u"},
        {"external_id": " ", "customer": {"phone": " "}, "body": " "},
    ],
)
def test_wrong_types_are_400(wechat, data):
    assert post(wechat, data).status_code == 400
    assert nothing_written()


def test_null_characters_are_refused_not_crashing(wechat):
    response = post(wechat, payload(body="快递\u0000没到"))
    assert response.status_code == 400
    assert nothing_written()


def test_oversized_body_is_413(wechat, settings):
    settings.CLOSELOOP_INTAKE_MAX_BYTES = 1024
    response = post(wechat, payload(body="很长" * 600))
    assert response.status_code == 413
    assert nothing_written()
    assert post(wechat, payload()).status_code == 201


def test_default_limit_is_64_kb(wechat):
    response = post(wechat, payload(body="x" * (64 * 1024)))
    assert response.status_code == 413
    assert nothing_written()


def test_a_flood_from_one_channel_gets_429_others_are_not_affected(wechat, app_channel, settings):
    settings.CLOSELOOP_INTAKE_RATE = "3/minute"
    codes = [post(wechat, payload(f"msg-{i}")).status_code for i in range(4)]
    assert codes == [201, 200, 200, 429]
    assert Contact.objects.count() == 3
    assert post(app_channel, payload("app-1", order_no="SO-other")).status_code == 201


# --- one customer across channels -----------------------------------------------------


def test_three_channels_same_person_end_in_one_customer_and_one_ticket(
    wechat, app_channel, hotline
):
    first = post(
        wechat,
        payload(
            "wx-1", customer={"name": "王女士", "wechat_openid": "o6_abc", "phone": "13800001234"}
        ),
    )
    second = post(
        app_channel,
        payload("app-7", customer={"app_user_id": "u-778", "phone": "138 0000 1234"}),
    )
    third = post(
        hotline,
        payload(
            "call-3",
            customer={"phone": "+86 138-0000-1234", "email": "Wang@Example.com"},
            subject="",
            body="来电：还是没收到快递",
        ),
    )
    assert [first.status_code, second.status_code, third.status_code] == [201, 200, 200]
    assert first.json()["number"] == second.json()["number"] == third.json()["number"]
    assert second.json()["created"] is False and third.json()["created"] is False
    customer = Customer.objects.get()
    assert customer.name == "王女士" and customer.email == "wang@example.com"
    assert set(customer.identities.values_list("kind", "external_key")) == {
        ("wechat_openid", "o6_abc"),
        ("phone", "+8613800001234"),
        ("app_user_id", "u-778"),
        ("email", "wang@example.com"),
    }
    ticket = Ticket.objects.get()
    assert ticket.contact_count == 3
    assert sorted(ticket.contacts.values_list("channel__code", flat=True)) == [
        "app",
        "hotline",
        "wechat-main",
    ]
    assert ticket.events.filter(kind=EventKind.CONTACT).count() == 2


def test_a_staff_created_customer_is_found_by_phone(wechat):
    known = CustomerFactory(name="李先生", phone="+8613900002222")
    response = post(wechat, payload(customer={"phone": "139-0000-2222", "wechat_unionid": "un1"}))
    assert response.status_code == 201
    assert Ticket.objects.get().customer == known
    assert known.identities.filter(kind="wechat_unionid", external_key="un1").exists()


def test_keys_of_two_customers_keep_the_most_trusted_match_and_record_the_conflict(wechat):
    by_wechat = CustomerFactory(name="微信客户", phone="")
    CustomerIdentity.objects.create(customer=by_wechat, kind="wechat_openid", external_key="o6_x")
    by_phone = CustomerFactory(name="电话客户", phone="+8613700003333")
    CustomerIdentity.objects.create(customer=by_phone, kind="phone", external_key="+8613700003333")
    response = post(wechat, payload(customer={"wechat_openid": "o6_x", "phone": "13700003333"}))
    assert response.status_code == 201
    assert Ticket.objects.get().customer == by_wechat
    # The phone stays with its customer; nothing is lost or moved silently.
    assert CustomerIdentity.objects.get(kind="phone").customer == by_phone
    conflict = IdentityConflict.objects.get()
    assert (conflict.customer, conflict.other_customer) == (by_wechat, by_phone)
    assert (conflict.kind, conflict.external_key) == ("phone", "+8613700003333")
    assert conflict.contact == Contact.objects.get()


# --- repeat and duplicate contacts --------------------------------------------------------


def test_same_category_within_seven_days_joins_later_opens_a_new_ticket(wechat, reference_data):
    start = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        post(wechat, payload("a", order_no="", category_hint="logistics"))
    with time_machine.travel(start + dt.timedelta(days=6), tick=False):
        joined = post(wechat, payload("b", order_no="", category_hint="logistics"))
    with time_machine.travel(start + dt.timedelta(days=8), tick=False):
        fresh = post(wechat, payload("c", order_no="", category_hint="logistics"))
    assert joined.status_code == 200 and joined.json()["created"] is False
    assert fresh.status_code == 201 and fresh.json()["number"] != joined.json()["number"]
    assert Ticket.objects.count() == 2


def test_a_different_order_is_a_different_issue_even_in_the_same_category(wechat, reference_data):
    post(wechat, payload("a", order_no="SO-1", category_hint="logistics"))
    other = post(wechat, payload("b", order_no="SO-2", category_hint="logistics"))
    assert other.status_code == 201
    assert Ticket.objects.count() == 2


def test_new_complaint_after_a_closed_ticket_is_marked_as_a_repeat(
    wechat, supervisor, reference_data
):
    start = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        first = post(wechat, payload("a"))
        old = drive(Ticket.objects.get(number=first.json()["number"]), supervisor, "closed")
    with time_machine.travel(start + dt.timedelta(days=10), tick=False):
        repeat = post(wechat, payload("b", body="上次说补发，到现在还没收到"))
    assert repeat.status_code == 201
    assert repeat.json()["repeat_of"] == old.number
    ticket = Ticket.objects.get(number=repeat.json()["number"])
    assert ticket.repeat_of == old and ticket.status == Status.RECEIVED
    assert ticket.events.filter(kind=EventKind.NOTE, message__contains=old.number).exists()
    # Past 30 days after closing it is a new complaint, not a repeat.
    with time_machine.travel(start + dt.timedelta(days=45), tick=False):
        later = post(wechat, payload("c", order_no="SO-new-order", category_hint="logistics"))
        much_later = post(wechat, payload("d", order_no="SO20261122001-x"))
    assert later.json()["repeat_of"] is None and much_later.json()["repeat_of"] is None


def test_two_contacts_within_24_hours_flag_the_ticket(wechat):
    start = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        post(wechat, payload("a", order_no="SO-1"))
    first = Ticket.objects.get()
    assert first.recontact_flagged_at is None
    with time_machine.travel(start + dt.timedelta(hours=20), tick=False):
        post(wechat, payload("b", order_no="SO-2"))
        post(wechat, payload("c", order_no="SO-1"))
    second = Ticket.objects.get(order_no="SO-2")
    first.refresh_from_db()
    assert second.recontact_flagged_at is not None
    assert first.recontact_flagged_at is not None and first.contact_count == 2
    with time_machine.travel(start + dt.timedelta(days=3), tick=False):
        post(wechat, payload("d", order_no="SO-3"))
    assert Ticket.objects.get(order_no="SO-3").recontact_flagged_at is None
    assert set(
        Ticket.objects.filter(recontact_flagged_at__isnull=False).values_list("order_no", flat=True)
    ) == {"SO-1", "SO-2"}


def test_a_contact_does_not_join_a_closed_or_merged_ticket(wechat, supervisor):
    first = post(wechat, payload("a"))
    drive(Ticket.objects.get(number=first.json()["number"]), supervisor, "closed")
    again = post(wechat, payload("b"))
    assert again.status_code == 201 and again.json()["number"] != first.json()["number"]


# --- schema -----------------------------------------------------------------------------


def test_schema_documents_the_intake_endpoint(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/intake/"]["post"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"X-Closeloop-Key", "X-Closeloop-Timestamp", "X-Closeloop-Signature"}
    assert operation["security"] == [{"channelSignature": []}]
    assert {"200", "201", "400", "401", "413", "429"} <= set(operation["responses"])
    scheme = schema["components"]["securitySchemes"]["channelSignature"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-Closeloop-Key"}


def test_an_unreachable_database_answers_503_so_the_channel_retries(channel, monkeypatch):
    from django.db import OperationalError

    from channels import services as intake_services

    def database_restarting(**kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(intake_services, "intake_submit", database_restarting)
    response = post(channel, payload("msg-down"))
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert "send the request again" in response.json()["detail"]
    monkeypatch.undo()
    assert post(channel, payload("msg-down")).status_code == 201
