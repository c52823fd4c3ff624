"""An agent sees the suggested category on a fresh ticket and accepts it in one click."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from complaints.models import EventKind, Status, Ticket
from tests.factories import leaf_category, make_ticket
from tests.triage.test_classifier import LOGISTICS, QUALITY
from triage import classifier
from triage.models import CategorySuggestion, SuggestionOutcome

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def trained_model(reference_data, customer, channel, team_a):
    for code, texts in (("logistics", LOGISTICS), ("quality", QUALITY)):
        for text in texts:
            old = make_ticket(customer=customer, channel=channel, team=team_a, body=text)
            Ticket.objects.filter(pk=old.pk).update(
                status=Status.CLOSED, category=leaf_category(code), resolved_at=timezone.now()
            )
    classifier.train_and_store()


def test_agent_accepts_the_suggested_category(open_as, live_server, agent, trained_model, ticket):
    page = open_as(agent)
    page.goto(f"{live_server.url}/tickets/{ticket.number}/")
    suggested = page.get_by_test_id("triage-suggested-category")
    expect(suggested).to_have_text("物流配送")  # loaded by htmx into the side panel
    page.get_by_test_id("triage-accept").click()

    expect(page.get_by_test_id("ticket-category")).to_have_text("物流配送")
    expect(page.get_by_test_id("ticket-status")).to_have_text("已分类")
    ticket.refresh_from_db()
    assert ticket.status == Status.CLASSIFIED
    assert ticket.events.filter(kind=EventKind.CLASSIFIED, actor=agent).exists()
    assert CategorySuggestion.objects.get(ticket=ticket).outcome == SuggestionOutcome.ACCEPTED
    # Decided: the panel no longer offers the button.
    expect(page.get_by_test_id("triage-outcome")).to_have_attribute("data-outcome", "accepted")
    expect(page.get_by_test_id("triage-accept")).to_have_count(0)
