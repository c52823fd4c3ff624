"""Hotline and walk-in quick entry: look the caller up, then record the call as a ticket."""

import uuid

from django.urls import reverse

from channels.models import ChannelKind
from complaints.models import Customer, EventKind, Ticket

URL = "/intake/hotline/"


def call(token=None, **extra):
    return {
        "token": token or uuid.uuid4().hex,
        "phone": "138 0000 1234",
        "name": "王女士",
        "subject": "热水器不出热水",
        "body": "昨天安装的热水器不出热水，师傅说明天再来",
        "order_no": "SO1",
        "recording_ref": "REC-20261122-0815",
        **extra,
    }


def test_lookup_shows_the_callers_history(login, agent, ticket, customer):
    page = login(agent).get(URL, {"phone": "13800001234"})
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="customer360"' in body and ticket.number in body
    assert 'value="王女士"' in body  # the name is pre-filled from the customer


def test_unknown_caller_is_said_so(login, agent, db):
    body = login(agent).get(URL, {"phone": "13911112222"}).content.decode()
    assert 'data-testid="hotline-new-customer"' in body


def test_recording_a_call_opens_a_hotline_ticket_for_the_same_customer(login, agent, customer):
    client = login(agent)
    data = call()
    response = client.post(URL, data)
    assert response.status_code == 302
    ticket = Ticket.objects.exclude(channel__kind=ChannelKind.WECHAT).get(subject="热水器不出热水")
    assert response.url == reverse("workspace:ticket", args=[ticket.number])
    assert ticket.channel.kind == ChannelKind.HOTLINE
    assert ticket.customer == customer  # found by the normalized phone
    assert Customer.objects.count() == 1
    # Dual recording: the call's recording id is on the ticket's timeline.
    note = ticket.events.get(kind=EventKind.NOTE)
    assert note.after["recording"] == "REC-20261122-0815"
    assert note.actor == agent
    # The same form sent twice (a double click) is one ticket.
    client.post(URL, data)
    assert Ticket.objects.filter(subject="热水器不出热水").count() == 1


def test_bad_input_is_refused_and_department_staff_are_kept_out(login, agent, logistics, db):
    response = login(agent).post(URL, call(phone="12", body=""))
    assert response.status_code == 400
    assert not Ticket.objects.exists()
    assert login(logistics).get(URL).status_code == 403
