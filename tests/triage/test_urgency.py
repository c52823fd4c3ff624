"""Urgency words: seeded, editable, explained on the ticket, coordinated with sla's media words."""

import pytest

from complaints.models import Level, Priority, Status
from sla.models import RiskAlert, RiskKind, RiskSettings
from triage import engine
from triage.models import TicketUrgency, UrgencyReason, UrgencyTerm
from triage.seeds import URGENCY_TERMS, ensure_urgency_terms

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded_terms(db):
    # Transactional tests flush what the data migration wrote; put it back.
    ensure_urgency_terms()


def test_the_data_migration_seeds_every_reason(seeded_terms):
    reasons = set(UrgencyTerm.objects.values_list("reason", flat=True))
    assert reasons == {r.value for r in UrgencyReason}
    assert UrgencyTerm.objects.count() == len(URGENCY_TERMS)
    assert ensure_urgency_terms() == 0  # idempotent


def test_safety_word_makes_the_ticket_urgent_and_says_why(intake, seeded_terms):
    ticket = intake("新买的电暖器插上电就冒烟起火了，吓死人")
    assert ticket.urgency == Level.HIGH
    assert ticket.priority == Priority.P1
    assert ticket.status == Status.RECEIVED  # the agents still classify it
    finding = TicketUrgency.objects.get(ticket=ticket)
    assert finding.reasons()[0] == ("Safety", ["冒烟", "起火"])
    note = ticket.events.filter(message__startswith="Urgent:").get()
    assert note.message.startswith("Urgent: Safety — 冒烟、起火")


def test_ticket_page_shows_the_reason(login, agent, intake, seeded_terms):
    ticket = intake("孩子被热水器漏电电到了，已经去医院")
    body = login(agent).get(f"/triage/tickets/{ticket.number}/panel/").content.decode()
    assert "urgent:" in body
    assert "Safety — matched 漏电" in body


def test_media_words_come_from_the_sla_settings(intake, seeded_terms, reference_data):
    settings = RiskSettings.load()
    settings.media_words = "上热搜"
    settings.save()
    ticket = intake("再不处理我就发到网上让它上热搜")
    finding = TicketUrgency.objects.get(ticket=ticket)
    assert finding.matches == [{"reason": "media", "term": "上热搜"}]
    # The SLA's own risk signal 5 still fires, once: triage adds urgency, not an alert.
    assert RiskAlert.objects.filter(ticket=ticket, kind=RiskKind.MEDIA_WORDS).count() == 1


def test_sla_words_are_not_listed_twice(seeded_terms, reference_data):
    UrgencyTerm.objects.create(term="记者", reason=UrgencyReason.MEDIA)
    terms = engine.load_terms()
    assert [t.term for t in terms].count("记者") == 1


def test_strong_emotion_raises_urgency_without_p1(intake, seeded_terms):
    ticket = intake("你们太过分了，快递丢了没人管")
    assert ticket.urgency == Level.MEDIUM
    assert ticket.priority == Priority.P3
    assert TicketUrgency.objects.get(ticket=ticket).matches == [
        {"reason": "emotion", "term": "太过分"}
    ]


def test_patterns_match_as_regular_expressions(intake, seeded_terms):
    ticket = intake("我已经投诉3次了，还是没有人处理")
    matches = TicketUrgency.objects.get(ticket=ticket).matches
    assert {"reason": "emotion", "term": "投诉3次"} in matches


def test_traditional_characters_and_full_width_match(intake, seeded_terms):
    ticket = intake("插座突然起火，還好人沒事")
    assert TicketUrgency.objects.filter(ticket=ticket).exists()
    ticket = intake("我要去法院起訴你們")
    assert {"reason": "legal", "term": "法院"} in TicketUrgency.objects.get(ticket=ticket).matches


def test_inactive_words_are_ignored(intake, seeded_terms):
    UrgencyTerm.objects.filter(term="起火").update(is_active=False)
    ticket = intake("插座起火了")
    assert not TicketUrgency.objects.filter(ticket=ticket).exists()


def test_plain_complaints_are_not_urgent(intake, seeded_terms):
    ticket = intake("快递三天没到，麻烦查一下")
    assert not TicketUrgency.objects.filter(ticket=ticket).exists()
    assert ticket.urgency is None


def test_admin_refuses_a_broken_pattern(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/admin/triage/urgencyterm/add/",
        {"term": "投诉(", "is_pattern": "on", "reason": "emotion", "level": 2, "is_active": "on"},
    )
    assert response.status_code == 200
    assert "Not a valid regular expression" in response.content.decode()
    assert not UrgencyTerm.objects.filter(term="投诉(").exists()


def test_applying_again_does_not_repeat_the_urgency_note(login, agent, intake, seeded_terms):
    from triage.services import triage_apply

    ticket = intake("插座起火了")
    triage_apply(ticket=ticket.number, actor=agent)
    triage_apply(ticket=ticket.number, actor=agent)
    assert ticket.events.filter(message__startswith="Urgent:").count() == 1
