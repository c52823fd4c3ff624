"""The staff REST API: token, ticket list and detail, transitions, replies and error codes."""

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from complaints import selectors, services
from complaints.api import TRANSITIONS
from complaints.models import Category, EventKind, Impact, Level, Status, Ticket
from tests.conftest import PASSWORD, drive, first_response_text
from tests.factories import ChannelFactory, CustomerFactory, leaf_category, make_ticket

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
LIST_URL = "/api/v1/tickets/"


def detail_url(number):
    return f"/api/v1/tickets/{number}/"


def transition_url(number, name):
    return f"/api/v1/tickets/{number}/transitions/{name}/"


def replies_url(number):
    return f"/api/v1/tickets/{number}/replies/"


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Throttle counters live in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def anon():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def api_as():
    """An API client authenticated with the user's token (the real TokenAuthentication)."""

    def _as(user):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _as


def numbers(response):
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


def post(client, url, data=None):
    return client.post(url, data if data is not None else {}, format="json")


# --- token and authentication ---------------------------------------------------


def test_token_endpoint_gives_a_token_that_authenticates(anon, agent, ticket):
    response = anon.post(TOKEN_URL, {"username": "agent", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=agent).key

    anon.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert numbers(anon.get(LIST_URL)) == [ticket.number]


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "agent", "password": "wrong"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "agent"},
        {},
        {"username": ["agent"], "password": PASSWORD},
    ],
)
def test_token_endpoint_refuses_bad_credentials(anon, agent, payload):
    response = anon.post(TOKEN_URL, payload, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()
    assert not Token.objects.exists()


def test_token_endpoint_refuses_inactive_user(anon, agent):
    agent.is_active = False
    agent.save()
    response = anon.post(TOKEN_URL, {"username": "agent", "password": PASSWORD}, format="json")
    assert response.status_code == 400


def test_token_endpoint_throttles_password_guessing(anon, agent):
    for _ in range(20):
        response = anon.post(TOKEN_URL, {"username": "agent", "password": "guess"}, format="json")
        assert response.status_code == 400
    response = anon.post(TOKEN_URL, {"username": "agent", "password": PASSWORD}, format="json")
    assert response.status_code == 429


def test_anonymous_gets_401_with_token_challenge(anon, ticket):
    for response in (
        anon.get(LIST_URL),
        anon.get(detail_url(ticket.number)),
        post(anon, transition_url(ticket.number, "start")),
        post(anon, replies_url(ticket.number), {"body": "hi"}),
    ):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"


def test_invalid_token_is_401(anon, ticket):
    anon.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert anon.get(LIST_URL).status_code == 401


def test_session_auth_works_and_writes_need_csrf(agent, ticket):
    client = APIClient(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(agent)
    assert numbers(client.get(LIST_URL)) == [ticket.number]
    assert client.get(detail_url(ticket.number)).json()["number"] == ticket.number

    # A logged-in browser session must not be usable cross-site without the CSRF token.
    response = post(client, replies_url(ticket.number), {"body": "您好", "internal": True})
    assert response.status_code == 403
    assert not ticket.events.filter(kind=EventKind.NOTE).exists()


def test_session_auth_via_django_test_client(client, agent, ticket):
    client.force_login(agent)
    response = client.get(LIST_URL)
    assert response.status_code == 200
    assert response.json()["count"] == 1


# --- list ------------------------------------------------------------------------


def test_list_shows_ticket_summary(api_as, agent, ticket):
    drive(ticket, agent, "assigned")
    row = api_as(agent).get(LIST_URL).json()["results"][0]
    assert row["number"] == ticket.number
    assert row["status"] == Status.ASSIGNED
    assert row["customer"] == {
        "id": ticket.customer_id,
        "name": "王女士",
        "masked_phone": "138****1234",
        "vip_level": 0,
    }
    assert row["channel"]["code"] == "wechat-main"
    assert row["category"]["full_name"] == "物流配送"
    assert row["assignee"] == {"username": "agent", "name": "小李"}
    assert row["team"]["code"] == "team-a"
    assert row["version"] == ticket.version


def test_list_is_sorted_by_priority_then_due_time(api_as, agent, customer, channel, team_a):
    with time_machine.travel(timezone.now() - dt.timedelta(hours=2), tick=False):
        older = make_ticket(customer=customer, channel=channel, team=team_a, subject="旧")
    newer = make_ticket(customer=customer, channel=channel, team=team_a, subject="新")
    urgent = make_ticket(customer=customer, channel=channel, team=team_a, subject="急")
    services.ticket_classify(
        ticket=urgent.number,
        actor=agent,
        category=leaf_category(),
        amount_level=Level.LOW,
        impact=Impact.PUBLIC,
        urgency=Level.LOW,
    )
    # P1 first; then the P3 tickets by their next deadline (the older one is due first).
    assert numbers(api_as(agent).get(LIST_URL)) == [urgent.number, older.number, newer.number]


def test_list_is_paginated(api_as, agent, customer, channel, team_a):
    for _ in range(3):
        make_ticket(customer=customer, channel=channel, team=team_a)
    client = api_as(agent)
    assert client.get(LIST_URL).json()["count"] == 3
    first = client.get(LIST_URL, {"page_size": 2}).json()
    assert first["count"] == 3
    assert len(first["results"]) == 2
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1
    assert second["previous"] is not None
    assert client.get(LIST_URL, {"page": 99}).status_code == 404
    assert client.get(LIST_URL, {"page": "x" * 50}).status_code == 404
    # page_size is capped; junk falls back to the default.
    assert len(client.get(LIST_URL, {"page_size": 10**9}).json()["results"]) == 3
    assert len(client.get(LIST_URL, {"page_size": "-1"}).json()["results"]) == 3


@pytest.mark.parametrize("persona", ["logistics", "tech", "outsider"])
def test_list_is_empty_for_department_staff_and_users_without_role(
    api_as, ticket, persona, request
):
    response = api_as(request.getfixturevalue(persona)).get(LIST_URL)
    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert response.json()["results"] == []


@pytest.fixture
def assorted(agent, agent2, senior, customer, channel, team_a, team_b):
    """Tickets that differ in each filtered attribute."""
    hotline = ChannelFactory(code="hotline", name="热线")
    other_customer = CustomerFactory(name="赵先生", phone="+8613911112222")
    received = make_ticket(
        customer=customer,
        channel=channel,
        team=team_a,
        subject="Parcel LOST in transit",
        order_no="SO-7788",
    )
    mine = drive(
        make_ticket(customer=customer, channel=channel, team=team_a, subject="快递破损"),
        agent,
        "in_progress",
    )
    by_agent2 = drive(
        make_ticket(
            customer=other_customer,
            channel=hotline,
            team=team_a,
            subject="热线投诉",
            body="安装师傅迟到三个小时",
        ),
        agent2,
        "assigned",
    )
    install = make_ticket(customer=other_customer, channel=hotline, team=team_a, subject="安装延误")
    services.ticket_classify(
        ticket=install.number,
        actor=senior,
        category=Category.objects.get(code="install-delay"),
        amount_level=Level.HIGH,
        impact=Impact.GROUP,
        urgency=Level.MEDIUM,
    )
    return {
        "received": received,
        "mine": mine,
        "by_agent2": by_agent2,
        "install": Ticket.objects.get(pk=install.pk),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "received"}, ["received"]),
        ({"status": "in_progress"}, ["mine"]),
        ({"status": "closed"}, []),
        ({"priority": 2}, ["install"]),
        ({"channel": "hotline"}, ["by_agent2", "install"]),
        ({"assignee": "agent2"}, ["by_agent2"]),
        ({"assignee": "senior"}, []),
        ({"q": "lost"}, ["received"]),  # case-insensitive on the subject
        ({"q": "迟到"}, ["by_agent2"]),  # the description
        ({"q": "so-778"}, ["received"]),  # part of the order number
        ({"q": "139 1111 2222"}, ["by_agent2", "install"]),  # the customer's phone, any format
        ({"q": "+86 139-1111-2222"}, ["by_agent2", "install"]),
        ({"q": "1111"}, []),  # part of a phone is not a phone
        ({"status": "assigned", "channel": "hotline"}, ["by_agent2"]),
    ],
)
def test_list_filters_narrow_the_results(api_as, agent, assorted, params, expected):
    got = numbers(api_as(agent).get(LIST_URL, params))
    assert sorted(got) == sorted(assorted[name].number for name in expected)


def test_list_filter_by_ticket_number(api_as, agent, assorted):
    number = assorted["mine"].number
    assert numbers(api_as(agent).get(LIST_URL, {"q": number.lower()})) == [number]


def test_list_filter_by_category_leaf_and_root(api_as, agent, assorted):
    client = api_as(agent)
    logistics = leaf_category("logistics")
    after_sales = Category.objects.get(code="after-sales")
    install_delay = Category.objects.get(code="install-delay")
    assert sorted(numbers(client.get(LIST_URL, {"category": logistics.pk}))) == sorted(
        [assorted["mine"].number, assorted["by_agent2"].number]
    )
    # A root category matches the tickets of its subcategories.
    assert numbers(client.get(LIST_URL, {"category": after_sales.pk})) == [
        assorted["install"].number
    ]
    assert numbers(client.get(LIST_URL, {"category": install_delay.pk})) == [
        assorted["install"].number
    ]
    assert numbers(client.get(LIST_URL, {"category": 999_999})) == []


def test_list_filter_by_sla_state(api_as, agent, customer, channel, team_a):
    now = timezone.now()
    # First response is due 4 h after receipt.
    with time_machine.travel(now - dt.timedelta(hours=5), tick=False):
        breached = make_ticket(customer=customer, channel=channel, team=team_a)
    with time_machine.travel(now - dt.timedelta(hours=3, minutes=30), tick=False):
        due_soon = make_ticket(customer=customer, channel=channel, team=team_a)
    on_track = make_ticket(customer=customer, channel=channel, team=team_a)
    with time_machine.travel(now - dt.timedelta(days=10), tick=False):
        closed = drive(
            make_ticket(customer=customer, channel=channel, team=team_a), agent, "closed"
        )
    client = api_as(agent)
    assert numbers(client.get(LIST_URL, {"sla": "breached"})) == [breached.number]
    assert numbers(client.get(LIST_URL, {"sla": "due_soon"})) == [due_soon.number]
    assert sorted(numbers(client.get(LIST_URL, {"sla": "ok"}))) == sorted(
        [on_track.number, closed.number]
    )


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"priority": "9"},
        {"priority": "high"},
        {"category": "abc"},
        {"category": "1.5"},
        {"category": "9" * 40},
        {"category": "-3"},
        {"sla": "late"},
        {"q": "a\x00b"},
        {"channel": "x\x00"},
        {"q": "x" * 500},
    ],
)
def test_list_refuses_junk_filters_with_400_naming_the_parameter(api_as, agent, ticket, params):
    response = api_as(agent).get(LIST_URL, params)
    assert response.status_code == 400
    assert set(response.json()) == set(params)


def _list_tickets(count, agent, customer, channel, team_a):
    for i in range(count):
        t = make_ticket(customer=customer, channel=channel, team=team_a, subject=f"投诉 {i}")
        if i % 2:
            drive(t, agent, "assigned")  # with category, assignee and team to load


@pytest.mark.parametrize("auth", ["token", "session"])
def test_list_query_count_does_not_grow_with_page_size(
    api_as, agent, customer, channel, team_a, django_assert_num_queries, auth
):
    if auth == "token":
        client = api_as(agent)
    else:
        client = APIClient()
        client.force_login(agent)
    _list_tickets(3, agent, customer, channel, team_a)
    with CaptureQueriesContext(connection) as three:
        assert len(numbers(client.get(LIST_URL))) == 3
    _list_tickets(17, agent, customer, channel, team_a)
    with django_assert_num_queries(len(three.captured_queries)):
        assert len(numbers(client.get(LIST_URL, {"sla": "ok", "q": "投诉"}))) == 20
    # DESIGN.md §9: the staff list stays within 8 queries.
    assert len(three.captured_queries) <= 8


# --- detail ----------------------------------------------------------------------


def test_detail_shows_the_ticket_timeline_contacts_and_evidence(api_as, agent, ticket):
    drive(ticket, agent, "in_progress")
    services.attachment_add(
        ticket=ticket.number,
        actor=agent,
        uploaded=SimpleUploadedFile("签收单.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100),
    )
    response = api_as(agent).get(detail_url(ticket.number))
    assert response.status_code == 200
    data = response.json()
    ticket.refresh_from_db()
    assert data["number"] == ticket.number
    assert data["status"] == "in_progress"
    assert data["status_display"] == "In progress"
    assert data["customer"]["masked_phone"] == "138****1234"
    assert "13800001234" not in response.content.decode()
    assert data["category"]["full_name"] == "物流配送"
    assert (data["amount_level"], data["impact"], data["urgency"]) == (1, 1, 2)
    assert data["team"] == {"code": "team-a", "name": "客服一组"}
    assert data["order_no"] == "SO20261122001"
    assert data["promised_followup_at"] is not None
    assert data["first_responded_at"] is not None
    assert data["started_at"] is not None
    assert data["due_at"] is not None
    assert data["version"] == ticket.version
    assert data["merged_into"] is None
    assert data["available_actions"] == ["resolve", "merge"]
    kinds = [event["kind"] for event in data["events"]]
    assert kinds == ["created", "classified", "assigned", "first_response", "started", "attachment"]
    assigned = data["events"][2]
    assert assigned["actor"] == "agent"
    assert assigned["before"]["status"] == "classified"
    assert assigned["after"] == {"status": "assigned", "assignee": "agent", "team": "客服一组"}
    assert [c["channel"] for c in data["contacts"]] == ["wechat-main"]
    (attachment,) = data["attachments"]
    assert attachment["name"] == "签收单.png"
    assert attachment["size"] == 108
    assert attachment["url"] == (
        f"http://testserver/tickets/{ticket.number}/attachments/{attachment['id']}/"
    )


def test_detail_available_actions_follow_the_user(api_as, agent, agent2, senior, ticket):
    fresh = {
        user.username: api_as(user).get(detail_url(ticket.number)).json()
        for user in (agent, senior)
    }
    assert fresh["agent"]["available_actions"] == ["classify"]
    assert fresh["senior"]["available_actions"] == ["classify", "merge"]
    drive(ticket, agent, "in_progress")
    actions = {
        user.username: api_as(user).get(detail_url(ticket.number)).json()["available_actions"]
        for user in (agent, agent2, senior)
    }
    assert actions == {
        "agent": ["resolve", "merge"],  # the owner works the ticket
        "agent2": [],  # a colleague's ticket: nothing to press
        "senior": ["assign", "resolve", "merge"],  # a lead may also reassign
    }
    for user in (agent, agent2, senior):
        assert actions[user.username] == selectors.available_actions(user, ticket)


def test_detail_query_count_is_bounded(
    api_as, agent, senior, ticket, customer, channel, team_a, django_assert_num_queries
):
    client = api_as(agent)
    with CaptureQueriesContext(connection) as fresh:
        assert client.get(detail_url(ticket.number)).status_code == 200
    # More events, contacts and evidence do not add queries.
    drive(ticket, agent, "in_progress")
    for i in range(5):
        services.ticket_reply(ticket=ticket.number, actor=agent, body=f"回复 {i}")
        services.attachment_add(
            ticket=ticket.number,
            actor=agent,
            uploaded=SimpleUploadedFile(f"note{i}.txt", b"evidence"),
        )
    duplicate = make_ticket(customer=customer, channel=channel, team=team_a)
    services.ticket_merge(ticket=duplicate.number, actor=senior, into=ticket.number)
    with django_assert_num_queries(len(fresh.captured_queries)):
        data = client.get(detail_url(ticket.number)).json()
    assert len(data["events"]) > 15
    assert len(data["contacts"]) == 2
    assert len(data["attachments"]) == 5
    # DESIGN.md §9: the ticket page within 12 queries.
    assert len(fresh.captured_queries) <= 12


@pytest.mark.parametrize("persona", ["logistics", "tech", "outsider"])
def test_detail_is_404_for_those_who_cannot_see_tickets(api_as, ticket, persona, request):
    response = api_as(request.getfixturevalue(persona)).get(detail_url(ticket.number))
    assert response.status_code == 404


@pytest.mark.parametrize("number", ["TS20000101-000001", "nope", "%00", "TS%2F1", "票"])
def test_detail_of_unknown_ticket_is_404(api_as, agent, ticket, number):
    assert api_as(agent).get(detail_url(number)).status_code == 404


# --- transitions -----------------------------------------------------------------


def classify_payload(**overrides):
    return {
        "category": leaf_category().pk,
        "amount_level": 1,
        "impact": 1,
        "urgency": 2,
        **overrides,
    }


def resolve_payload(**overrides):
    return {
        "solution": "补发商品并赠送优惠券",
        "responsible_person": "物流部 刘师傅",
        "resolution_time": timezone.now().isoformat(),
        "evidence_ref": "快递单号 SF123456",
        **overrides,
    }


def first_response_payload(ticket, **overrides):
    return {
        "message": first_response_text(ticket),
        "promised_followup_at": (timezone.now() + dt.timedelta(days=1)).isoformat(),
        **overrides,
    }


def test_whole_loop_through_the_api(api_as, agent, ticket):
    client = api_as(agent)
    steps = [
        ("classify", classify_payload(), "classified"),
        ("assign", {"assignee": "agent"}, "assigned"),
        ("first_response", first_response_payload(ticket), "assigned"),
        ("start", {}, "in_progress"),
        ("resolve", resolve_payload(), "resolved"),
        ("follow_up", {"note": "回访客户，已收到补发，表示满意"}, "followed_up"),
        ("close", {}, "closed"),
        ("reopen", {"reason": "客户反馈商品仍有破损"}, "in_progress"),
    ]
    version = ticket.version
    for name, payload, status in steps:
        response = post(
            client, transition_url(ticket.number, name), {**payload, "version": version}
        )
        assert response.status_code == 200, (name, response.content)
        data = response.json()
        assert data["status"] == status, name
        assert data["version"] == version + 1
        version = data["version"]

    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS
    assert ticket.reopen_count == 1
    assert ticket.assignee == agent
    assert ticket.responsible_person == "物流部 刘师傅"
    assert [e["kind"] for e in data["events"]] == [
        "created",
        "classified",
        "assigned",
        "first_response",
        "started",
        "resolved",
        "survey_sent",
        "callback",
        "followed_up",
        "closed",
        "reopened",
    ]
    assert all(e["actor"] == "agent" for e in data["events"][1:])
    assert data["available_actions"] == ["resolve", "merge"]


def test_assign_to_a_named_agent_and_team_by_a_senior(api_as, senior, agent2, ticket):
    drive(ticket, senior, "classified")
    response = post(
        api_as(senior),
        transition_url(ticket.number, "assign"),
        {"assignee": "agent2", "team": "team-a"},
    )
    assert response.status_code == 200
    assert response.json()["assignee"]["username"] == "agent2"
    assert response.json()["team"]["code"] == "team-a"


def test_merge_through_the_api(api_as, agent, ticket, customer, channel, team_a):
    duplicate = make_ticket(customer=customer, channel=channel, team=team_a)
    drive(duplicate, agent, "classified")
    response = post(
        api_as(agent), transition_url(duplicate.number, "merge"), {"into": ticket.number}
    )
    # A tier-1 agent merges only tickets they own.
    assert response.status_code == 403
    services.ticket_assign(ticket=duplicate.number, actor=agent, assignee=agent)
    response = post(
        api_as(agent), transition_url(duplicate.number, "merge"), {"into": ticket.number}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "merged"
    assert response.json()["merged_into"] == ticket.number
    assert response.json()["contacts"] == []
    assert ticket.contacts.count() == 2


def test_escalate_through_the_api(api_as, agent, ticket):
    client = api_as(agent)
    response = post(
        client,
        transition_url(ticket.number, "escalate"),
        {"reason": "客户扬言投诉到 12315", "version": ticket.version},
    )
    assert response.status_code == 200
    assert response.json()["escalation_level"] == 1
    assert response.json()["events"][-1]["kind"] == "escalated"
    # The same (now stale) version again is refused.
    response = post(
        client,
        transition_url(ticket.number, "escalate"),
        {"reason": "再次升级", "version": ticket.version},
    )
    assert response.status_code == 409
    response = post(client, transition_url(ticket.number, "escalate"), {"reason": ""})
    assert response.status_code == 400
    assert "reason" in response.json()
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1


def _assert_refused(response, code, ticket, *fields):
    assert response.status_code == code, response.content
    body = response.json()
    for field in fields:
        assert field in body, body
    before = ticket.version
    ticket.refresh_from_db()
    assert ticket.version == before, "a refused request changed the ticket"


def test_classify_refusals_name_the_missing_fields(api_as, agent, ticket):
    client = api_as(agent)
    url = transition_url(ticket.number, "classify")
    _assert_refused(
        post(client, url, {}), 400, ticket, "category", "amount_level", "impact", "urgency"
    )
    response = post(client, url, classify_payload(impact=None))
    _assert_refused(response, 400, ticket, "impact")
    assert response.json()["impact"] == ["Grade the impact."]
    response = post(client, url, classify_payload(category=999_999))
    _assert_refused(response, 400, ticket, "category")
    assert response.json()["category"] == ["No category with id 999999."]
    root = Category.objects.get(code="after-sales")
    response = post(client, url, classify_payload(category=root.pk))
    _assert_refused(response, 400, ticket, "category")
    assert response.json()["category"] == ["Choose a subcategory of 售后服务."]
    _assert_refused(post(client, url, classify_payload(urgency=7)), 400, ticket, "urgency")


def test_assign_refusals(api_as, agent, agent2, senior, logistics, ticket):
    client = api_as(agent)
    url = transition_url(ticket.number, "assign")
    _assert_refused(
        post(client, url, {"assignee": "agent"}), 409, ticket, "detail"
    )  # not classified
    drive(ticket, agent, "classified")
    response = post(client, url, {"assignee": "ghost"})
    _assert_refused(response, 400, ticket, "assignee")
    assert response.json()["assignee"] == ["No user named “ghost”."]
    _assert_refused(post(client, url, {}), 400, ticket, "assignee")
    _assert_refused(post(client, url, {"assignee": "agent", "team": "nope"}), 400, ticket, "team")
    # A collaborating department is not a team that can own tickets.
    _assert_refused(
        post(client, url, {"assignee": "agent", "team": "logistics"}), 400, ticket, "team"
    )
    _assert_refused(post(api_as(senior), url, {"assignee": "logistics"}), 400, ticket, "assignee")
    # Tier-1 agents take tickets only for themselves.
    _assert_refused(post(client, url, {"assignee": "agent2"}), 403, ticket, "detail")


def test_first_response_refusals(api_as, agent, ticket):
    drive(ticket, agent, "assigned")
    client = api_as(agent)
    url = transition_url(ticket.number, "first_response")
    _assert_refused(post(client, url, {}), 400, ticket, "message", "promised_followup_at")
    response = post(client, url, first_response_payload(ticket, message="我们会尽快处理"))
    _assert_refused(response, 400, ticket, "message")
    assert ticket.number in response.json()["message"][0]
    past = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    _assert_refused(
        post(client, url, first_response_payload(ticket, promised_followup_at=past)),
        400,
        ticket,
        "promised_followup_at",
    )
    response = post(
        client, url, first_response_payload(ticket, promised_followup_at="2099-01-01T18:00:00")
    )
    _assert_refused(response, 400, ticket, "promised_followup_at")
    assert "UTC offset" in response.json()["promised_followup_at"][0]


def test_start_before_first_response_is_409(api_as, agent, ticket):
    drive(ticket, agent, "assigned")
    response = post(api_as(agent), transition_url(ticket.number, "start"))
    _assert_refused(response, 409, ticket, "detail")
    assert "first response" in response.json()["detail"]


def test_resolve_without_the_four_elements_names_them(api_as, agent, ticket):
    drive(ticket, agent, "in_progress")
    response = post(api_as(agent), transition_url(ticket.number, "resolve"), {})
    _assert_refused(response, 400, ticket, "detail")
    message = response.json()["detail"]
    for element in ("time", "responsible person", "solution", "evidence"):
        assert element in message
    response = post(
        api_as(agent), transition_url(ticket.number, "resolve"), resolve_payload(evidence_ref="")
    )
    _assert_refused(response, 400, ticket, "detail")
    missing = response.json()["detail"].split("missing:")[1]
    assert "evidence" in missing
    assert "solution" not in missing


def test_close_before_follow_up_is_409(api_as, agent, ticket):
    drive(ticket, agent, "resolved")
    response = post(api_as(agent), transition_url(ticket.number, "close"))
    _assert_refused(response, 409, ticket, "detail")
    assert "followed up" in response.json()["detail"]


def test_follow_up_reopen_merge_refusals(api_as, agent, ticket, channel, team_a):
    client = api_as(agent)
    drive(ticket, agent, "in_progress")
    _assert_refused(
        post(client, transition_url(ticket.number, "follow_up"), {"note": "ok"}),
        409,
        ticket,
        "detail",
    )
    _assert_refused(
        post(client, transition_url(ticket.number, "reopen"), {"reason": "x"}),
        409,
        ticket,
        "detail",
    )
    _assert_refused(post(client, transition_url(ticket.number, "merge"), {}), 400, ticket, "into")
    _assert_refused(
        post(client, transition_url(ticket.number, "merge"), {"into": "TS0-1"}), 400, ticket, "into"
    )
    stranger = make_ticket(customer=CustomerFactory(), channel=channel, team=team_a)
    _assert_refused(
        post(client, transition_url(ticket.number, "merge"), {"into": stranger.number}),
        400,
        ticket,
        "into",
    )
    services.ticket_resolve(
        ticket=ticket.number, actor=agent, **resolve_payload(resolution_time=timezone.now())
    )
    ticket.refresh_from_db()
    _assert_refused(
        post(client, transition_url(ticket.number, "follow_up"), {"note": "  "}),
        400,
        ticket,
        "note",
    )
    _assert_refused(
        post(client, transition_url(ticket.number, "reopen"), {}), 400, ticket, "reason"
    )


def test_tier1_agent_cannot_work_someone_elses_ticket(api_as, agent, agent2, ticket):
    drive(ticket, agent2, "in_progress")
    client = api_as(agent)
    for name, payload in [
        ("resolve", resolve_payload()),
        ("classify", classify_payload()),
        ("merge", {"into": "TS0-1"}),
    ]:
        response = post(client, transition_url(ticket.number, name), payload)
        _assert_refused(response, 403, ticket, "detail")
    assert post(client, replies_url(ticket.number), {"body": "您好"}).status_code == 403


def test_agent_of_another_team_is_403(api_as, other_agent, ticket):
    response = post(
        api_as(other_agent), transition_url(ticket.number, "classify"), classify_payload()
    )
    _assert_refused(response, 403, ticket, "detail")
    assert response.json()["detail"] == "This ticket belongs to another team."


@pytest.mark.parametrize("persona", ["logistics", "outsider"])
@pytest.mark.parametrize("name", ["classify", "assign", "start", "close", "escalate", "bogus"])
def test_transitions_are_404_for_those_who_cannot_see_tickets(
    api_as, ticket, persona, name, request
):
    response = post(
        api_as(request.getfixturevalue(persona)),
        transition_url(ticket.number, name),
        classify_payload(),
    )
    _assert_refused(response, 404, ticket)


def test_transition_on_unknown_ticket_or_name_is_404(api_as, agent, ticket):
    client = api_as(agent)
    assert (
        post(
            client, transition_url("TS20000101-000009", "classify"), classify_payload()
        ).status_code
        == 404
    )
    for name in ("approve", "delete", "CLASSIFY", "_transition"):
        _assert_refused(post(client, transition_url(ticket.number, name), {}), 404, ticket)


def test_stale_version_is_409_and_changes_nothing(api_as, agent, agent2, ticket):
    stale = ticket.version
    services.ticket_escalate(ticket=ticket.number, actor=agent2, reason="客户再次来电")
    ticket.refresh_from_db()
    response = post(
        api_as(agent), transition_url(ticket.number, "classify"), classify_payload(version=stale)
    )
    _assert_refused(response, 409, ticket, "detail")
    assert "changed by someone else" in response.json()["detail"]
    assert ticket.category_id is None
    ok = post(
        api_as(agent),
        transition_url(ticket.number, "classify"),
        classify_payload(version=ticket.version),
    )
    assert ok.status_code == 200


# --- replies ---------------------------------------------------------------------


def test_reply_and_internal_note(api_as, agent, ticket):
    drive(ticket, agent, "assigned")
    client = api_as(agent)
    response = post(client, replies_url(ticket.number), {"body": "您好，已为您催促快递。"})
    assert response.status_code == 201
    assert response.json()["kind"] == "reply"
    assert response.json()["actor"] == "agent"
    response = post(client, replies_url(ticket.number), {"body": "客户情绪激动", "internal": True})
    assert response.status_code == 201
    assert response.json()["kind"] == "note"
    assert list(ticket.events.values_list("kind", flat=True).order_by("-id")[:2]) == [
        "note",
        "reply",
    ]


def test_reply_refusals(api_as, agent, agent2, logistics, ticket):
    drive(ticket, agent, "closed")
    client = api_as(agent)
    _assert_refused(post(client, replies_url(ticket.number), {"body": "   "}), 400, ticket, "body")
    _assert_refused(
        post(client, replies_url(ticket.number), {"body": "x" * 5001}), 400, ticket, "body"
    )
    # A closed ticket takes internal notes only.
    _assert_refused(
        post(client, replies_url(ticket.number), {"body": "您好"}), 409, ticket, "detail"
    )
    assert (
        post(client, replies_url(ticket.number), {"body": "归档备注", "internal": True}).status_code
        == 201
    )
    ticket.refresh_from_db()
    _assert_refused(
        post(api_as(logistics), replies_url(ticket.number), {"body": "hi"}), 404, ticket
    )
    _assert_refused(
        post(client, replies_url(ticket.number), {"body": "x", "internal": "maybe"}),
        400,
        ticket,
        "internal",
    )


# --- junk input ------------------------------------------------------------------

TRANSITION_NAMES = [
    "classify",
    "assign",
    "first_response",
    "start",
    "resolve",
    "follow_up",
    "close",
    "reopen",
    "merge",
    "escalate",
]

# JSON bodies no transition can parse, whatever the ticket's state.
JUNK_BODIES = [
    "[]",
    '[{"version": 1}]',
    '"classify"',
    "123",
    "null",
    "true",
    '{"version": "abc"}',
    '{"version": 1000000000000000000000000000000}',
    '{"version": 1e400}',
    '{"version": true}',
    '{"version": 0}',
    '{"version": -1}',
    '{"version": 1.5}',
    '{"version": [1]}',
    '{"version": {"$gt": 0}}',
    '{"version": ""}',
]


@pytest.mark.parametrize("name", TRANSITION_NAMES)
@pytest.mark.parametrize("body", JUNK_BODIES)
def test_junk_bodies_are_400(api_as, senior, ticket, name, body):
    response = api_as(senior).generic(
        "POST", transition_url(ticket.number, name), body, content_type="application/json"
    )
    _assert_refused(response, 400, ticket)


@pytest.mark.parametrize("name", [*TRANSITION_NAMES, "replies"])
@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b'{"version": 1,'),
        ("application/json", b"\xff\xfe not utf-8"),
        ("application/json", b'{"version": NaN}'),
        ("application/xml", b"<version>1</version>"),
    ],
)
def test_malformed_or_unsupported_bodies_are_4xx(api_as, senior, ticket, name, content_type, raw):
    url = replies_url(ticket.number) if name == "replies" else transition_url(ticket.number, name)
    response = api_as(senior).generic("POST", url, raw, content_type=content_type)
    assert response.status_code in (400, 415)
    before = ticket.version
    ticket.refresh_from_db()
    assert ticket.version == before


FIELD_JUNK = [
    ("classify", {"category": "abc"}, "category"),
    ("classify", {"category": 1.5}, "category"),
    ("classify", {"category": True}, "category"),
    ("classify", {"category": 10**30}, "category"),
    ("classify", {"category": ""}, "category"),
    ("classify", {"category": [1]}, "category"),
    ("classify", {"category": {"id": 1}}, "category"),
    ("classify", {"category": "1\x00"}, "category"),
    ("classify", {"impact": "high"}, "impact"),
    ("classify", {"urgency": 10**30}, "urgency"),
    ("classify", {"amount_level": [1]}, "amount_level"),
    ("assign", {"assignee": ["agent"]}, "assignee"),
    ("assign", {"assignee": "agent\x00"}, "assignee"),
    ("assign", {"assignee": "agent", "team": "team-a\x00"}, "team"),
    ("assign", {"assignee": 42}, "assignee"),
    ("assign", {"assignee": "a" * 151}, "assignee"),
    ("assign", {"assignee": "agent", "team": {"code": "team-a"}}, "team"),
    ("first_response", {"message": ["hi"]}, "message"),
    ("first_response", {"message": None}, "message"),
    ("first_response", {"message": "a\x00b"}, "message"),
    ("first_response", {"promised_followup_at": "tomorrow"}, "promised_followup_at"),
    ("first_response", {"promised_followup_at": 1700000000}, "promised_followup_at"),
    (
        "first_response",
        {"promised_followup_at": "2026-02-30T10:00:00+08:00"},
        "promised_followup_at",
    ),
    ("first_response", {"promised_followup_at": "2099-01-01T10:00:00"}, "promised_followup_at"),
    ("first_response", {"promised_followup_at": "2099-01-01"}, "promised_followup_at"),
    (
        "first_response",
        {"promised_followup_at": "9999-12-31T23:59:59-14:00"},
        "promised_followup_at",
    ),
    ("resolve", {"resolution_time": "0001-01-01T00:00:00+08:00"}, "resolution_time"),
    ("resolve", {"resolution_time": ""}, "resolution_time"),
    ("resolve", {"resolution_time": "2026-11-22 10:00"}, "resolution_time"),
    ("resolve", {"responsible_person": "刘" * 101}, "responsible_person"),
    ("resolve", {"evidence_ref": "x" * 201}, "evidence_ref"),
    ("resolve", {"solution": {"text": "x"}}, "solution"),
    ("follow_up", {"note": None}, "note"),
    ("reopen", {"reason": False}, "reason"),
    ("merge", {"into": "TS" + "9" * 100}, "into"),
    ("merge", {"into": ["TS1"]}, "into"),
    ("escalate", {"reason": {"a": 1}}, "reason"),
]


@pytest.mark.parametrize(("name", "body", "field"), FIELD_JUNK, ids=repr)
def test_junk_fields_are_400_naming_the_field(api_as, senior, ticket, name, body, field):
    response = api_as(senior).post(transition_url(ticket.number, name), body, format="json")
    _assert_refused(response, 400, ticket, field)


@pytest.mark.parametrize("url_name", ["transition", "replies", "token"])
def test_deeply_nested_json_is_400(api_as, senior, ticket, url_name):
    url = {
        "transition": transition_url(ticket.number, "start"),
        "replies": replies_url(ticket.number),
        "token": TOKEN_URL,
    }[url_name]
    body = "[" * 100_000 + "]" * 100_000
    response = api_as(senior).generic("POST", url, body, content_type="application/json")
    assert response.status_code == 400


def test_oversized_json_is_413(api_as, senior, ticket, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = '{"body": "%s"}' % ("长" * 1000)
    response = api_as(senior).generic(
        "POST", replies_url(ticket.number), body.encode(), content_type="application/json"
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert not ticket.events.filter(kind=EventKind.REPLY).exists()
    small = api_as(senior).post(replies_url(ticket.number), {"body": "长" * 100}, format="json")
    assert small.status_code == 201


def test_too_many_form_fields_is_400(api_as, senior, ticket):
    form = "&".join(f"f{i}=1" for i in range(1500))
    response = api_as(senior).generic(
        "POST",
        replies_url(ticket.number),
        form,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("name", "raw", "field"),
    [
        ("first_response", '{"message": "\\ud800"}', "message"),
        ("first_response", '{"promised_followup_at": 1e400}', "promised_followup_at"),
        ("assign", '{"assignee": "\\udc80agent"}', "assignee"),
        ("assign", '{"assignee": "agent", "team": "\\ud800"}', "team"),
        ("classify", '{"category": 1e400}', "category"),
        ("reopen", '{"reason": NaN}', None),
    ],
)
def test_junk_json_values_are_400(api_as, senior, ticket, name, raw, field):
    response = api_as(senior).generic(
        "POST", transition_url(ticket.number, name), raw, content_type="application/json"
    )
    _assert_refused(response, 400, ticket, *([field] if field else []))


JUNK_VALUES = [
    None,
    "",
    " ",
    [],
    {},
    [None],
    True,
    0,
    -1,
    10**30,
    1.5,
    "x" * 10_000,
    "\x00",
    "2026-11-22T10:00:00",
    "9999-12-31T23:59:59Z",
    "TS20261122-000001",
    "null",
]


@pytest.mark.parametrize("name", TRANSITION_NAMES)
def test_no_junk_value_in_any_field_is_a_server_error(api_as, supervisor, ticket, name):
    client = api_as(supervisor)
    fields = list(TRANSITIONS[name].input().fields)
    for field in fields:
        for value in JUNK_VALUES:
            response = post(client, transition_url(ticket.number, name), {field: value})
            # The client raises on a server error; any answer must be a clear 2xx/4xx.
            assert response.status_code in (200, 400, 409), (field, value, response.content)
            assert response["Content-Type"] == "application/json"


def test_no_junk_value_in_a_reply_is_a_server_error(api_as, supervisor, ticket):
    client = api_as(supervisor)
    for field in ("body", "internal"):
        for value in JUNK_VALUES:
            response = post(client, replies_url(ticket.number), {field: value})
            assert response.status_code in (201, 400, 409), (field, value, response.content)


def test_no_junk_query_parameter_is_a_server_error(api_as, agent, ticket):
    client = api_as(agent)
    junk = [
        "",
        " ",
        "-1",
        "0",
        "1.5",
        "9" * 30,
        "x" * 300,
        "\x00",
        "%",
        "_",
        "'",
        "真",
        "[]",
        "null",
        "true",
        "ok,breached",
    ]
    for param in (
        "status",
        "category",
        "priority",
        "channel",
        "assignee",
        "sla",
        "q",
        "page",
        "page_size",
        "ordering",
    ):
        for value in junk:
            response = client.get(LIST_URL, {param: value})
            assert response.status_code in (200, 400, 404), (param, value, response.content)


def test_form_encoded_payloads_are_parsed_too(api_as, agent, ticket):
    response = api_as(agent).post(
        transition_url(ticket.number, "classify"),
        {"category": str(leaf_category().pk), "amount_level": "1", "impact": "1", "urgency": "2"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "classified"


# --- concurrent clients (PostgreSQL row locks) -------------------------------------


def _post_at_once(requests):
    """POST each (client, url, payload) from its own thread at the same moment."""
    barrier = threading.Barrier(len(requests))

    def worker(request):
        client, url, payload = request
        barrier.wait()
        try:
            return client.post(url, payload, format="json")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(worker, requests))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_clients_with_the_same_version_one_wins_one_conflict(api_as, agent, senior, ticket):
    url = transition_url(ticket.number, "classify")
    payload = classify_payload(version=ticket.version)
    responses = _post_at_once([(api_as(agent), url, payload), (api_as(senior), url, payload)])
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert ticket.events.filter(kind=EventKind.CLASSIFIED).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_opposite_merges_at_once_never_500(api_as, senior, supervisor, customer, channel, team_a):
    first = make_ticket(customer=customer, channel=channel, team=team_a)
    second = make_ticket(customer=customer, channel=channel, team=team_a)
    responses = _post_at_once(
        [
            (api_as(senior), transition_url(first.number, "merge"), {"into": second.number}),
            (api_as(supervisor), transition_url(second.number, "merge"), {"into": first.number}),
        ]
    )
    codes = sorted(r.status_code for r in responses)
    # One merge wins; the other finds its target merged (400) or lost a lock race (409).
    assert codes in ([200, 400], [200, 409]), [r.content for r in responses]
    statuses = sorted(
        Ticket.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)
    )
    assert statuses == sorted([Status.MERGED, Status.RECEIVED])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_deadlock_with_another_writer_is_409_not_500(
    api_as, supervisor, customer, channel, team_a
):
    first = make_ticket(customer=customer, channel=channel, team=team_a)
    second = make_ticket(customer=customer, channel=channel, team=team_a)
    holding = threading.Event()
    outcome = {}

    def other_writer():
        # Locks `second`, waits until the API request holds `first` and queues
        # behind it, then asks for `first`: a lock cycle PostgreSQL must break.
        try:
            with transaction.atomic():
                Ticket.objects.select_for_update().get(pk=second.pk)
                holding.set()
                for _ in range(200):
                    with connection.cursor() as cursor:
                        cursor.execute(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                        if cursor.fetchone()[0]:
                            break
                    time.sleep(0.01)
                Ticket.objects.select_for_update().get(pk=first.pk)
            outcome["other"] = "committed"
        except OperationalError as exc:
            outcome["other"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=other_writer)
    thread.start()
    holding.wait(5)
    response = post(
        api_as(supervisor), transition_url(first.number, "merge"), {"into": second.number}
    )
    thread.join(10)
    # PostgreSQL aborts the transaction that waited longest: the API request.
    assert response.status_code == 409, response.content
    assert "try again" in response.json()["detail"]
    assert outcome["other"] == "committed"
    first.refresh_from_db()
    assert first.status == Status.RECEIVED
