"""Closing the loop: survey on resolution, call-backs on day 3 and 7, low scores reopen."""

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from complaints import services
from complaints.models import (
    CallbackState,
    EventKind,
    FollowUpCall,
    Notification,
    Status,
    Survey,
)
from tests.conftest import drive

GOOD = {"efficiency": 5, "attitude": 5, "clarity": 4, "resolution": 5, "empathy": 4}


def link_of(ticket) -> str:
    survey = ticket.surveys.order_by("-created_at").first()
    return services.survey_url(survey).rsplit("/survey/", 1)[1].strip("/")


def survey_path(ticket) -> str:
    return reverse("public-survey", args=[link_of(ticket)])


def test_resolving_sends_a_survey_and_schedules_call_backs(ticket, agent):
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        drive(ticket, agent, "resolved")
    survey = ticket.surveys.get()
    assert survey.expires_at == now + dt.timedelta(days=14)
    calls = list(ticket.callbacks.order_by("due_at"))
    assert [(c.day, c.due_at, c.assignee) for c in calls] == [
        (3, now + dt.timedelta(days=3), agent),
        (7, now + dt.timedelta(days=7), agent),
    ]
    event = ticket.events.get(kind=EventKind.SURVEY_SENT)
    assert event.message.startswith("http://") and "/survey/" in event.message


def test_low_score_reopens_escalates_and_tells_the_lead(client, ticket, agent, senior):
    drive(ticket, agent, "resolved")
    response = client.post(survey_path(ticket), {**GOOD, "overall": "4", "comment": "还是没修好"})
    assert response.status_code == 200
    assert 'data-testid="survey-thanks"' in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS
    assert ticket.reopen_count == 1 and ticket.escalation_level == 1
    assert not ticket.callbacks.filter(state=CallbackState.PENDING).exists()
    assert {n.recipient for n in Notification.objects.all()} == {senior, agent}
    kinds = list(ticket.events.values_list("kind", flat=True))[-3:]
    assert kinds == [EventKind.SURVEY_ANSWERED, EventKind.REOPENED, EventKind.ESCALATED]
    # The link is single-use: a second answer changes nothing.
    again = client.post(survey_path(ticket), {**GOOD, "overall": "0"})
    assert 'data-testid="survey-thanks"' in again.content.decode()
    ticket.refresh_from_db()
    assert ticket.reopen_count == 1
    assert Survey.objects.get(ticket=ticket).overall == 4


def test_good_score_lets_the_agent_follow_up_without_a_call_then_close(client, ticket, agent):
    drive(ticket, agent, "resolved")
    with pytest.raises(ValidationError):
        services.ticket_follow_up(ticket=ticket.number, actor=agent, note="")
    client.post(survey_path(ticket), {**GOOD, "overall": "9", "comment": "很满意"})
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    services.ticket_follow_up(ticket=ticket.number, actor=agent, note="")
    services.ticket_close(ticket=ticket.number, actor=agent)
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    assert "9/10" in ticket.followup_note


def test_bad_answers_are_refused_and_nothing_is_recorded(client, ticket, agent):
    drive(ticket, agent, "resolved")
    response = client.post(survey_path(ticket), {**GOOD, "efficiency": "9", "overall": "11"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose a score from 1 to 5." in body and "Choose a score from 0 to 10." in body
    assert not Survey.objects.get(ticket=ticket).is_answered


def test_expired_or_tampered_links_reveal_nothing(client, ticket, agent):
    drive(ticket, agent, "resolved")
    path = survey_path(ticket)
    tampered = client.get(path[:-3] + "abc/")
    assert tampered.status_code == 404
    assert ticket.number not in tampered.content.decode()
    with time_machine.travel(timezone.now() + dt.timedelta(days=15)):
        expired = client.get(path)
    assert expired.status_code == 404
    assert 'data-testid="survey-error"' in expired.content.decode()


def test_call_back_attempts_and_reaching_the_customer_follows_up(login, ticket, agent):
    drive(ticket, agent, "resolved")
    first = ticket.callbacks.order_by("due_at").first()
    client = login(agent)
    url = reverse("workspace:callback-record", args=[first.pk])
    client.post(url, {"outcome": "no_answer", "note": ""})
    first.refresh_from_db()
    assert (first.state, first.attempts) == (CallbackState.PENDING, 1)
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    client.post(url, {"outcome": "reached", "note": ""})  # reached needs a note
    first.refresh_from_db()
    assert first.attempts == 1
    client.post(url, {"outcome": "reached", "note": "客户确认已收到补发，满意"})
    first.refresh_from_db()
    assert (first.state, first.attempts) == (CallbackState.DONE, 2)
    ticket.refresh_from_db()
    assert ticket.status == Status.FOLLOWED_UP
    assert ticket.followup_note == "客户确认已收到补发，满意"


def test_the_call_backs_page_lists_what_is_due(login, ticket, agent, agent2):
    drive(ticket, agent, "resolved")
    page = login(agent).get(reverse("workspace:callbacks")).content.decode()
    assert page.count('data-testid="callback-row"') == 2 and ticket.number in page
    other = login(agent2).get(reverse("workspace:callbacks")).content.decode()
    assert ticket.number not in other
    assert FollowUpCall.objects.filter(assignee=agent).count() == 2


def test_follow_up_with_a_note_completes_the_due_call_back(ticket, agent):
    drive(ticket, agent, "followed_up")
    states = list(ticket.callbacks.order_by("due_at").values_list("state", flat=True))
    assert states == [CallbackState.DONE, CallbackState.PENDING]  # day 7 still owed
