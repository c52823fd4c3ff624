"""The SLA panel on the ticket page and the pause/resume buttons."""

import datetime as dt

from django.urls import reverse

from sla import services as sla
from tests.conftest import drive
from tests.sla.conftest import T0


def page(client, ticket) -> str:
    response = client.get(reverse("workspace:ticket", args=[ticket.number]))
    assert response.status_code == 200
    return response.content.decode()


def test_panel_shows_the_four_stages_with_their_state(clock_at, login, agent, ticket):
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 5 * dt.timedelta(hours=1))
    body = page(login(agent), ticket)
    assert body.count('data-testid="sla-row"') == 4
    assert 'data-stage="first_response" data-state="overdue"' in body
    assert 'data-stage="assessment" data-state="met"' in body
    assert 'data-stage="solution" data-state="running"' in body
    assert "72h" not in body and "3d" in body  # targets read as days and hours


def test_pause_and_resume_through_the_page(clock_at, login, agent, ticket):
    drive(ticket, agent, "assigned")
    client = login(agent)
    assert 'data-testid="sla-pause"' in page(client, ticket)
    url = reverse("sla:ticket-pause", args=[ticket.number])
    response = client.post(url, {"reason": "请客户补充照片"})
    assert response.status_code == 302
    body = page(client, ticket)
    assert 'data-testid="sla-paused"' in body and 'data-testid="sla-resume"' in body
    assert 'data-state="paused"' in body
    clock_at.shift(dt.timedelta(hours=2))
    client.post(reverse("sla:ticket-resume", args=[ticket.number]))
    body = page(client, ticket)
    assert 'data-testid="sla-paused"' not in body
    assert "2h" in body  # paused time shown


def test_bad_pause_shows_the_reason_not_a_500(login, agent, ticket):
    drive(ticket, agent, "assigned")
    client = login(agent)
    response = client.post(reverse("sla:ticket-pause", args=[ticket.number]), {"reason": ""})
    assert response.status_code == 302
    assert "Say what the customer is asked for." in page(client, ticket)
    response = client.post(reverse("sla:ticket-resume", args=[ticket.number]))
    assert "not waiting for the customer" in page(client, ticket)


def test_pause_is_refused_to_others(login, agent, agent2, ticket, logistics, outsider):
    drive(ticket, agent, "assigned")
    url = reverse("sla:ticket-pause", args=[ticket.number])
    assert login(outsider).post(url, {"reason": "x"}).status_code == 404
    assert login(logistics).post(url, {"reason": "x"}).status_code == 404
    client = login(agent2)
    assert 'data-testid="sla-pause"' not in page(client, ticket)
    client.post(url, {"reason": "x"})
    ticket.refresh_from_db()
    assert ticket.sla_paused_at is None
    assert login(agent).get(url).status_code == 405


def test_unknown_ticket_is_404(login, agent):
    assert login(agent).post(reverse("sla:ticket-pause", args=["TS-NONE"])).status_code == 404


def test_resumed_ticket_page_still_within_budget(
    login, agent, ticket, django_assert_max_num_queries
):
    drive(ticket, agent, "assigned")
    sla.ticket_pause(ticket=ticket.number, actor=agent, reason="等客户")
    client = login(agent)
    with django_assert_max_num_queries(14):
        page(client, ticket)
