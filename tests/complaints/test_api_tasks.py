"""Collaboration tasks through the staff API, and what department staff may reach."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from complaints import services
from complaints.models import (
    CollaborationTask,
    Department,
    EventKind,
    Notification,
    Role,
    StaffProfile,
    TaskState,
    TimelineEvent,
)
from tests.factories import make_staff, make_ticket

pytestmark = pytest.mark.django_db

BOARD_URL = "/api/v1/tasks/"


def tasks_url(number):
    return f"/api/v1/tickets/{number}/tasks/"


def task_url(pk, action=None):
    return f"/api/v1/tasks/{pk}/{action}/" if action else f"/api/v1/tasks/{pk}/"


@pytest.fixture
def anon():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def api_as():
    def _as(user):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _as


@pytest.fixture
def logistics2(logistics):
    return make_staff("logistics2", Role.DEPARTMENT, logistics.profile.department)


@pytest.fixture
def logistics_head(logistics):
    head = make_staff("logistics_head", Role.DEPARTMENT, logistics.profile.department)
    StaffProfile.objects.filter(user=head).update(is_head=True)
    head.refresh_from_db()
    return head


def post(client, url, data=None):
    return client.post(url, data if data is not None else {}, format="json")


def open_tasks(ticket, actor, *codes):
    return services.task_open(
        ticket=ticket.number,
        actor=actor,
        specs=[services.TaskSpec(code, f"{code} 负责核实") for code in codes],
        instruction="客户反映快递三天未到，请核实",
    )


def snapshot(ticket):
    return (
        list(
            CollaborationTask.objects.filter(ticket=ticket)
            .order_by("pk")
            .values_list("pk", "state", "assignee_id", "result", "return_reason", "instruction")
        ),
        TimelineEvent.objects.filter(ticket=ticket).count(),
    )


# --- opening tasks -----------------------------------------------------------------


def test_open_several_departments_at_once(api_as, agent, ticket):
    now = timezone.now()
    response = post(
        api_as(agent),
        tasks_url(ticket.number),
        {
            "tasks": [
                {"department": "logistics", "responsibility": "核实物流轨迹"},
                {
                    "department": "tech",
                    "responsibility": "排查系统",
                    "instruction": "请排查下单记录",
                },
            ],
            "instruction": "客户反映快递三天未到，请核实",
        },
    )
    assert response.status_code == 201, response.content
    logistics_task, tech_task = response.json()["tasks"]
    assert logistics_task["department"] == {"code": "logistics", "name": "物流部"}
    assert logistics_task["ticket"] == {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": "received",
    }
    assert logistics_task["responsibility"] == "核实物流轨迹"
    assert logistics_task["instruction"] == "客户反映快递三天未到，请核实"
    assert tech_task["instruction"] == "请排查下单记录"
    assert (logistics_task["state"], logistics_task["state_display"]) == ("open", "Unclaimed")
    assert logistics_task["assignee"] is None
    assert logistics_task["created_by"] == {"username": "agent", "name": "小李"}
    assert logistics_task["is_overdue"] is False
    for key in ("claimed_at", "completed_at"):
        assert logistics_task[key] is None
    assert (logistics_task["result"], logistics_task["return_reason"]) == ("", "")
    # Default deadlines: tech answers within 2 h ("green channel"), completes within 24 h.
    respond = dt.datetime.fromisoformat(tech_task["respond_due_at"])
    complete = dt.datetime.fromisoformat(tech_task["complete_due_at"])
    assert dt.timedelta(hours=2) <= respond - now < dt.timedelta(hours=2, minutes=1)
    assert dt.timedelta(hours=24) <= complete - now < dt.timedelta(hours=24, minutes=1)
    assert [e["kind"] for e in logistics_task["events"]] == ["task_opened"]
    assert ticket.events.filter(kind=EventKind.TASK_OPENED).count() == 2


def test_open_one_task_flat_with_deadlines(api_as, agent, ticket):
    respond = timezone.now() + dt.timedelta(hours=1)
    complete = timezone.now() + dt.timedelta(hours=5)
    response = post(
        api_as(agent),
        tasks_url(ticket.number),
        {
            "department": "logistics",
            "responsibility": "核实物流轨迹",
            "instruction": "请联系快递公司",
            "respond_due_at": respond.isoformat(),
            "complete_due_at": complete.isoformat(),
        },
    )
    assert response.status_code == 201, response.content
    (task,) = response.json()["tasks"]
    assert task["instruction"] == "请联系快递公司"
    assert dt.datetime.fromisoformat(task["respond_due_at"]) == respond
    assert dt.datetime.fromisoformat(task["complete_due_at"]) == complete


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"department": "nowhere", "responsibility": "x", "instruction": "y"}, "tasks[0]"),
        ({"department": "team-a", "responsibility": "x", "instruction": "y"}, "tasks[0]"),
        ({"department": "logistics", "responsibility": "", "instruction": "y"}, "tasks[0]"),
        ({"department": "logistics", "responsibility": "x"}, "tasks[0]"),
        ({"tasks": [{"department": "logistics", "responsibility": "x"}]}, "tasks[0]"),
        (
            {
                "tasks": [
                    {"department": "logistics", "responsibility": "x"},
                    {"department": "bogus", "responsibility": "y"},
                ],
                "instruction": "z",
            },
            "tasks[1]",
        ),
        (
            {
                "tasks": [
                    {"department": "logistics", "responsibility": "x"},
                    {"department": "logistics", "responsibility": "y"},
                ],
                "instruction": "z",
            },
            "tasks[1]",
        ),
        ({"tasks": [], "instruction": "z"}, "tasks"),
        ({"tasks": [{"department": "logistics", "responsibility": "x"}] * 11}, "tasks"),
        ({"tasks": "logistics"}, "tasks"),
        ({"tasks": [{"department": "logistics"}], "department": "tech"}, "department"),
        ({}, "department"),
        ({"department": ["logistics"], "responsibility": "x", "instruction": "y"}, "department"),
        (
            {
                "department": "logistics",
                "responsibility": "x",
                "instruction": "y",
                "respond_due_at": "2026-11-22T10:00:00",
            },
            "respond_due_at",
        ),
        (
            {
                "department": "logistics",
                "responsibility": "x",
                "instruction": "y",
                "respond_due_at": "2020-01-01T10:00:00+08:00",
            },
            "tasks[0]",
        ),
    ],
)
def test_bad_task_bodies_are_400_and_nothing_is_written(api_as, agent, ticket, body, key):
    before = snapshot(ticket)
    response = post(api_as(agent), tasks_url(ticket.number), body)
    assert response.status_code == 400, response.content
    assert key in response.json(), response.json()
    assert snapshot(ticket) == before


def test_unknown_department_is_named(api_as, agent, ticket):
    response = post(
        api_as(agent),
        tasks_url(ticket.number),
        {"department": "nowhere", "responsibility": "x", "instruction": "y"},
    )
    assert response.json() == {"tasks[0]": ["Unknown collaborating department."]}


def test_closed_ticket_refuses_tasks(api_as, agent, ticket, drive_ticket):
    drive_ticket(ticket, agent, "closed")
    before = snapshot(ticket)
    response = post(
        api_as(agent),
        tasks_url(ticket.number),
        {"department": "logistics", "responsibility": "x", "instruction": "y"},
    )
    assert response.status_code == 400
    assert "Closed" in response.json()["detail"]
    assert snapshot(ticket) == before


def test_who_may_open_tasks(api_as, agent, other_agent, logistics, outsider, ticket):
    open_tasks(ticket, agent, "logistics")
    body = {"department": "tech", "responsibility": "x", "instruction": "y"}
    before = snapshot(ticket)
    assert post(api_as(other_agent), tasks_url(ticket.number), body).status_code == 403
    response = post(api_as(logistics), tasks_url(ticket.number), body)
    assert response.status_code == 403
    assert "customer-service staff" in response.json()["detail"]
    assert post(api_as(outsider), tasks_url(ticket.number), body).status_code == 404
    assert post(api_as(agent), tasks_url("TS20000101-000001"), body).status_code == 404
    assert snapshot(ticket) == before


def test_ticket_task_list_shows_department_staff_only_their_own(
    api_as, agent, logistics, tech, ticket
):
    logistics_task, tech_task = open_tasks(ticket, agent, "logistics", "tech")

    def ids(user):
        return [t["id"] for t in api_as(user).get(tasks_url(ticket.number)).json()["tasks"]]

    assert ids(agent) == [logistics_task.pk, tech_task.pk]
    assert ids(logistics) == [logistics_task.pk]
    assert ids(tech) == [tech_task.pk]


# --- working a task ----------------------------------------------------------------


def test_claim_then_a_second_claim_is_409(api_as, agent, logistics, logistics2, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    response = post(api_as(logistics), task_url(task.pk, "claim"))
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["state"], data["assignee"]["username"]) == ("claimed", "logistics")
    assert data["claimed_at"] is not None
    assert [e["kind"] for e in data["events"]] == ["task_opened", "task_claimed"]
    before = snapshot(ticket)
    for user in (logistics2, logistics):
        response = post(api_as(user), task_url(task.pk, "claim"))
        assert response.status_code == 409
        assert "already claimed" in response.json()["detail"]
    assert snapshot(ticket) == before


def test_only_the_department_claims(api_as, agent, tech, outsider, anon, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    before = snapshot(ticket)
    response = post(api_as(agent), task_url(task.pk, "claim"))
    assert response.status_code == 403
    assert "物流部" in response.json()["detail"]
    for user in (tech, outsider):
        assert post(api_as(user), task_url(task.pk, "claim")).status_code == 404
    assert post(anon, task_url(task.pk, "claim")).status_code == 401
    assert snapshot(ticket) == before


def test_complete_with_a_result_notifies_the_agent(api_as, agent, logistics, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    client = api_as(logistics)
    post(client, task_url(task.pk, "claim"))
    before = snapshot(ticket)
    for body in ({}, {"result": "  "}):
        response = post(client, task_url(task.pk, "complete"), body)
        assert response.status_code == 400
        assert "result" in response.json()
    assert snapshot(ticket) == before
    response = post(client, task_url(task.pk, "complete"), {"result": "已补发，单号 SF123"})
    assert response.status_code == 200
    data = response.json()
    assert (data["state"], data["result"]) == ("done", "已补发，单号 SF123")
    assert data["completed_at"] is not None
    message = Notification.objects.get(recipient=agent).message
    assert "已补发" in message and ticket.number in message
    # The agent sees the result on the ticket.
    (seen,) = api_as(agent).get(tasks_url(ticket.number)).json()["tasks"]
    assert seen["result"] == "已补发，单号 SF123"
    assert post(client, task_url(task.pk, "complete"), {"result": "again"}).status_code == 409


def test_return_then_resend(api_as, agent, logistics, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    client = api_as(logistics)
    assert post(client, task_url(task.pk, "return"), {}).status_code == 400
    response = post(client, task_url(task.pk, "return"), {"reason": "缺少订单号"})
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["return_reason"]) == (
        "returned",
        "缺少订单号",
    )
    assert "缺少订单号" in Notification.objects.get(recipient=agent).message
    assert post(client, task_url(task.pk, "return"), {"reason": "again"}).status_code == 409
    # Only the agent's side sends it again.
    assert post(client, task_url(task.pk, "resend")).status_code == 403
    response = post(api_as(agent), task_url(task.pk, "resend"), {"instruction": "订单号 SO-1"})
    assert response.status_code == 200
    data = response.json()
    assert (data["state"], data["instruction"], data["assignee"]) == ("open", "订单号 SO-1", None)
    assert data["events"][-1]["kind"] == "task_reopened"
    assert post(api_as(agent), task_url(task.pk, "resend")).status_code == 409


def test_resend_keeps_the_instruction_when_none_is_given(api_as, agent, logistics, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    services.task_return(task=task, actor=logistics, reason="缺少信息")
    response = post(api_as(agent), task_url(task.pk, "resend"))
    assert response.status_code == 200
    assert response.json()["instruction"] == "客户反映快递三天未到，请核实"


def test_progress_notes(api_as, agent, logistics, logistics2, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    client = api_as(logistics)
    post(client, task_url(task.pk, "claim"))
    response = post(client, task_url(task.pk, "notes"), {"body": "已联系快递员"})
    assert response.status_code == 201
    assert (response.json()["kind"], response.json()["message"]) == ("task_note", "已联系快递员")
    assert response.json()["actor"] == "logistics"
    before = snapshot(ticket)
    assert post(client, task_url(task.pk, "notes"), {"body": " "}).status_code == 400
    # A colleague cannot write on a task someone else claimed; agents cannot either.
    response = post(api_as(logistics2), task_url(task.pk, "notes"), {"body": "我来"})
    assert response.status_code == 403
    assert post(api_as(agent), task_url(task.pk, "notes"), {"body": "催一下"}).status_code == 403
    assert snapshot(ticket) == before
    detail = api_as(agent).get(task_url(task.pk)).json()
    assert [e["kind"] for e in detail["events"]] == ["task_opened", "task_claimed", "task_note"]


def test_head_reassigns_within_the_department(
    api_as, agent, logistics, logistics2, logistics_head, tech, outsider, ticket
):
    (task,) = open_tasks(ticket, agent, "logistics")
    post(api_as(logistics), task_url(task.pk, "claim"))
    before = snapshot(ticket)
    assert (
        post(api_as(logistics), task_url(task.pk, "reassign"), {"assignee": "logistics2"})
    ).status_code == 403
    head = api_as(logistics_head)
    bodies = [{"assignee": name} for name in ("tech", "nobody", "outsider", "agent", "logistics")]
    for body in (*bodies, {}, {"assignee": ["x"]}, {"assignee": None}):
        response = post(head, task_url(task.pk, "reassign"), body)
        assert response.status_code == 400, body
        assert "assignee" in response.json()
    assert snapshot(ticket) == before
    response = post(head, task_url(task.pk, "reassign"), {"assignee": "logistics2"})
    assert response.status_code == 200
    assert response.json()["assignee"]["username"] == "logistics2"
    assert Notification.objects.filter(recipient=logistics2).exists()


def test_agent_cancels_with_a_reason(api_as, agent, logistics, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    post(api_as(logistics), task_url(task.pk, "claim"))
    before = snapshot(ticket)
    assert post(api_as(agent), task_url(task.pk, "cancel"), {}).status_code == 400
    assert post(api_as(logistics), task_url(task.pk, "cancel"), {"reason": "x"}).status_code == 403
    assert snapshot(ticket) == before
    response = post(api_as(agent), task_url(task.pk, "cancel"), {"reason": "客户已收到"})
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert Notification.objects.filter(recipient=logistics).exists()
    assert post(api_as(agent), task_url(task.pk, "cancel"), {"reason": "x"}).status_code == 409
    assert (
        post(api_as(logistics), task_url(task.pk, "complete"), {"result": "x"}).status_code == 409
    )


def test_overdue_flag(api_as, agent, logistics, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    with time_machine.travel(timezone.now() + dt.timedelta(hours=5)):
        assert api_as(logistics).get(task_url(task.pk)).json()["is_overdue"] is True
    assert api_as(logistics).get(task_url(task.pk)).json()["is_overdue"] is False


@pytest.mark.parametrize(
    "action", ["claim", "complete", "return", "notes", "reassign", "cancel", "resend"]
)
def test_no_junk_body_is_a_server_error(api_as, agent, logistics_head, ticket, action):
    (task,) = open_tasks(ticket, agent, "logistics")
    junk = [None, "", " ", [], {}, [None], True, 0, -1, 10**30, 1.5, "x" * 6000, "\x00", "null"]
    for user in (agent, logistics_head):
        for field in ("result", "reason", "body", "assignee", "instruction"):
            for value in junk:
                response = post(api_as(user), task_url(task.pk, action), {field: value})
                assert response.status_code in (200, 201, 400, 403, 409), (
                    user,
                    field,
                    value,
                    response.content,
                )


@pytest.mark.parametrize("pk", ["999999", "0", "999999999999999999"])
def test_unknown_task_is_404(api_as, agent, ticket, pk):
    client = api_as(agent)
    assert client.get(task_url(pk)).status_code == 404
    assert post(client, task_url(pk, "cancel"), {"reason": "x"}).status_code == 404


def test_anonymous_is_401(anon, agent, ticket):
    (task,) = open_tasks(ticket, agent, "logistics")
    for response in (
        anon.get(BOARD_URL),
        anon.get(task_url(task.pk)),
        anon.get(tasks_url(ticket.number)),
        post(anon, tasks_url(ticket.number), {"department": "tech", "responsibility": "x"}),
        *(
            post(anon, task_url(task.pk, action), {"reason": "x", "result": "x", "body": "x"})
            for action in ("claim", "complete", "return", "notes", "reassign", "cancel", "resend")
        ),
    ):
        assert response.status_code == 401
    assert CollaborationTask.objects.get().state == TaskState.OPEN


# --- the board ---------------------------------------------------------------------


def test_board_tabs_and_counts(
    api_as, agent, logistics, logistics2, tech, customer, channel, team_a, ticket
):
    second = make_ticket(customer=customer, channel=channel, team=team_a)
    third = make_ticket(customer=customer, channel=channel, team=team_a)
    (mine,) = open_tasks(ticket, agent, "logistics")
    (theirs,) = open_tasks(second, agent, "logistics")
    (open_one, tech_task) = open_tasks(third, agent, "logistics", "tech")
    (done,) = open_tasks(
        make_ticket(customer=customer, channel=channel, team=team_a), agent, "logistics"
    )
    services.task_claim(task=mine, actor=logistics)
    services.task_claim(task=theirs, actor=logistics2)
    services.task_complete(task=done, actor=logistics, result="已处理")

    client = api_as(logistics)
    board = client.get(BOARD_URL).json()
    assert board["counts"] == {"unclaimed": 1, "mine": 1, "department": 2, "done": 1}
    assert board["count"] == 1
    assert [t["id"] for t in board["results"]] == [open_one.pk]

    def tab(name):
        return [t["id"] for t in client.get(BOARD_URL, {"tab": name}).json()["results"]]

    assert tab("unclaimed") == [open_one.pk]
    assert tab("mine") == [mine.pk]
    assert sorted(tab("department")) == sorted([mine.pk, theirs.pk])
    assert tab("done") == [done.pk]
    # Tech sees only its own department's task.
    tech_board = api_as(tech).get(BOARD_URL).json()
    assert [t["id"] for t in tech_board["results"]] == [tech_task.pk]
    assert tech_board["counts"] == {"unclaimed": 1, "mine": 0, "department": 0, "done": 0}
    for junk in ("bogus", "MINE", "\x00", "x" * 300):
        response = client.get(BOARD_URL, {"tab": junk})
        assert response.status_code == 400
        assert "tab" in response.json()


def test_board_is_empty_for_users_without_a_role(api_as, agent, outsider, ticket):
    open_tasks(ticket, agent, "logistics")
    board = api_as(outsider).get(BOARD_URL).json()
    assert board["count"] == 0
    assert board["counts"] == {"unclaimed": 0, "mine": 0, "department": 0, "done": 0}


def test_board_and_ticket_task_queries_are_constant(
    api_as, agent, logistics, customer, channel, team_a, django_assert_max_num_queries
):
    client = api_as(logistics)
    first = make_ticket(customer=customer, channel=channel, team=team_a)
    open_tasks(first, agent, "logistics")
    with CaptureQueriesContext(connection) as one:
        assert client.get(BOARD_URL).json()["count"] == 1
    with CaptureQueriesContext(connection) as one_on_ticket:
        assert len(api_as(agent).get(tasks_url(first.number)).json()["tasks"]) == 1
    for i in range(6):
        other = make_ticket(customer=customer, channel=channel, team=team_a)
        (task,) = open_tasks(other, agent, "logistics")
        services.task_note(task=task, actor=logistics, body=f"进展 {i}")
    open_tasks(first, agent, "tech", "warehouse", "sales")
    with django_assert_max_num_queries(len(one.captured_queries)):
        board = client.get(BOARD_URL).json()
    assert board["count"] == 7
    assert all(task["events"] for task in board["results"])
    with django_assert_max_num_queries(len(one_on_ticket.captured_queries)):
        assert len(api_as(agent).get(tasks_url(first.number)).json()["tasks"]) == 4
    assert len(one.captured_queries) <= 8


# --- least privilege ---------------------------------------------------------------


def test_department_staff_list_only_their_tasks_tickets(
    api_as, agent, logistics, tech, customer, channel, team_a, ticket
):
    other = make_ticket(customer=customer, channel=channel, team=team_a)
    open_tasks(ticket, agent, "logistics", "tech")
    open_tasks(other, agent, "tech")

    def listed(user):
        return [t["number"] for t in api_as(user).get("/api/v1/tickets/").json()["results"]]

    assert listed(logistics) == [ticket.number]
    assert sorted(listed(tech)) == sorted([ticket.number, other.number])
    assert sorted(listed(agent)) == sorted([ticket.number, other.number])


def test_department_staff_see_a_reduced_ticket(api_as, agent, logistics, ticket):
    services.ticket_reply(
        ticket=ticket.number, actor=agent, body="内部备注：客户很生气", internal=True
    )
    logistics_task, _tech_task = open_tasks(ticket, agent, "logistics", "tech")
    response = api_as(logistics).get(f"/api/v1/tickets/{ticket.number}/")
    assert response.status_code == 200
    data = response.json()
    assert data["customer"] == {"name": "王女士", "masked_phone": "138****1234"}
    content = response.content.decode()
    assert "13800001234" not in content
    assert "内部备注" not in content
    for hidden in ("events", "contacts", "attachments", "available_actions", "assignee", "team"):
        assert hidden not in data
    assert data["subject"] == ticket.subject
    assert data["order_no"] == "SO20261122001"
    assert [t["id"] for t in data["tasks"]] == [logistics_task.pk]
    assert [e["kind"] for e in data["tasks"][0]["events"]] == ["task_opened"]
    # Customer-service staff keep the full view.
    full = api_as(agent).get(f"/api/v1/tickets/{ticket.number}/").json()
    assert "events" in full and "contacts" in full and "tasks" not in full


def test_department_staff_cannot_work_their_tasks_ticket_and_cannot_see_others(
    api_as, agent, logistics, tech, customer, channel, team_a, ticket
):
    other = make_ticket(customer=customer, channel=channel, team=team_a)
    (task,) = open_tasks(ticket, agent, "logistics")
    (other_task,) = open_tasks(other, agent, "tech")
    client = api_as(logistics)
    before = snapshot(ticket)
    for name in ("classify", "assign", "escalate", "bogus"):
        response = post(
            client, f"/api/v1/tickets/{ticket.number}/transitions/{name}/", {"reason": "x"}
        )
        assert response.status_code == 403, name
        assert (
            post(client, f"/api/v1/tickets/{other.number}/transitions/{name}/").status_code == 404
        )
    for body in ({"body": "您好"}, {"body": "备注", "internal": True}):
        assert post(client, f"/api/v1/tickets/{ticket.number}/replies/", body).status_code == 403
        assert post(client, f"/api/v1/tickets/{other.number}/replies/", body).status_code == 404
    assert snapshot(ticket) == before
    # Other tickets and other departments' tasks do not exist for them.
    assert client.get(f"/api/v1/tickets/{other.number}/").status_code == 404
    assert client.get(tasks_url(other.number)).status_code == 404
    assert client.get(task_url(other_task.pk)).status_code == 404
    assert post(client, task_url(other_task.pk, "claim")).status_code == 404
    assert api_as(tech).get(f"/api/v1/tickets/{ticket.number}/").status_code == 404
    assert api_as(tech).get(task_url(task.pk)).status_code == 404
    other_task.refresh_from_db()
    assert other_task.state == TaskState.OPEN


def test_a_department_keeps_seeing_a_ticket_after_its_task_is_done(
    api_as, agent, logistics, ticket
):
    (task,) = open_tasks(ticket, agent, "logistics")
    services.task_complete(task=task, actor=logistics, result="已处理")
    assert api_as(logistics).get(f"/api/v1/tickets/{ticket.number}/").status_code == 200


def test_department_ticket_view_query_count_is_bounded(
    api_as, agent, logistics, ticket, django_assert_max_num_queries
):
    (task,) = open_tasks(ticket, agent, "logistics")
    client = api_as(logistics)
    with CaptureQueriesContext(connection) as one:
        assert client.get(f"/api/v1/tickets/{ticket.number}/").status_code == 200
    services.task_claim(task=task, actor=logistics)
    for i in range(5):
        services.task_note(task=task, actor=logistics, body=f"进展 {i}")
    services.task_complete(task=task, actor=logistics, result="完成")
    open_tasks(ticket, agent, "logistics")
    with django_assert_max_num_queries(len(one.captured_queries)):
        data = client.get(f"/api/v1/tickets/{ticket.number}/").json()
    assert len(data["tasks"]) == 2
    assert len(one.captured_queries) <= 12


# --- schema ------------------------------------------------------------------------


def test_schema_documents_the_task_endpoints(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert paths["/api/v1/tickets/{number}/tasks/"]["post"]["tags"] == ["tasks"]
    assert "get" in paths["/api/v1/tickets/{number}/tasks/"]
    board = paths["/api/v1/tasks/"]["get"]
    (tab,) = [p for p in board["parameters"] if p["name"] == "tab"]
    assert tab["schema"]["enum"] == ["unclaimed", "mine", "department", "done"]
    assert "get" in paths["/api/v1/tasks/{id}/"]
    for action in ("claim", "complete", "return", "notes", "reassign", "cancel", "resend"):
        operation = paths[f"/api/v1/tasks/{{id}}/{action}/"]["post"]
        assert operation["tags"] == ["tasks"]
        assert {"403", "404", "409"} <= set(operation["responses"])
    components = schema["components"]["schemas"]
    variants = {ref["$ref"].rsplit("/", 1)[1] for ref in components["TaskOpenRequest"]["oneOf"]}
    assert variants == {"TaskOpenInputRequest", "TaskSpecInputRequest"}
    assert "tasks" in components["DepartmentTicketOutput"]["properties"]
    assert Department.objects.filter(kind="collaborating").exists()
