"""Workspace pages for compensation, approvals, the task board and least privilege."""

from decimal import Decimal

from django.urls import reverse

from complaints import services
from complaints.models import (
    CollaborationTask,
    Compensation,
    CompensationState,
    Notification,
    TaskState,
)
from tests.conftest import drive
from tests.factories import make_ticket

FULL_PHONE_FORMS = ("+8613800001234", "13800001234")


def ticket_url(ticket):
    return reverse("workspace:ticket", args=[ticket.number])


def grant_url(ticket):
    return reverse("workspace:ticket-compensation", args=[ticket.number])


def open_task(ticket, actor, department="logistics"):
    (task,) = services.task_open(
        ticket=ticket.number,
        actor=actor,
        specs=[services.TaskSpec(department=department, responsibility="核实物流轨迹")],
        instruction="请在 24 小时内核实并补发",
    )
    return task


class TestCompensationOnTheTicketPage:
    def test_grant_then_cap_refusal_offers_a_request(self, login, agent, ticket):
        client = login(agent)
        data = {"kind": "coupon", "amount": "10", "reason": "致歉", "mode": "grant"}
        response = client.post(grant_url(ticket), data)
        assert response.status_code == 302
        page = client.get(ticket_url(ticket)).content.decode()
        assert 'data-testid="compensation-total">¥10.00<' in page

        response = client.post(grant_url(ticket), {**data, "amount": "5"})
        assert response.status_code == 403
        page = response.content.decode()
        assert 'data-testid="cap-refusal"' in page and "¥15.00" in page
        assert 'data-testid="request-approval"' in page
        assert 'value="5"' in page  # the form keeps what was typed
        assert Compensation.objects.count() == 1

        response = client.post(grant_url(ticket), {**data, "amount": "5", "mode": "request"})
        assert response.status_code == 302
        request = Compensation.objects.get(state=CompensationState.REQUESTED)
        assert (request.amount, request.approver_tier) == (Decimal("5.00"), 2)

    def test_bad_amount_shows_a_field_error_and_writes_nothing(self, login, agent, ticket):
        response = login(agent).post(
            grant_url(ticket), {"kind": "coupon", "amount": "1.005", "reason": "x"}
        )
        assert response.status_code == 400
        assert 'data-testid="amount-error"' in response.content.decode()
        assert not Compensation.objects.exists()

    def test_department_staff_cannot_grant_even_on_their_task_ticket(
        self, login, agent, logistics, ticket
    ):
        open_task(ticket, agent)
        response = login(logistics).post(
            grant_url(ticket), {"kind": "coupon", "amount": "5", "reason": "x"}
        )
        assert response.status_code == 403
        assert not Compensation.objects.exists()

    def test_closed_ticket_has_no_grant_form(self, login, agent, ticket):
        drive(ticket, agent, "closed")
        page = login(agent).get(ticket_url(ticket)).content.decode()
        assert 'name="amount"' not in page


class TestApprovalsPage:
    def test_senior_sees_and_approves_agent_sees_403(self, login, agent, senior, ticket):
        services.compensation_grant(
            ticket=ticket.number, actor=agent, kind="coupon", amount="10", reason="致歉"
        )
        request = services.compensation_grant(
            ticket=ticket.number,
            actor=agent,
            kind="coupon",
            amount="5",
            reason="再补",
            request=True,
        )
        assert login(agent).get(reverse("workspace:approvals")).status_code == 403
        client = login(senior)
        page = client.get(reverse("workspace:approvals")).content.decode()
        assert ticket.number in page and "¥5.00" in page and "¥10.00" in page
        response = client.post(
            reverse("workspace:compensation-decide", args=[request.pk, "approve"]),
            {"next": "approvals"},
        )
        assert response.status_code == 302 and response.url == reverse("workspace:approvals")
        request.refresh_from_db()
        assert request.state == CompensationState.APPROVED
        assert Notification.objects.filter(recipient=agent).count() == 1

    def test_reject_without_reason_changes_nothing(self, login, agent, senior, ticket):
        request = services.compensation_grant(
            ticket=ticket.number, actor=agent, kind="cash", amount="50", reason="x", request=True
        )
        client = login(senior)
        client.post(reverse("workspace:compensation-decide", args=[request.pk, "reject"]), {})
        request.refresh_from_db()
        assert request.state == CompensationState.REQUESTED
        page = client.get(reverse("workspace:approvals")).content.decode()
        assert "Say why the request is rejected." in page

    def test_query_count_does_not_grow_with_requests(
        self, login, agent, senior, customer, channel, team_a, django_assert_max_num_queries
    ):
        def request_on_new_ticket():
            ticket = make_ticket(customer=customer, channel=channel, team=team_a)
            services.compensation_grant(
                ticket=ticket.number,
                actor=agent,
                kind="gift",
                amount="20",
                reason="x",
                request=True,
            )

        client = login(senior)
        request_on_new_ticket()
        with django_assert_max_num_queries(6) as few:
            client.get(reverse("workspace:approvals"))
        for _ in range(10):
            request_on_new_ticket()
        with django_assert_max_num_queries(6) as many:
            response = client.get(reverse("workspace:approvals"))
        assert response.content.decode().count('data-testid="approval-row"') == 11
        assert len(few.captured_queries) == len(many.captured_queries)


class TestTasksThroughThePages:
    def test_agent_opens_tasks_for_two_departments(self, login, agent, ticket):
        response = login(agent).post(
            reverse("workspace:ticket-tasks", args=[ticket.number]),
            {
                "instruction": "客户反映安装延误",
                "dept_logistics": "on",
                "resp_logistics": "核实送货",
                "dept_installation": "on",
                "resp_installation": "预约上门",
                "resp_tech": "ignored: not ticked",
            },
        )
        assert response.status_code == 302
        codes = sorted(ticket.tasks.values_list("department__code", flat=True))
        assert codes == ["installation", "logistics"]

    def test_opening_without_a_department_is_refused(self, login, agent, ticket):
        response = login(agent).post(
            reverse("workspace:ticket-tasks", args=[ticket.number]), {"instruction": "x"}
        )
        assert response.status_code == 400
        assert "Choose at least one department." in response.content.decode()
        assert not CollaborationTask.objects.exists()

    def test_board_claim_then_second_claim_is_409(self, login, agent, logistics, ticket):
        from complaints.models import Department, Role
        from tests.factories import make_staff

        task = open_task(ticket, agent)
        board = login(logistics).get(reverse("workspace:tasks")).content.decode()
        assert "核实物流轨迹" in board and ticket.number in board
        response = login(logistics).post(reverse("workspace:task-action", args=[task.pk, "claim"]))
        assert response.status_code == 302
        colleague = make_staff(
            "logistics2", Role.DEPARTMENT, Department.objects.get(code="logistics")
        )
        response = login(colleague).post(reverse("workspace:task-action", args=[task.pk, "claim"]))
        assert response.status_code == 409
        assert "already claimed" in response.content.decode()
        task.refresh_from_db()
        assert task.assignee == logistics

    def test_complete_and_return_through_the_task_page(self, login, agent, logistics, ticket):
        task = open_task(ticket, agent)
        second = open_task(ticket, agent)
        client = login(logistics)
        url = reverse("workspace:task-action", args=[task.pk, "complete"])
        assert client.post(url, {"text": ""}).status_code == 400
        assert client.post(url, {"text": "已补发 SF1"}).status_code == 302
        back = reverse("workspace:task-action", args=[second.pk, "return"])
        assert client.post(back, {"text": "不属于物流问题"}).status_code == 302
        states = dict(ticket.tasks.values_list("pk", "state"))
        assert states == {task.pk: TaskState.DONE, second.pk: TaskState.RETURNED}
        page = login(agent).get(ticket_url(ticket)).content.decode()
        assert "已补发 SF1" in page and "不属于物流问题" in page

    def test_board_query_count_is_constant(
        self, login, agent, logistics, customer, channel, team_a, django_assert_max_num_queries
    ):
        client = login(logistics)
        open_task(make_ticket(customer=customer, channel=channel, team=team_a), agent)
        with django_assert_max_num_queries(6) as few:
            client.get(reverse("workspace:tasks"))
        for _ in range(12):
            open_task(make_ticket(customer=customer, channel=channel, team=team_a), agent)
        with django_assert_max_num_queries(6) as many:
            response = client.get(reverse("workspace:tasks"))
        assert response.content.decode().count('data-testid="board-row"') == 13
        assert len(few.captured_queries) == len(many.captured_queries)


class TestLeastPrivilegeInPages:
    def test_department_staff_reach_their_task_ticket_with_a_masked_phone(
        self, login, agent, logistics, ticket
    ):
        task = open_task(ticket, agent)
        client = login(logistics)
        response = client.get(ticket_url(ticket))
        assert response.status_code == 302
        assert response.url == reverse("workspace:task", args=[task.pk])
        page = client.get(response.url).content.decode()
        assert "138****1234" in page
        assert not any(phone in page for phone in FULL_PHONE_FORMS)
        assert ticket.subject in page

    def test_other_tickets_and_departments_are_404(
        self, login, agent, logistics, tech, ticket, customer, channel, team_a
    ):
        task = open_task(ticket, agent)
        other = make_ticket(customer=customer, channel=channel, team=team_a)
        client = login(logistics)
        assert client.get(ticket_url(other)).status_code == 404
        assert client.get(reverse("workspace:customer", args=[customer.pk])).status_code == 403
        assert login(tech).get(ticket_url(ticket)).status_code == 404
        assert login(tech).get(reverse("workspace:task", args=[task.pk])).status_code == 404
        claim = reverse("workspace:task-action", args=[task.pk, "claim"])
        assert login(tech).post(claim).status_code == 404
        for name in ("ticket-reply", "ticket-tasks", "ticket-compensation"):
            assert client.post(reverse(f"workspace:{name}", args=[other.number])).status_code == 404

    def test_department_staff_cannot_run_ticket_actions_on_their_task_ticket(
        self, login, agent, logistics, ticket
    ):
        open_task(ticket, agent)
        client = login(logistics)
        posts = {
            reverse("workspace:ticket-action", args=[ticket.number, "classify"]): {},
            reverse("workspace:ticket-reply", args=[ticket.number]): {"body": "hello"},
            reverse("workspace:ticket-tasks", args=[ticket.number]): {"instruction": "x"},
            reverse("workspace:ticket-compensation", args=[ticket.number]): {"amount": "5"},
            reverse("workspace:ticket-attachment", args=[ticket.number]): {},
        }
        for url, data in posts.items():
            response = client.post(url, data)
            assert response.status_code == 403, url
            # A refusal never shows them the agent's ticket page with the full phone.
            assert "13800001234" not in response.content.decode()
        assert not ticket.events.filter(kind="reply").exists()


class TestQueryBudgets:
    def test_ticket_page_with_compensation_and_tasks_stays_bounded(
        self, login, agent, logistics, ticket, django_assert_max_num_queries
    ):
        drive(ticket, agent, "in_progress")
        for department in ("logistics", "tech", "installation"):
            open_task(ticket, agent, department)
        for amount in ("3", "3", "3"):
            services.compensation_grant(
                ticket=ticket.number, actor=agent, kind="coupon", amount=amount, reason="x"
            )
        client = login(agent)
        with django_assert_max_num_queries(14):
            response = client.get(ticket_url(ticket))
        assert response.status_code == 200
        assert response.content.decode().count('data-testid="task-row"') == 3

    def test_task_page_is_bounded(
        self, login, agent, logistics, ticket, django_assert_max_num_queries
    ):
        task = open_task(ticket, agent)
        services.task_claim(task=task.pk, actor=logistics)
        for i in range(5):
            services.task_note(task=task.pk, actor=logistics, body=f"进展 {i}")
        client = login(logistics)
        with django_assert_max_num_queries(6):
            response = client.get(reverse("workspace:task", args=[task.pk]))
        assert response.status_code == 200


class TestNotificationsPage:
    def test_lists_and_marks_read(self, login, agent, logistics, ticket):
        task = open_task(ticket, agent)
        services.task_complete(task=task.pk, actor=logistics, result="完成")
        client = login(agent)
        badges = client.get(reverse("workspace:nav-badges")).content.decode()
        assert 'data-testid="badge-notifications">1<' in badges
        page = client.get(reverse("workspace:notifications")).content.decode()
        assert ticket.number in page and "完成" in page
        client.post(reverse("workspace:notifications"))
        assert not Notification.objects.filter(recipient=agent, read_at__isnull=True).exists()
