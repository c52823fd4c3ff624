"""What one intake costs in SQL, and that the per-process reference caches it relies on
(channels, SLA policies, risk settings) never serve a stale row."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels import selectors
from complaints.models import Priority, Ticket
from sla import risks
from sla import services as sla
from sla.models import RiskAlert, RiskKind, RiskSettings, SlaPolicy
from tests.factories import ChannelFactory, leaf_category

from .test_intake import payload, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def wechat(db):
    return ChannelFactory(code="wechat-main", name="微信公众号")


def statements(ctx) -> list[str]:
    # Savepoints are the test's own transaction wrapping the intake's atomic block.
    return [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_a_new_customer_costs_ten_statements(wechat):
    post(wechat, payload("warm-up", customer={"phone": "13900000001"}))  # fill the caches
    with CaptureQueriesContext(connection) as ctx:
        response = post(wechat, payload("new-1", customer={"phone": "13900000002"}))
    assert response.status_code == 201
    sql = statements(ctx)
    # replay check, identity + customer-row lookups, customer, identity, day counter,
    # ticket, clocks, contact, timeline event: nothing for channel, policy or settings.
    # On PostgreSQL the day counter runs on the numbers' own connection (numbering.py).
    own_connection = connection.vendor == "postgresql"
    assert len(sql) == 10 - own_connection, "\n".join(sql)
    assert any("ticketsequence" in s for s in sql) != own_connection
    assert not any("channels_channel" in s and s.startswith("SELECT") for s in sql)
    assert not any("sla_slapolicy" in s or "sla_risksettings" in s for s in sql)


def test_a_returning_customer_joining_an_open_ticket_stays_bounded(wechat):
    post(wechat, payload("first"))
    with CaptureQueriesContext(connection) as ctx:
        response = post(wechat, payload("second"))  # same customer, same order
    assert response.status_code == 200 and response.json()["created"] is False
    assert len(statements(ctx)) <= 16, "\n".join(statements(ctx))


def test_a_deactivated_channel_is_refused_at_once(wechat):
    assert post(wechat, payload("before")).status_code == 201
    wechat.is_active = False
    wechat.save()
    assert post(wechat, payload("after")).status_code == 401


def test_a_rotated_secret_is_refused_at_once(wechat):
    from channels.services import channel_rotate_secret

    old_secret = wechat.secret
    assert post(wechat, payload("before")).status_code == 201
    channel_rotate_secret(channel=wechat)
    assert post(wechat, payload("after"), secret=old_secret).status_code == 401


def test_other_processes_reload_the_channels_after_commit(
    wechat, django_capture_on_commit_callbacks
):
    selectors.channels_cache.get()
    before = cache.get(selectors.channels_cache.generation_key)
    with django_capture_on_commit_callbacks(execute=True):
        ChannelFactory(code="app", name="App")
    assert cache.get(selectors.channels_cache.generation_key) != before
    assert "app" in {c.code for c in selectors.channels_cache.get().values()}


def test_a_channel_written_without_signals_shows_within_max_age(wechat, monkeypatch):
    from channels.models import Channel

    selectors.channels_cache.get()
    Channel.objects.filter(pk=wechat.pk).update(is_active=False)  # no signal fires
    assert selectors.channel_for_key(wechat.key).is_active  # the cached copy, for now
    monkeypatch.setattr(selectors.channels_cache, "max_age", 0)
    assert not selectors.channel_for_key(wechat.key).is_active


def test_a_published_policy_applies_to_the_next_intake(wechat):
    post(wechat, payload("warm-up", customer={"phone": "13900000001"}))
    policy = SlaPolicy.objects.get(priority=Priority.P3, category=None, channel=None)
    policy.first_response_minutes = 90
    policy.save()
    sla.policy_publish(policy)
    post(wechat, payload("after-edit", customer={"phone": "13900000002"}))
    ticket = Ticket.objects.get(contacts__external_id="after-edit")
    assert ticket.first_response_due_at - ticket.created_at == sla.dt.timedelta(minutes=90)


def test_the_category_hint_picks_the_category_policy_at_intake(wechat):
    special = SlaPolicy.objects.create(
        name="物流 P3",
        priority=Priority.P3,
        category=leaf_category("logistics"),
        first_response_minutes=30,
    )
    sla.policy_publish(special)
    post(wechat, payload("hinted", category_hint="logistics"))
    ticket = Ticket.objects.get(contacts__external_id="hinted")
    assert ticket.category.code == "logistics"
    assert ticket.first_response_due_at - ticket.created_at == sla.dt.timedelta(minutes=30)


def test_edited_risk_settings_apply_to_the_next_intake(wechat):
    post(wechat, payload("warm-up", customer={"phone": "13900000001"}))
    assert risks.current_settings().words()  # cached now
    settings = RiskSettings.load()
    settings.media_words = "曝光台"
    settings.save()
    post(wechat, payload("media", customer={"phone": "13900000002"}, body="再不处理就去曝光台"))
    ticket = Ticket.objects.get(contacts__external_id="media")
    assert RiskAlert.objects.filter(ticket=ticket, kind=RiskKind.MEDIA_WORDS).exists()


def test_a_new_customer_back_within_a_day_is_still_flagged(wechat):
    # The new-customer shortcut must not hide the second contact of the same person.
    post(wechat, payload("one", customer={"phone": "13900000003"}, order_no="A1"))
    post(wechat, payload("two", customer={"phone": "13900000003"}, order_no="B2"))
    second = Ticket.objects.get(contacts__external_id="two")
    assert second.recontact_flagged_at is not None
    assert RiskAlert.objects.filter(ticket=second, kind=RiskKind.REPEAT_CONTACT).exists()


def routed_by_rule(first_response_minutes=30):
    """A routing rule classifying delivery complaints, and a policy for that category."""
    from complaints.models import Impact, Level
    from triage.models import RoutingRule

    logistics = leaf_category("logistics")
    RoutingRule.objects.create(
        name="物流",
        keywords="快递",
        set_category=logistics,
        set_amount_level=Level.LOW,
        set_impact=Impact.INDIVIDUAL,
        set_urgency=Level.MEDIUM,
    )
    policy = SlaPolicy.objects.create(
        name="物流 P3",
        priority=Priority.P3,
        category=logistics,
        first_response_minutes=first_response_minutes,
    )
    sla.policy_publish(policy)
    return logistics


def test_a_new_customer_classified_by_a_rule_does_not_read_back_what_it_wrote(wechat):
    """The routing rules classify the new ticket in the same transaction: its clocks are
    retargeted and saved from the rows just written, and a customer created with the
    ticket has no closed ticket to repeat."""
    logistics = routed_by_rule(first_response_minutes=30)
    post(wechat, payload("warm-up", customer={"phone": "13900000001"}, body="快递没到"))
    with CaptureQueriesContext(connection) as ctx:
        response = post(
            wechat, payload("routed", customer={"phone": "13900000002"}, body="快递三天没到")
        )
    assert response.status_code == 201
    sql = statements(ctx)
    assert not any(s.startswith("SELECT") and 'FROM "sla_clock"' in s for s in sql), sql
    assert not any('"closed_at" >=' in s and '"customer_id" =' in s for s in sql), sql
    ticket = Ticket.objects.get(contacts__external_id="routed")
    assert ticket.category == logistics and ticket.status == "classified"
    # The clocks moved to the category's policy, in the table as on the ticket.
    clock = ticket.sla_clocks.get(stage="first_response")
    assert clock.policy_version.policy.category == logistics
    assert clock.due_at == ticket.first_response_due_at
    assert ticket.first_response_due_at - ticket.created_at == sla.dt.timedelta(minutes=30)


def test_a_returning_customer_classified_by_a_rule_is_still_a_repeat(wechat):
    from complaints.models import Status

    routed_by_rule()
    post(wechat, payload("first", customer={"phone": "13900000004"}, body="快递没到"))
    first = Ticket.objects.get(contacts__external_id="first")
    Ticket.objects.filter(pk=first.pk).update(
        status=Status.CLOSED, closed_at=first.created_at
    )  # closed since
    post(
        wechat,
        payload("again", customer={"phone": "13900000004"}, order_no="B2", body="快递又没到"),
    )
    again = Ticket.objects.get(contacts__external_id="again")
    assert again.pk != first.pk
    assert RiskAlert.objects.filter(ticket=again, kind=RiskKind.REPEAT_COMPLAINT).exists()
