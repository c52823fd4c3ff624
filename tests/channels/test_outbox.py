"""Outbound delivery against a real HTTP receiver on 127.0.0.1.

Tests run inside a transaction that never commits, so nothing is delivered by
itself: `outbox.deliver_due()` plays the django-q2 worker. The commit path (on_commit
→ q2 → delivery) is proven separately with real commits.
"""

import datetime as dt
import json
import time

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from channels import outbox
from channels.api import sign
from channels.models import ChannelKind, MessageKind, MessageState, OutboundMessage
from complaints import services
from complaints.models import (
    CallbackOutcome,
    CustomerIdentity,
    EventKind,
    FollowUpCall,
    IdentityKind,
    Notification,
)
from kb.models import ReplyScript, ScriptKind, SopTemplate
from tests.channels.receiver import start_receiver
from tests.conftest import drive, first_response_text
from tests.factories import ChannelFactory, CustomerFactory, make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    found, server = start_receiver()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def wechat_ticket(receiver, team_a, agent):
    channel = ChannelFactory(code="wechat-out", kind=ChannelKind.WECHAT, callback_url=receiver.url)
    customer = CustomerFactory(name="王女士", phone="+8613800001234")
    CustomerIdentity.objects.create(
        customer=customer, kind=IdentityKind.WECHAT_OPENID, external_key="o6_wang"
    )
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(ticket, agent, "in_progress")
    receiver.received.clear()
    return ticket


def reply(ticket, agent, text="您好，快递已经补发，单号 SF123。"):
    return services.ticket_reply(ticket=ticket.number, actor=agent, body=text)


def last_message(ticket) -> OutboundMessage:
    return OutboundMessage.objects.filter(ticket=ticket).latest("id")


# --- the webhook: signature, idempotency key, payload -------------------------------------


def test_a_reply_is_posted_signed_with_its_message_id_as_idempotency_key(
    wechat_ticket, agent, receiver
):
    reply(wechat_ticket, agent)
    message = last_message(wechat_ticket)
    assert message.state == MessageState.QUEUED  # written with the reply, not sent in it
    assert receiver.received == []

    assert outbox.deliver_due() == 1

    (request,) = receiver.received
    channel = wechat_ticket.channel
    timestamp = request.headers["X-Closeloop-Timestamp"]
    assert request.headers["X-Closeloop-Key"] == channel.key
    assert request.headers["X-Closeloop-Signature"] == sign(channel.secret, timestamp, request.body)
    assert abs(int(timestamp) - time.time()) < 60
    assert request.headers["Idempotency-Key"] == str(message.message_id)
    payload = request.json
    assert payload["message_id"] == str(message.message_id)
    assert payload["ticket_number"] == wechat_ticket.number
    assert payload["kind"] == "reply"
    assert payload["recipient"] == {"kind": "wechat_openid", "id": "o6_wang"}
    assert payload["body"] == "您好，快递已经补发，单号 SF123。"
    message.refresh_from_db()
    assert message.state == MessageState.SENT and message.attempts == 1
    assert message.provider_ref == "ch-1"  # the channel's id from its answer


def test_internal_notes_are_never_sent(wechat_ticket, agent, receiver):
    services.ticket_reply(ticket=wechat_ticket.number, actor=agent, body="内部备注", internal=True)
    assert not OutboundMessage.objects.filter(ticket=wechat_ticket, kind="reply").exists()
    assert outbox.deliver_due() == 0
    assert receiver.received == []


# --- retries, backoff and the dead letter ---------------------------------------------------


def test_500s_and_timeouts_are_retried_with_growing_backoff_until_sent(
    wechat_ticket, agent, receiver, settings
):
    settings.CLOSELOOP_OUTBOX_TIMEOUT_SECONDS = 1
    receiver.plan = [500, ("sleep", 2), 200]
    reply(wechat_ticket, agent)
    message = last_message(wechat_ticket)

    outbox.deliver_due()
    message.refresh_from_db()
    assert message.state == MessageState.FAILED and message.attempts == 1
    assert "HTTP 500" in message.last_error
    first_wait = message.next_attempt_at - message.failed_at
    assert dt.timedelta(seconds=15) <= first_wait <= dt.timedelta(seconds=45)  # 30 s ± jitter
    assert outbox.deliver_due() == 0  # not due yet

    with time_machine.travel(message.next_attempt_at + dt.timedelta(seconds=1)):
        outbox.deliver_due()
    message.refresh_from_db()
    assert message.state == MessageState.FAILED and message.attempts == 2
    assert "could not be reached" in message.last_error  # the timeout
    second_wait = message.next_attempt_at - message.failed_at
    assert dt.timedelta(seconds=30) <= second_wait <= dt.timedelta(seconds=90)  # 60 s ± jitter

    with time_machine.travel(message.next_attempt_at + dt.timedelta(seconds=1)):
        outbox.deliver_due()
    message.refresh_from_db()
    assert message.state == MessageState.SENT and message.attempts == 3
    # Every attempt carried the same idempotency key: the channel can drop copies.
    assert set(receiver.idempotency_keys()) == {str(message.message_id)}
    assert len(receiver.received) == 3


def test_after_the_maximum_attempts_the_message_is_dead_and_the_agent_is_told(
    wechat_ticket, agent, receiver, settings
):
    settings.CLOSELOOP_OUTBOX_MAX_ATTEMPTS = 3
    receiver.default = 503
    reply(wechat_ticket, agent)
    message = last_message(wechat_ticket)
    start = timezone.now()
    for hour in range(1, 6):
        with time_machine.travel(start + dt.timedelta(hours=hour)):
            outbox.deliver_due()
    message.refresh_from_db()
    assert message.state == MessageState.DEAD and message.attempts == 3
    assert len(receiver.received) == 3  # nothing after the maximum
    assert message.next_attempt_at is None
    event = wechat_ticket.events.get(kind=EventKind.DELIVERY_FAILED)
    assert "HTTP 503" in event.message
    # The assignee hears of it in the notification centre.
    note = Notification.objects.get(recipient=agent, ticket=wechat_ticket)
    assert "HTTP 503" in note.message


def test_a_channel_refusing_the_message_is_not_retried(wechat_ticket, agent, receiver):
    receiver.plan = [400]
    reply(wechat_ticket, agent)
    outbox.deliver_due()
    message = last_message(wechat_ticket)
    assert message.state == MessageState.DEAD and message.attempts == 1
    assert "HTTP 400" in message.last_error


def test_retry_now_gives_a_dead_message_new_attempts(wechat_ticket, agent, senior, receiver):
    receiver.plan = [400]
    reply(wechat_ticket, agent)
    outbox.deliver_due()
    message = last_message(wechat_ticket)
    assert message.state == MessageState.DEAD

    outbox.message_retry(message=message, actor=senior)
    message.refresh_from_db()
    assert message.state == MessageState.QUEUED and message.attempts == 0
    outbox.deliver_due()
    message.refresh_from_db()
    assert message.state == MessageState.SENT
    assert len(receiver.received) == 2


def test_only_failed_or_dead_messages_are_retried(wechat_ticket, agent, receiver):
    from django.core.exceptions import ValidationError

    reply(wechat_ticket, agent)
    outbox.deliver_due()
    with pytest.raises(ValidationError):
        outbox.message_retry(message=last_message(wechat_ticket), actor=agent)


# --- routing and fallbacks -------------------------------------------------------------------


def test_without_a_callback_url_the_message_falls_back_to_sms(agent, team_a, caplog):
    ticket = make_ticket(team=team_a)  # a WeChat channel nobody configured for outbound
    drive(ticket, agent, "in_progress")
    reply(ticket, agent)
    message = last_message(ticket)
    assert (message.adapter, message.recipient_kind) == ("sms", "phone")
    assert message.recipient == ticket.customer.phone
    outbox.deliver_due()
    message.refresh_from_db()
    assert message.state == MessageState.SENT
    assert message.provider_ref == f"console-{message.message_id}"


def test_email_channels_send_through_djangos_email_backend(agent, team_a):
    channel = ChannelFactory(code="mail", kind=ChannelKind.EMAIL)
    customer = CustomerFactory(email="wang@example.com")
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(ticket, agent, "in_progress")
    mail.outbox.clear()
    reply(ticket, agent, "您好，已为您补发。")
    outbox.deliver_due()
    (sent,) = mail.outbox
    assert sent.to == ["wang@example.com"]
    assert ticket.number in sent.subject and sent.body == "您好，已为您补发。"
    assert last_message(ticket).state == MessageState.SENT


def test_a_customer_nobody_can_reach_is_dead_lettered_at_once(agent, team_a):
    customer = CustomerFactory(phone="", email="")
    ticket = make_ticket(customer=customer, team=team_a)
    drive(ticket, agent, "in_progress")
    reply(ticket, agent)
    message = last_message(ticket)
    assert message.state == MessageState.DEAD
    assert "no address" in message.last_error
    assert ticket.events.filter(kind=EventKind.DELIVERY_FAILED).exists()


def test_store_messages_become_call_backs_that_the_call_delivers(agent, team_a):
    store = ChannelFactory(code="store-1", kind=ChannelKind.STORE)
    ticket = make_ticket(channel=store, team=team_a)
    drive(ticket, agent, "assigned")
    services.ticket_first_response(
        ticket=ticket.number,
        actor=agent,
        message=first_response_text(ticket),
        promised_followup_at=timezone.now() + dt.timedelta(days=1),
    )
    message = last_message(ticket)
    assert message.adapter == "callback" and message.state == MessageState.QUEUED
    call = FollowUpCall.objects.get(message=message)
    assert call.assignee == agent and call.day == 0
    ticket.refresh_from_db()
    assert ticket.first_response_sent_at is None  # the customer has not heard it yet

    services.callback_record(callback=call, actor=agent, outcome=CallbackOutcome.NO_ANSWER, note="")
    message.refresh_from_db()
    assert message.state == MessageState.QUEUED and message.attempts == 1

    services.callback_record(
        callback=call, actor=agent, outcome=CallbackOutcome.REACHED, note="已告知工单号和查询方式"
    )
    message.refresh_from_db()
    ticket.refresh_from_db()
    assert message.state == MessageState.DELIVERED
    assert ticket.first_response_sent_at == message.delivered_at


# --- the first-response SLA counts from sending ----------------------------------------------


def test_the_first_response_clock_is_met_when_sent_not_when_written(agent, team_a, receiver):
    from sla.models import Clock

    channel = ChannelFactory(code="app", kind=ChannelKind.APP, callback_url=receiver.url)
    customer = CustomerFactory()
    CustomerIdentity.objects.create(customer=customer, kind="app_user_id", external_key="u-1")
    written_at = timezone.now()
    with time_machine.travel(written_at, tick=False):
        ticket = make_ticket(customer=customer, channel=channel, team=team_a)
        drive(ticket, agent, "assigned")
        receiver.default = 500
        services.ticket_first_response(
            ticket=ticket.number,
            actor=agent,
            message=first_response_text(ticket),
            promised_followup_at=written_at + dt.timedelta(days=1),
        )
        outbox.deliver_due()
    clock = Clock.objects.get(ticket=ticket, stage="first_response")
    assert clock.met_at is None  # written, but the channel failed

    receiver.default = 200
    sent_at = written_at + dt.timedelta(hours=5)  # past the 4 h target
    with time_machine.travel(sent_at, tick=False):
        outbox.deliver_due()
    clock.refresh_from_db()
    ticket.refresh_from_db()
    assert ticket.first_response_sent_at == sent_at
    assert clock.met_at == sent_at and clock.breached_at is not None


def test_the_ticket_page_warns_when_the_first_response_did_not_arrive(
    agent, team_a, receiver, client
):
    channel = ChannelFactory(code="app", kind=ChannelKind.APP, callback_url=receiver.url)
    ticket = make_ticket(channel=channel, team=team_a)
    drive(ticket, agent, "assigned")
    receiver.default = 400
    services.ticket_first_response(
        ticket=ticket.number,
        actor=agent,
        message=first_response_text(ticket),
        promised_followup_at=timezone.now() + dt.timedelta(days=1),
    )
    outbox.deliver_due()
    client.force_login(agent)
    page = client.get(reverse("workspace:ticket", args=[ticket.number])).content.decode()
    assert 'data-testid="first-response-undelivered"' in page
    assert 'data-state="dead"' in page


# --- resolution: solution and survey link from the SOP scripts --------------------------------


def test_resolving_sends_the_solution_and_an_absolute_survey_link_from_the_scripts(
    wechat_ticket, agent, receiver, settings
):
    settings.CLOSELOOP_SITE_URL = "https://kefu.example.com"
    template = SopTemplate.objects.create(name="物流 SOP", category=wechat_ticket.category)
    ReplyScript.objects.create(
        template=template,
        kind=ScriptKind.FOLLOW_UP,
        body="{customer_name}您好，工单{ticket_number}已办结，请评价：{survey_url}",
    )
    services.ticket_resolve(
        ticket=wechat_ticket.number,
        actor=agent,
        solution="补发商品并赠送优惠券",
        responsible_person="物流部 刘师傅",
        resolution_time=timezone.now(),
        evidence_ref="快递单号 SF123456",
    )
    kinds = dict(OutboundMessage.objects.filter(ticket=wechat_ticket).values_list("kind", "body"))
    assert "补发商品并赠送优惠券" in kinds[MessageKind.SOLUTION]
    survey_text = kinds[MessageKind.SURVEY]
    assert survey_text.startswith(f"王女士您好，工单{wechat_ticket.number}已办结，请评价：")
    assert "https://kefu.example.com/survey/" in survey_text
    outbox.deliver_due()
    assert {r.json["kind"] for r in receiver.received} >= {"solution", "survey"}


# --- receipts ------------------------------------------------------------------------------


def post_receipt(channel, payload, *, secret=None):
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    return Client().post(
        "/api/v1/channels/receipts/",
        data=body,
        content_type="application/json",
        HTTP_X_CLOSELOOP_KEY=channel.key,
        HTTP_X_CLOSELOOP_TIMESTAMP=timestamp,
        HTTP_X_CLOSELOOP_SIGNATURE=sign(secret or channel.secret, timestamp, body),
    )


def test_a_signed_receipt_marks_the_message_delivered_once(wechat_ticket, agent, receiver):
    reply(wechat_ticket, agent)
    outbox.deliver_due()
    message = last_message(wechat_ticket)
    payload = {"message_id": str(message.message_id), "status": "delivered"}

    response = post_receipt(wechat_ticket.channel, payload)
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "delivered"
    message.refresh_from_db()
    assert message.state == MessageState.DELIVERED and message.delivered_at is not None

    again = post_receipt(wechat_ticket.channel, payload)
    assert (
        again.status_code == 200 and again.json()["delivered_at"] == response.json()["delivered_at"]
    )
    contradicting = post_receipt(wechat_ticket.channel, {**payload, "status": "failed"})
    assert contradicting.status_code == 409


def test_receipts_are_refused_unsigned_or_from_another_channel(wechat_ticket, agent, receiver):
    reply(wechat_ticket, agent)
    outbox.deliver_due()
    message = last_message(wechat_ticket)
    payload = {"message_id": str(message.message_id), "status": "delivered"}
    assert post_receipt(wechat_ticket.channel, payload, secret="wrong").status_code == 401
    other = ChannelFactory(code="other-app", kind=ChannelKind.APP)
    assert post_receipt(other, payload).status_code == 404
    assert post_receipt(wechat_ticket.channel, {**payload, "status": "read"}).status_code == 400
    assert (
        post_receipt(wechat_ticket.channel, {"message_id": "x", "status": "delivered"}).status_code
        == 400
    )
    message.refresh_from_db()
    assert message.state == MessageState.SENT


def test_a_failed_receipt_warns_the_ticket(wechat_ticket, agent, receiver):
    reply(wechat_ticket, agent)
    outbox.deliver_due()
    message = last_message(wechat_ticket)
    response = post_receipt(
        wechat_ticket.channel,
        {"message_id": str(message.message_id), "status": "failed", "error": "用户已取消关注"},
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.state == MessageState.FAILED and message.last_error == "用户已取消关注"
    assert wechat_ticket.events.filter(kind=EventKind.DELIVERY_FAILED).exists()


# --- the ticket page's delivery badge ----------------------------------------------------------


def test_the_badge_endpoint_stops_polling_once_the_state_is_final(
    wechat_ticket, agent, receiver, client, logistics
):
    reply(wechat_ticket, agent)
    message = last_message(wechat_ticket)
    url = reverse("workspace:ticket-message", args=[wechat_ticket.number, message.pk])
    client.force_login(agent)
    queued = client.get(url)
    assert queued.status_code == 200 and b'data-state="queued"' in queued.content
    assert b"hx-trigger" in queued.content
    outbox.deliver_due()
    outbox.receipt_record(
        channel=wechat_ticket.channel, message_id=message.message_id, state="delivered"
    )
    final = client.get(url)
    assert final.status_code == 286  # htmx: stop polling
    assert b'data-state="delivered"' in final.content and b"hx-trigger" not in final.content
    client.force_login(logistics)  # department staff work tasks, not the ticket's messages
    assert client.get(url).status_code in (403, 404)


# --- commit and rollback, for real -------------------------------------------------------------


@pytest.fixture
def q_sync(monkeypatch):
    """Make django-q2 run tasks at once (STACK.md: Conf is read at import)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_nothing_is_sent_when_the_action_rolls_back_and_sent_after_commit(
    receiver, team_a, agent, q_sync
):
    channel = ChannelFactory(code="app-tx", kind=ChannelKind.APP, callback_url=receiver.url)
    customer = CustomerFactory()
    CustomerIdentity.objects.create(customer=customer, kind="app_user_id", external_key="u-tx")
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(ticket, agent, "in_progress")
    receiver.received.clear()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        reply(ticket, agent, "这条回复随事务回滚")
        raise Boom
    assert not OutboundMessage.objects.filter(ticket=ticket, kind="reply").exists()
    assert receiver.received == []

    reply(ticket, agent, "这条回复提交后发送")  # autocommit: on_commit → q2 → delivery
    (request,) = receiver.received
    assert request.json["body"] == "这条回复提交后发送"
    assert last_message(ticket).state == MessageState.SENT


# --- the admin's dead-letter list ----------------------------------------------------------------


def test_admin_lists_dead_messages_and_retries_them(
    wechat_ticket, agent, admin_user, receiver, client
):
    receiver.plan = [400]
    reply(wechat_ticket, agent)
    outbox.deliver_due()
    message = last_message(wechat_ticket)
    client.force_login(admin_user)
    changelist = reverse("admin:channels_outboundmessage_changelist")
    page = client.get(changelist, {"state__exact": "dead"})
    assert page.status_code == 200
    assert wechat_ticket.number in page.content.decode()
    assert "The channel answered HTTP 400." in page.content.decode()

    response = client.post(
        changelist, {"action": "retry_now", "_selected_action": [message.pk]}, follow=True
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.state == MessageState.QUEUED
    outbox.deliver_due()
    message.refresh_from_db()
    assert message.state == MessageState.SENT


def test_department_staff_do_not_see_the_outbox_in_the_admin(logistics, client):
    logistics.is_staff = True
    logistics.save()
    client.force_login(logistics)
    assert client.get(reverse("admin:channels_outboundmessage_changelist")).status_code == 403


# --- follow-up reminder: the survey link once more ------------------------------------------------


def test_an_unanswered_survey_is_recalled_once_after_three_days(wechat_ticket, agent, receiver):
    resolved_at = timezone.now()
    with time_machine.travel(resolved_at, tick=False):
        services.ticket_resolve(
            ticket=wechat_ticket.number,
            actor=agent,
            solution="补发商品",
            responsible_person="物流部 刘师傅",
            resolution_time=resolved_at,
            evidence_ref="SF1",
        )
    assert services.survey_send_reminders(now=resolved_at + dt.timedelta(days=2)) == 0
    assert services.survey_send_reminders(now=resolved_at + dt.timedelta(days=3, minutes=1)) == 1
    assert services.survey_send_reminders(now=resolved_at + dt.timedelta(days=4)) == 0  # once

    reminder = OutboundMessage.objects.get(ticket=wechat_ticket, kind=MessageKind.FOLLOW_UP)
    assert "/survey/" in reminder.body and wechat_ticket.number in reminder.body
    assert wechat_ticket.events.filter(kind=EventKind.SURVEY_REMINDED).count() == 1
    outbox.deliver_due()
    reminder.refresh_from_db()
    assert reminder.state == MessageState.SENT


def test_answered_or_reopened_tickets_get_no_reminder(wechat_ticket, agent):
    from complaints.services import survey_answer

    services.ticket_resolve(
        ticket=wechat_ticket.number,
        actor=agent,
        solution="补发商品",
        responsible_person="物流部 刘师傅",
        resolution_time=timezone.now(),
        evidence_ref="SF1",
    )
    survey = wechat_ticket.surveys.get()
    link = services.survey_url(survey).rstrip("/").rsplit("/", 1)[1]
    survey_answer(
        link=link,
        answers={
            "efficiency": 5,
            "attitude": 5,
            "clarity": 5,
            "resolution": 5,
            "empathy": 5,
            "overall": 10,
        },
    )
    later = timezone.now() + dt.timedelta(days=5)
    assert services.survey_send_reminders(now=later) == 0
    assert not OutboundMessage.objects.filter(kind=MessageKind.FOLLOW_UP).exists()


def test_sending_the_first_response_does_not_make_the_agents_forms_stale(agent, team_a):
    ticket = make_ticket(team=team_a)
    drive(ticket, agent, "assigned")
    services.ticket_first_response(
        ticket=ticket.number,
        actor=agent,
        message=first_response_text(ticket),
        promised_followup_at=timezone.now() + dt.timedelta(days=1),
    )
    ticket.refresh_from_db()
    version = ticket.version  # what the reloaded page's forms carry
    outbox.deliver_due()
    ticket.refresh_from_db()
    assert ticket.first_response_sent_at is not None and ticket.version == version
    services.ticket_start(ticket=ticket.number, actor=agent, expected_version=version)
