"""The twelve risk signals, each once per ticket, and the risk board."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from complaints import services
from complaints.models import Customer, Impact, Level
from sla import risks
from sla import services as sla
from sla.models import RiskAlert, RiskKind, RiskSettings
from tests.conftest import drive
from tests.factories import CustomerFactory, leaf_category, make_ticket
from tests.sla.conftest import T0
from tests.sla.test_clocks import respond

H = dt.timedelta(hours=1)


def kinds(ticket) -> set[str]:
    return set(RiskAlert.objects.filter(ticket=ticket).values_list("kind", flat=True))


def classify(ticket, actor, category="logistics"):
    services.ticket_classify(
        ticket=ticket.number,
        actor=actor,
        category=leaf_category(category),
        amount_level=Level.LOW,
        impact=Impact.INDIVIDUAL,
        urgency=Level.MEDIUM,
    )


def test_a_plain_ticket_raises_nothing(clock_at, ticket, agent):
    drive(ticket, agent, "first_responded")
    risks.scan()
    assert kinds(ticket) == set()


def test_1_customer_contacts_again_within_24_hours(clock_at, customer, channel, team_a):
    make_ticket(customer=customer, channel=channel, team=team_a)
    clock_at.shift(2 * H)
    again = make_ticket(customer=customer, channel=channel, team=team_a)
    assert kinds(again) == {RiskKind.REPEAT_CONTACT}
    clock_at.shift(30 * H)
    later = make_ticket(customer=customer, channel=channel, team=team_a)
    assert RiskKind.REPEAT_CONTACT not in kinds(later)


def test_1_a_further_contact_on_the_same_ticket(clock_at, ticket, channel):
    clock_at.shift(3 * H)
    contact = ticket.contacts.create(channel=channel, body="怎么还没人联系我")
    risks.on_contact(ticket, contact)
    assert kinds(ticket) == {RiskKind.REPEAT_CONTACT}


def test_2_first_response_overdue(clock_at, ticket, agent):
    drive(ticket, agent, "assigned")
    clock_at.move_to(T0 + 4 * H)
    sla.sweep()
    assert kinds(ticket) == {RiskKind.FIRST_RESPONSE_OVERDUE}


def test_3_solution_overdue(clock_at, ticket, agent):
    drive(ticket, agent, "assigned")
    respond(ticket, agent)
    clock_at.move_to(T0 + 72 * H)
    sla.sweep()
    sla.sweep()
    assert kinds(ticket) == {RiskKind.SOLUTION_OVERDUE}
    assert RiskAlert.objects.filter(ticket=ticket).count() == 1


def test_4_satisfaction_below_six_hook(ticket):
    assert risks.on_satisfaction(ticket, 6) is False
    assert risks.on_satisfaction(ticket, 5) is True
    assert risks.on_satisfaction(ticket, 2) is True  # still one alert
    assert RiskAlert.objects.filter(ticket=ticket, kind=RiskKind.LOW_SATISFACTION).count() == 1


def test_5_media_and_regulator_words(customer, channel, team_a):
    ticket = make_ticket(
        customer=customer, channel=channel, team=team_a, body="再不处理我就打12315，还要找记者曝光"
    )
    alert = RiskAlert.objects.get(ticket=ticket, kind=RiskKind.MEDIA_WORDS)
    assert "12315" in alert.message and "记者" in alert.message and "曝光" in alert.message


def test_5_the_word_list_is_editable(customer, channel, team_a):
    RiskSettings.objects.create(media_words="央视, 微博热搜")
    ticket = make_ticket(customer=customer, channel=channel, team=team_a, body="我要上微博热搜")
    assert kinds(ticket) == {RiskKind.MEDIA_WORDS}
    plain = make_ticket(customer=CustomerFactory(), channel=channel, team=team_a, body="找记者")
    assert kinds(plain) == set()


def test_6_repeat_complaint_within_30_days(clock_at, customer, channel, team_a, agent):
    first = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(first, agent, "closed")
    clock_at.shift(10 * 24 * H)
    second = make_ticket(customer=customer, channel=channel, team=team_a)
    classify(second, agent)
    assert RiskKind.REPEAT_COMPLAINT in kinds(second)
    assert first.number in RiskAlert.objects.get(ticket=second, kind="repeat_complaint").message
    clock_at.shift(40 * 24 * H)
    third = make_ticket(customer=customer, channel=channel, team=team_a)
    classify(third, agent, "quality")
    assert RiskKind.REPEAT_COMPLAINT not in kinds(third)


def test_7_compensation_request_above_the_ceiling(ticket, agent):
    services.compensation_grant(
        ticket=ticket.number,
        actor=agent,
        kind="refund",
        amount="50",
        reason="部分退款",
        request=True,
    )
    risks.scan()
    assert kinds(ticket) == set()
    services.compensation_grant(
        ticket=ticket.number,
        actor=agent,
        kind="refund",
        amount="150",
        reason="全额退款",
        request=True,
    )
    risks.scan()
    risks.scan()
    assert kinds(ticket) == {RiskKind.COMPENSATION_ABOVE_CEILING}


def test_8_task_unclaimed_past_its_response_deadline(clock_at, ticket, agent):
    services.task_open(
        ticket=ticket.number,
        actor=agent,
        specs=[services.TaskSpec(department="logistics", responsibility="查件")],
        instruction="核实物流",
    )
    clock_at.shift(3 * H)
    risks.scan()
    assert kinds(ticket) == set()
    clock_at.shift(2 * H)  # logistics must respond within 4 h
    risks.scan()
    assert kinds(ticket) == {RiskKind.TASK_UNCLAIMED}


def test_9_assigned_three_times(ticket, senior, agent, agent2):
    classify(ticket, senior)
    for who in (agent, agent2):
        services.ticket_assign(ticket=ticket.number, actor=senior, assignee=who)
    risks.scan()
    assert kinds(ticket) == set()
    services.ticket_assign(ticket=ticket.number, actor=senior, assignee=agent)
    risks.scan()
    assert kinds(ticket) == {RiskKind.REASSIGNED}


def test_10_three_departments_involved(ticket, agent):
    specs = [
        services.TaskSpec(department=code, responsibility="协查")
        for code in ("logistics", "tech", "installation")
    ]
    services.task_open(ticket=ticket.number, actor=agent, specs=specs, instruction="会诊")
    risks.scan()
    assert kinds(ticket) == {RiskKind.MANY_DEPARTMENTS}


def test_11_vip_customer(channel, team_a):
    vip = Customer.objects.create(name="李先生", phone="+8613900000001", vip_level=2)
    ticket = make_ticket(customer=vip, channel=channel, team=team_a)
    assert kinds(ticket) == {RiskKind.VIP}


def test_12_category_volume_spike(clock_at, channel, team_a, agent):
    for day in range(1, 8):  # one logistics ticket a day for the past week
        with_day = make_ticket(customer=CustomerFactory(), channel=channel, team=team_a)
        with_day.created_at = T0 - day * 24 * H
        with_day.save(update_fields=["created_at"])
        classify(with_day, agent)
    today = [
        make_ticket(customer=CustomerFactory(), channel=channel, team=team_a) for _ in range(6)
    ]
    for ticket in today[:4]:
        classify(ticket, agent)
    assert not RiskAlert.objects.filter(kind=RiskKind.CATEGORY_SPIKE).exists()
    classify(today[4], agent)  # 5 today against 1 a day: a spike
    classify(today[5], agent)
    spikes = RiskAlert.objects.filter(kind=RiskKind.CATEGORY_SPIKE)
    assert [a.ticket_id for a in spikes] == [today[4].pk]  # once a day per category


def _spike_statements(ticket) -> list[str]:
    """The SQL the spike check runs for this ticket (before its own classification)."""
    with CaptureQueriesContext(connection) as ctx:
        risks._category_spike(ticket, risks.current_settings(), timezone.now())
    return [q["sql"] for q in ctx.captured_queries]


def _spike_minimum(count: int) -> RiskSettings:
    settings = RiskSettings.load()
    settings.spike_min_count = count
    settings.save()
    return settings


def _new_tickets(n, channel, team) -> list:
    return [make_ticket(customer=CustomerFactory(), channel=channel, team=team) for _ in range(n)]


def test_12_the_spike_check_does_not_grow_with_the_days_volume(clock_at, channel, team_a, agent):
    _spike_minimum(3)
    tickets = _new_tickets(8, channel, team_a)
    for ticket in tickets[:2]:
        classify(ticket, agent)
    candidate = tickets[2]
    candidate.category = leaf_category("logistics")
    # Before the spike: today's tickets are counted only up to the threshold (3).
    sql = _spike_statements(candidate)
    today_count = [q for q in sql if "COUNT" in q.upper() and "LIMIT" in q.upper()]
    assert len(today_count) == 1 and "LIMIT 3" in today_count[0]
    classify(tickets[2], agent)  # the third today: the spike
    assert RiskAlert.objects.filter(kind=RiskKind.CATEGORY_SPIKE, ticket=tickets[2]).exists()
    # After it: one look at the alerts, then nothing for the rest of the day.
    later = tickets[3]
    later.category = leaf_category("logistics")
    assert len(_spike_statements(later)) == 1
    assert _spike_statements(later) == []
    for ticket in tickets[3:]:
        classify(ticket, agent)
    assert RiskAlert.objects.filter(kind=RiskKind.CATEGORY_SPIKE).count() == 1
    # The next day starts afresh.
    clock_at.shift(24 * H)
    assert _spike_statements(later) != []


def test_12_the_spike_message_gives_the_exact_count(clock_at, channel, team_a, agent):
    _spike_minimum(10)
    tickets = _new_tickets(5, channel, team_a)
    for ticket in tickets[:4]:
        classify(ticket, agent)
    assert not RiskAlert.objects.filter(kind=RiskKind.CATEGORY_SPIKE).exists()
    _spike_minimum(3)  # an admin lowers the threshold when the category has four today
    classify(tickets[4], agent)
    alert = RiskAlert.objects.get(kind=RiskKind.CATEGORY_SPIKE, ticket=tickets[4])
    assert " 5 " in alert.message, alert.message
    assert "3" not in alert.message


def test_invalid_settings_are_refused():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        RiskSettings(spike_factor=0, assignment_count=1).full_clean()


# --- the risk board -------------------------------------------------------------------------


@pytest.fixture
def alerts(customer, channel, team_a, team_b):
    mine = make_ticket(customer=customer, channel=channel, team=team_a, body="我要找律师起诉")
    theirs = make_ticket(customer=CustomerFactory(), channel=channel, team=team_b, body="去消协")
    return mine, theirs


def test_board_shows_a_lead_their_team_and_supervisors_everything(
    login, senior, supervisor, alerts, django_assert_max_num_queries
):
    mine, theirs = alerts
    url = reverse("sla:risks")
    client = login(senior)
    with django_assert_max_num_queries(6):
        body = client.get(url).content.decode()
    assert mine.number in body and theirs.number not in body
    body = login(supervisor).get(url, {"kind": "media_words"}).content.decode()
    assert body.count('data-testid="risk-row"') == 2


def test_acknowledge(login, senior, other_agent, supervisor, alerts):
    mine, theirs = alerts
    alert = RiskAlert.objects.get(ticket=mine)
    client = login(senior)
    url = reverse("sla:risk-acknowledge", args=[alert.pk])
    assert client.post(url).status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == senior and alert.acknowledged_at is not None
    body = client.post(url, follow=True).content.decode()
    assert "already acknowledged" in body
    assert mine.number in client.get(reverse("sla:risks"), {"tab": "acknowledged"}).content.decode()
    other = RiskAlert.objects.get(ticket=theirs)
    client.post(reverse("sla:risk-acknowledge", args=[other.pk]))
    other.refresh_from_db()
    assert other.acknowledged_at is None  # another team's alert


def test_board_is_for_leads_only(login, agent, logistics):
    assert login(agent).get(reverse("sla:risks")).status_code == 403
    assert login(logistics).get(reverse("sla:risks")).status_code == 403
    assert login(agent).post(reverse("sla:risk-acknowledge", args=[1])).status_code == 302
