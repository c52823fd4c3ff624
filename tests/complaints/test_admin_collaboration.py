"""The admin for compensation and collaboration tasks: limits, decision buttons that run
the services, read-only records, and least privilege for department staff."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from complaints import services
from complaints.models import (
    CollaborationTask,
    CompensationLimit,
    CompensationState,
    Department,
    EventKind,
    Notification,
    StaffProfile,
    Tier,
    TimelineEvent,
)
from tests.factories import make_ticket

PHONE_FORMS = ("+8613800001234", "13800001234")


@pytest.fixture
def admin_client(admin_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    return client


def staff_client(user, *codenames):
    """A non-superuser admin login holding exactly the given complaints.* permissions."""
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="complaints", codename__in=codenames)
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def url(name, *args):
    return reverse(f"admin:complaints_{name}", args=args)


def decide_url(compensation, decision):
    return url("compensation_decide", compensation.pk, decision)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def grant(ticket, actor, amount, *, request=False, kind="coupon"):
    return services.compensation_grant(
        ticket=ticket.number, actor=actor, kind=kind, amount=amount, reason="物流延误致歉",
        request=request,
    )  # fmt: skip


def open_task(ticket, actor, department="logistics", responsibility="核实物流轨迹"):
    (task,) = services.task_open(
        ticket=ticket.number,
        actor=actor,
        specs=[services.TaskSpec(department=department, responsibility=responsibility)],
        instruction="请核实包裹状态并回复客户可送达时间",
    )
    return task


def limits() -> dict[int, Decimal]:
    return dict(CompensationLimit.objects.values_list("tier", "amount"))


# --- tier limits ------------------------------------------------------------------------


def changelist_post(amounts: dict[int, str]) -> dict:
    rows = list(CompensationLimit.objects.order_by("tier"))
    data = {
        "form-TOTAL_FORMS": str(len(rows)),
        "form-INITIAL_FORMS": str(len(rows)),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, row in enumerate(rows):
        data[f"form-{i}-id"] = str(row.pk)
        data[f"form-{i}-amount"] = amounts.get(row.tier, str(row.amount))
    return data


def test_admin_edits_the_limits_on_the_list_and_services_use_them(admin_client, ticket, agent):
    response = admin_client.get(url("compensationlimit_changelist"))
    assert response.status_code == 200
    assert 'name="form-0-amount"' in response.content.decode()

    response = admin_client.post(
        url("compensationlimit_changelist"), changelist_post({1: "20.00", 2: "200.00"})
    )
    assert response.status_code == 302
    assert limits() == {1: Decimal("20.00"), 2: Decimal("200.00"), 3: Decimal("5000.00")}
    # The agent's authority on a ticket is now ¥20.
    assert grant(ticket, agent, "20").state == CompensationState.GRANTED


def test_decreasing_limits_are_refused_on_the_list(admin_client):
    before = limits()
    response = admin_client.post(url("compensationlimit_changelist"), changelist_post({2: "5"}))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Limits must not decrease from tier 1 to tier 3" in page
    assert limits() == before


def test_the_list_checks_the_new_amounts_together(admin_client):
    # Raising tier 1 above the old tier 2 is fine when tier 2 goes up in the same save.
    response = admin_client.post(
        url("compensationlimit_changelist"), changelist_post({1: "150", 2: "300"})
    )
    assert response.status_code == 302
    assert limits()[1] == Decimal("150.00") and limits()[2] == Decimal("300.00")


@pytest.mark.parametrize(
    ("tier", "amount", "message"),
    [
        (2, "5", "Limits must not decrease from tier 1 to tier 3"),
        (3, "50", "Limits must not decrease from tier 1 to tier 3"),
        (1, "-1", "Ensure this value is greater than or equal to 0"),
        (3, "2000000", "No single ticket is compensated above"),
        (1, "abc", "Enter a number"),
    ],
)
def test_the_change_form_refuses_bad_limits(admin_client, tier, amount, message):
    before = limits()
    row = CompensationLimit.objects.get(tier=tier)
    response = admin_client.post(url("compensationlimit_change", row.pk), {"amount": amount})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert limits() == before


def test_the_change_form_saves_a_consistent_limit(admin_client):
    row = CompensationLimit.objects.get(tier=Tier.SENIOR)
    response = admin_client.post(url("compensationlimit_change", row.pk), {"amount": "80"})
    assert response.status_code == 302
    assert limits()[2] == Decimal("80.00")


def test_limits_cannot_be_deleted_and_only_a_missing_tier_can_be_added(admin_client):
    row = CompensationLimit.objects.get(tier=Tier.SUPERVISOR)
    assert admin_client.get(url("compensationlimit_delete", row.pk)).status_code == 403
    assert admin_client.get(url("compensationlimit_add")).status_code == 403
    assert (
        "delete_selected"
        not in admin_client.get(url("compensationlimit_changelist")).content.decode()
    )

    row.delete()  # e.g. lost in a bad data import
    response = admin_client.get(url("compensationlimit_add"))
    assert response.status_code == 200
    options = response.context["adminform"].form.fields["tier"].choices
    assert [value for value, _label in options if value] == [Tier.SUPERVISOR]
    response = admin_client.post(url("compensationlimit_add"), {"tier": "3", "amount": "3000"})
    assert response.status_code == 302
    assert limits()[3] == Decimal("3000.00")


# --- compensation: read-only records, decisions through the services ---------------------


@pytest.fixture
def request_for_senior(ticket, agent):
    grant(ticket, agent, "10")
    return grant(ticket, agent, "20", request=True, kind="refund")


def test_compensation_list_and_page_are_read_only(admin_client, request_for_senior, ticket):
    granted = ticket.compensations.get(state=CompensationState.GRANTED)
    response = admin_client.get(url("compensation_changelist"))
    page = response.content.decode()
    assert response.status_code == 200
    assert ticket.number in page and url("ticket_change", ticket.pk) in page
    filtered = admin_client.get(url("compensation_changelist"), {"state": "requested"})
    assert list(filtered.context["cl"].result_list) == [request_for_senior]
    searched = admin_client.get(url("compensation_changelist"), {"q": ticket.number})
    assert searched.context["cl"].result_count == 2

    assert admin_client.get(url("compensation_add")).status_code == 403
    assert admin_client.get(url("compensation_delete", granted.pk)).status_code == 403
    response = admin_client.post(
        url("compensation_change", granted.pk), {"amount": "9999", "state": "approved"}
    )
    assert response.status_code == 403
    granted.refresh_from_db()
    assert (granted.amount, granted.state) == (Decimal("10.00"), CompensationState.GRANTED)
    page = admin_client.get(url("compensation_change", granted.pk)).content.decode()
    assert 'name="amount"' not in page and "data-decision" not in page


def test_approve_button_runs_the_service(admin_client, request_for_senior, ticket, agent):
    page = admin_client.get(url("compensation_change", request_for_senior.pk)).content.decode()
    for decision in ("approve", "reject", "withdraw"):
        assert f'data-decision="{decision}"' in page
    assert admin_client.get(decide_url(request_for_senior, "approve")).status_code == 200

    response = admin_client.post(decide_url(request_for_senior, "approve"), {"reason": "同意"})
    assert response.status_code == 302
    request_for_senior.refresh_from_db()
    assert request_for_senior.state == CompensationState.APPROVED
    assert services.compensation_total(ticket) == Decimal("30.00")
    event = ticket.events.get(kind=EventKind.COMPENSATION_APPROVED)
    assert event.message == "同意" and event.actor.username == "admin"
    assert Notification.objects.filter(recipient=agent, ticket=ticket).exists()
    assert any("Approved" in m for m in messages_of(response))


def test_senior_rejects_with_a_reason(request_for_senior, senior, ticket):
    client = staff_client(senior, "view_compensation")
    response = client.post(decide_url(request_for_senior, "reject"), {"reason": ""})
    assert response.status_code == 400
    assert "Say why the request is rejected." in response.content.decode()
    request_for_senior.refresh_from_db()
    assert request_for_senior.state == CompensationState.REQUESTED

    response = client.post(decide_url(request_for_senior, "reject"), {"reason": "已补偿优惠券"})
    assert response.status_code == 302
    request_for_senior.refresh_from_db()
    assert request_for_senior.state == CompensationState.REJECTED
    assert request_for_senior.decision_note == "已补偿优惠券"
    assert ticket.events.filter(kind=EventKind.COMPENSATION_REJECTED).count() == 1


def test_self_approval_is_refused_with_a_message_and_changes_nothing(ticket, senior):
    own = grant(ticket, senior, "150", request=True, kind="refund")  # needs a supervisor
    client = staff_client(senior, "view_compensation")
    page = client.get(url("compensation_change", own.pk)).content.decode()
    assert 'data-decision="approve"' not in page and 'data-decision="withdraw"' in page
    events_before = TimelineEvent.objects.count()

    response = client.post(decide_url(own, "approve"), {"reason": ""})
    assert response.status_code == 403
    assert any("Nobody can decide their own request" in m for m in messages_of(response))
    own.refresh_from_db()
    assert own.state == CompensationState.REQUESTED and own.decided_by is None
    assert TimelineEvent.objects.count() == events_before
    assert not Notification.objects.exists()


def test_an_agent_cannot_approve_but_can_withdraw_their_own_request(request_for_senior, agent):
    client = staff_client(agent, "view_compensation")
    response = client.post(decide_url(request_for_senior, "approve"), {})
    assert response.status_code == 403
    assert any("Only team leads and supervisors" in m for m in messages_of(response))
    response = client.post(decide_url(request_for_senior, "withdraw"), {})
    assert response.status_code == 302
    request_for_senior.refresh_from_db()
    assert request_for_senior.state == CompensationState.CANCELLED


def test_deciding_twice_is_a_conflict(admin_client, request_for_senior):
    admin_client.post(decide_url(request_for_senior, "approve"), {})
    response = admin_client.post(decide_url(request_for_senior, "reject"), {"reason": "重复"})
    assert response.status_code == 409
    assert any("already decided" in m for m in messages_of(response))
    request_for_senior.refresh_from_db()
    assert request_for_senior.state == CompensationState.APPROVED


def test_unknown_decision_and_compensation_are_404(admin_client, request_for_senior):
    assert admin_client.get(decide_url(request_for_senior, "pay")).status_code == 404
    missing = url("compensation_decide", 999999, "approve")
    assert admin_client.post(missing, {}).status_code == 404


def test_decisions_need_admin_view_access(request_for_senior, senior):
    client = staff_client(senior)  # admin login, no compensation permission
    response = client.post(decide_url(request_for_senior, "approve"), {})
    assert response.status_code == 403
    request_for_senior.refresh_from_db()
    assert request_for_senior.state == CompensationState.REQUESTED


# --- tasks, departments, profiles, notifications -------------------------------------


def test_tasks_are_listed_read_only_with_the_overdue_flag(admin_client, ticket, agent):
    task = open_task(ticket, agent)
    CollaborationTask.objects.filter(pk=task.pk).update(
        respond_due_at=task.created_at - dt.timedelta(hours=1)
    )
    response = admin_client.get(url("collaborationtask_changelist"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "核实物流轨迹" in page and ticket.number in page
    assert 'alt="True"' in page  # overdue
    overdue = admin_client.get(url("collaborationtask_changelist"), {"overdue": "yes"})
    assert overdue.context["cl"].result_count == 1
    department = Department.objects.get(code="logistics")
    by_department = admin_client.get(
        url("collaborationtask_changelist"), {"department__id__exact": department.pk}
    )
    assert by_department.context["cl"].result_count == 1

    assert admin_client.get(url("collaborationtask_add")).status_code == 403
    assert admin_client.get(url("collaborationtask_delete", task.pk)).status_code == 403
    response = admin_client.post(url("collaborationtask_change", task.pk), {"state": "done"})
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.state == "open"


def test_ticket_page_shows_compensations_and_tasks(admin_client, ticket, agent):
    grant(ticket, agent, "8")
    open_task(ticket, agent)
    page = admin_client.get(url("ticket_change", ticket.pk)).content.decode()
    assert "8.00" in page and "核实物流轨迹" in page
    assert 'name="compensations-0-amount"' not in page  # shown, not editable


def test_department_task_hours_are_edited_in_the_admin(admin_client):
    tech = Department.objects.get(code="tech")
    page = admin_client.get(url("department_change", tech.pk)).content.decode()
    assert 'name="task_response_hours"' in page
    data = {"name": tech.name, "code": tech.code, "kind": tech.kind}
    response = admin_client.post(
        url("department_change", tech.pk),
        {**data, "task_response_hours": "3", "task_completion_hours": "12"},
    )
    assert response.status_code == 302
    tech.refresh_from_db()
    assert (tech.task_response_hours, tech.task_completion_hours) == (3, 12)
    response = admin_client.post(
        url("department_change", tech.pk),
        {**data, "task_response_hours": "10", "task_completion_hours": "5"},
    )
    assert response.status_code == 200
    assert "cannot be shorter than the response time" in response.content.decode()


def test_staff_profile_marks_the_department_head(admin_client, logistics, agent):
    profile = logistics.profile
    response = admin_client.post(
        url("staffprofile_change", profile.pk),
        {"role": "department", "department": profile.department_id, "is_head": "on"},
    )
    assert response.status_code == 302
    assert StaffProfile.objects.get(pk=profile.pk).is_head
    response = admin_client.post(
        url("staffprofile_change", agent.profile.pk),
        {"role": "agent", "department": agent.profile.department_id, "is_head": "on"},
    )
    assert response.status_code == 200
    assert "Only department staff can be the head" in response.content.decode()


def test_notifications_are_a_read_only_list(admin_client, request_for_senior, senior):
    services.compensation_reject(compensation=request_for_senior, actor=senior, reason="不符合")
    response = admin_client.get(url("notification_changelist"))
    assert response.status_code == 200 and "不符合" in response.content.decode()
    note = Notification.objects.get()
    assert admin_client.get(url("notification_add")).status_code == 403
    assert admin_client.get(url("notification_delete", note.pk)).status_code == 403


# --- least privilege: department staff with admin access ---------------------------------

ALL_VIEW = (
    "view_ticket",
    "view_collaborationtask",
    "view_compensation",
    "view_customer",
    "view_customeridentity",
    "view_timelineevent",
    "view_contact",
    "view_attachment",
    "view_notification",
)


@pytest.fixture
def department_setup(ticket, agent, channel, team_a, customer):
    """`ticket` has a logistics task; `tech_ticket` only a tech task; `plain` none."""
    open_task(ticket, agent)
    grant(ticket, agent, "5")
    tech_ticket = make_ticket(customer=customer, channel=channel, team=team_a, subject="屏幕坏了")
    open_task(tech_ticket, agent, department="tech", responsibility="远程诊断")
    plain = make_ticket(customer=customer, channel=channel, team=team_a, subject="态度差")
    return ticket, tech_ticket, plain


def test_department_staff_see_only_their_tickets(department_setup, logistics):
    own, tech_ticket, plain = department_setup
    client = staff_client(logistics, *ALL_VIEW)
    response = client.get(url("ticket_changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [own]
    # Searching by the customer's phone finds nothing, not even their own ticket.
    for term in PHONE_FORMS:
        searched = client.get(url("ticket_changelist"), {"q": term})
        assert searched.context["cl"].result_count == 0

    for other in (tech_ticket, plain):
        assert client.get(url("ticket_change", other.pk)).status_code == 404
        assert client.get(url("ticket_history", other.pk)).status_code == 404
        assert client.get(url("ticket_transition", other.pk, "classify")).status_code == 404
    assert client.get(url("ticket_change", 999999)).status_code == 404

    response = client.get(url("ticket_change", own.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert own.number in page and "核实物流轨迹" in page
    for phone in PHONE_FORMS:
        assert phone not in page
    assert "远程诊断" not in page  # another department's task
    assert "data-transition" not in page


def test_department_staff_see_no_customers_or_compensation(department_setup, logistics, customer):
    own, _tech_ticket, _plain = department_setup
    client = staff_client(logistics, *ALL_VIEW)
    for name, args in [
        ("customer_changelist", ()),
        ("customer_change", (customer.pk,)),
        ("customeridentity_changelist", ()),
        ("compensation_changelist", ()),
        ("compensation_change", (own.compensations.get().pk,)),
        ("contact_changelist", ()),
        ("attachment_changelist", ()),
    ]:
        assert client.get(url(name, *args)).status_code == 403, name
    index = client.get(reverse("admin:index")).content.decode()
    assert url("customer_changelist") not in index
    assert url("compensation_changelist") not in index
    page = client.get(url("ticket_change", own.pk)).content.decode()
    assert "物流延误致歉" not in page  # the compensation inline is not shown
    for phone in PHONE_FORMS:
        assert phone not in page


def test_department_staff_see_only_their_tasks_and_events(department_setup, logistics, tech):
    own, tech_ticket, _plain = department_setup
    client = staff_client(logistics, *ALL_VIEW)
    tasks = client.get(url("collaborationtask_changelist")).context["cl"].result_list
    assert [t.department.code for t in tasks] == ["logistics"]
    tech_task = tech_ticket.tasks.get()
    assert client.get(url("collaborationtask_change", tech_task.pk)).status_code == 404
    events = client.get(url("timelineevent_changelist")).context["cl"].result_list
    assert {e.kind for e in events} == {EventKind.TASK_OPENED}
    assert {e.ticket_id for e in events} == {own.pk}
    compensation_event = own.events.get(kind=EventKind.COMPENSATION_GRANTED)
    assert client.get(url("timelineevent_change", compensation_event.pk)).status_code == 404


def test_department_staff_without_a_department_see_nothing(department_setup, logistics):
    own, _tech_ticket, _plain = department_setup
    StaffProfile.objects.filter(user=logistics).update(department=None)
    client = staff_client(logistics, *ALL_VIEW)
    assert client.get(url("ticket_changelist")).context["cl"].result_count == 0
    assert client.get(url("ticket_change", own.pk)).status_code == 404
    assert client.get(url("timelineevent_changelist")).context["cl"].result_count == 0


def test_service_staff_keep_seeing_every_ticket(department_setup, agent):
    client = staff_client(agent, "view_ticket", "view_customer")
    response = client.get(url("ticket_changelist"))
    assert response.context["cl"].result_count == 3
    own, _tech_ticket, plain = department_setup
    assert client.get(url("ticket_change", plain.pk)).status_code == 200
    assert client.get(url("customer_changelist")).status_code == 200
    # Missing rows still take the admin's usual redirect for service staff.
    assert client.get(url("ticket_change", 999999)).status_code == 302


# --- query counts stay bounded ---------------------------------------------------------


def queries(client, name, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url(name), params)
    assert response.status_code == 200
    return len(ctx)


def busy_tickets(n, *, channel, team, agent, senior):
    for i in range(n):
        ticket = make_ticket(channel=channel, team=team, subject=f"快递延误 {i}")
        open_task(ticket, agent)
        grant(ticket, agent, "5")
        services.compensation_approve(
            compensation=grant(ticket, agent, "20", request=True), actor=senior
        )


@pytest.mark.parametrize(
    "changelist",
    ["compensation_changelist", "collaborationtask_changelist", "notification_changelist"],
)
def test_changelist_queries_do_not_grow(
    admin_client, channel, team_a, agent, senior, changelist, django_assert_max_num_queries
):
    busy_tickets(2, channel=channel, team=team_a, agent=agent, senior=senior)
    few = queries(admin_client, changelist)
    busy_tickets(8, channel=channel, team=team_a, agent=agent, senior=senior)
    assert queries(admin_client, changelist) == few
    with django_assert_max_num_queries(10):
        admin_client.get(url(changelist))


def test_department_staff_changelists_stay_bounded(
    channel, team_a, agent, senior, logistics, django_assert_max_num_queries
):
    client = staff_client(logistics, *ALL_VIEW)
    busy_tickets(2, channel=channel, team=team_a, agent=agent, senior=senior)
    few = {
        name: queries(client, name)
        for name in ("ticket_changelist", "collaborationtask_changelist")
    }
    busy_tickets(8, channel=channel, team=team_a, agent=agent, senior=senior)
    for name, count in few.items():
        assert queries(client, name) == count, name
        with django_assert_max_num_queries(12):
            client.get(url(name))
    assert client.get(url("ticket_changelist")).context["cl"].result_count == 10


def test_ticket_page_queries_do_not_grow_with_compensations_and_tasks(
    admin_client, ticket, agent, senior, django_assert_max_num_queries
):
    grant(ticket, agent, "5")
    open_task(ticket, agent)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url("ticket_change", ticket.pk))
    for code in ("tech", "installation"):
        open_task(ticket, agent, department=code)
    services.compensation_approve(
        compensation=grant(ticket, agent, "30", request=True), actor=senior
    )
    with django_assert_max_num_queries(len(few)):
        admin_client.get(url("ticket_change", ticket.pk))
