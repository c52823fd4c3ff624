"""The Django admin: configuration screens and the lifecycle as buttons over the services."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels.models import Channel
from complaints import selectors, services
from complaints.models import (
    Attachment,
    Category,
    Contact,
    Customer,
    CustomerIdentity,
    Department,
    EventKind,
    Impact,
    Level,
    StaffProfile,
    Status,
    Ticket,
    TicketSequence,
    TimelineEvent,
)
from tests.conftest import drive
from tests.factories import ChannelFactory, leaf_category, make_ticket

TICKET_CHANGELIST = "admin:complaints_ticket_changelist"


@pytest.fixture
def admin_client(admin_user):
    # English UI so the assertions read the services' msgids whatever LANGUAGE_CODE says.
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    return client


def staff_client(user, *perms):
    """A non-superuser admin login holding exactly the given complaints.* permissions."""
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="complaints", codename__in=perms)
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def change_url(ticket):
    return reverse("admin:complaints_ticket_change", args=[ticket.pk])


def transition_url(ticket, name):
    return reverse("admin:complaints_ticket_transition", args=[ticket.pk, name])


def buttons(response) -> list[str]:
    return re.findall(r'data-transition="(\w+)"', response.content.decode())


def events(ticket) -> list[str]:
    return list(TimelineEvent.objects.filter(ticket=ticket).values_list("kind", flat=True))


def classify_data(ticket, **overrides):
    data = {
        "classify-version": ticket.version,
        "classify-category": leaf_category("logistics").pk,
        "classify-amount_level": Level.LOW,
        "classify-impact": Impact.INDIVIDUAL,
        "classify-urgency": Level.MEDIUM,
    }
    data.update(overrides)
    return data


# --- registration and access ----------------------------------------------------------


def test_every_model_is_registered():
    for model in (
        Department,
        StaffProfile,
        Customer,
        CustomerIdentity,
        Category,
        Ticket,
        Contact,
        Attachment,
        TimelineEvent,
        TicketSequence,
        Channel,
        get_user_model(),
    ):
        assert admin.site.is_registered(model), model


def test_every_changelist_renders(admin_client, ticket):
    for model in admin.site._registry:
        opts = model._meta
        if opts.app_label not in ("complaints", "channels", "auth"):
            continue
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url


def test_staff_without_permissions_sees_nothing(agent, ticket):
    client = staff_client(agent)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert reverse(TICKET_CHANGELIST) not in index.content.decode()
    assert client.get(reverse(TICKET_CHANGELIST)).status_code == 403
    assert client.get(change_url(ticket)).status_code == 403
    assert client.post(transition_url(ticket, "classify"), classify_data(ticket)).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == Status.RECEIVED


def test_department_staff_without_is_staff_cannot_enter(logistics):
    client = Client()
    client.force_login(logistics)
    response = client.get(reverse(TICKET_CHANGELIST))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


# --- ticket list ------------------------------------------------------------------------


def changelist_queries(client, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(TICKET_CHANGELIST), params)
    assert response.status_code == 200
    return len(ctx)


def worked_tickets(n, *, channel, team, agent):
    for i in range(n):
        ticket = make_ticket(channel=channel, team=team, subject=f"快递延误 {i}")
        drive(ticket, agent, "assigned")


def test_changelist_query_count_does_not_grow(
    admin_client, channel, team_a, agent, django_assert_max_num_queries
):
    worked_tickets(2, channel=channel, team=team_a, agent=agent)
    few = changelist_queries(admin_client)
    worked_tickets(10, channel=channel, team=team_a, agent=agent)
    many = changelist_queries(admin_client)
    assert few == many
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse(TICKET_CHANGELIST))
    page = response.content.decode()
    assert page.count("快递延误") == 12
    assert "物流配送" in page and "客服一组" in page  # category and team columns
    # Filtered and searched lists stay constant too.
    assert changelist_queries(admin_client, status="assigned", q="快递") == changelist_queries(
        admin_client, status="assigned", q="快递延误 1"
    )


def test_changelist_search_by_number_order_and_phone(admin_client, ticket, channel):
    other = make_ticket(channel=channel, subject="另一个客户的投诉")
    for term in (ticket.number, "SO20261122001", "13800001234", "138 0000 1234", "+8613800001234"):
        page = admin_client.get(reverse(TICKET_CHANGELIST), {"q": term}).content.decode()
        assert ticket.number in page, term
        assert other.number not in page, term


def test_changelist_category_filter_includes_subcategories(admin_client, ticket, agent, channel):
    services_classify(ticket, agent, "install-delay")
    parent = Category.objects.get(code="after-sales")
    page = admin_client.get(reverse(TICKET_CHANGELIST), {"category": parent.pk}).content.decode()
    assert ticket.number in page
    page = admin_client.get(
        reverse(TICKET_CHANGELIST), {"category": leaf_category("quality").pk}
    ).content.decode()
    assert ticket.number not in page


def services_classify(ticket, actor, code):
    services.ticket_classify(
        ticket=ticket.number,
        actor=actor,
        category=leaf_category(code),
        amount_level=Level.LOW,
        impact=Impact.INDIVIDUAL,
        urgency=Level.LOW,
    )


# --- ticket change page -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, ["classify", "merge", "escalate"]),
        ("classified", ["classify", "assign", "merge", "escalate"]),
        ("in_progress", ["assign", "resolve", "merge", "escalate"]),
        ("resolved", ["follow_up", "reopen", "escalate"]),
        ("closed", ["reopen"]),
    ],
)
def test_change_page_shows_exactly_the_allowed_buttons(
    admin_client, admin_user, ticket, agent, state, expected
):
    if state:
        drive(ticket, agent, state)
    response = admin_client.get(change_url(ticket))
    assert response.status_code == 200
    assert buttons(response) == expected
    # The same rule the workspace uses decides, plus escalation on open tickets.
    allowed = selectors.available_actions(admin_user, ticket)
    assert buttons(response) == allowed + (["escalate"] if ticket.is_open else [])
    for name in expected:
        assert transition_url(ticket, name) in response.content.decode()


def test_change_page_buttons_follow_the_users_role(ticket, agent, other_agent, senior):
    # A frontline agent of the ticket's team may classify; one of another team may only escalate.
    perms = ("view_ticket", "change_ticket")
    assert buttons(staff_client(agent, *perms).get(change_url(ticket))) == ["classify", "escalate"]
    assert buttons(staff_client(other_agent, *perms).get(change_url(ticket))) == ["escalate"]
    assert buttons(staff_client(senior, *perms).get(change_url(ticket))) == [
        "classify",
        "merge",
        "escalate",
    ]


def test_view_only_permission_shows_no_buttons_and_runs_nothing(ticket, supervisor):
    client = staff_client(supervisor, "view_ticket")
    response = client.get(change_url(ticket))
    assert response.status_code == 200
    assert buttons(response) == []
    assert client.get(transition_url(ticket, "classify")).status_code == 403
    assert client.post(transition_url(ticket, "classify"), classify_data(ticket)).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == Status.RECEIVED


def test_change_page_is_read_only(admin_client, ticket, team_b):
    response = admin_client.get(change_url(ticket))
    page = response.content.decode()
    assert 'name="_save"' not in page
    assert 'name="status"' not in page and 'name="subject"' not in page
    assert TimelineEvent.objects.filter(ticket=ticket).count() == 1
    assert "Ticket received" in page  # the timeline inline

    # A crafted POST cannot change anything either.
    version = ticket.version
    admin_client.post(
        change_url(ticket),
        {
            "status": Status.CLOSED,
            "subject": "改掉",
            "team": team_b.pk,
            "version": 99,
            "category": leaf_category("quality").pk,
        },
    )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.subject, ticket.team.code) == (
        Status.RECEIVED,
        "快递三天没到",
        "team-a",
    )
    assert ticket.category_id is None and ticket.version == version
    assert events(ticket) == [EventKind.CREATED]


def change_page_queries(client, ticket) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(change_url(ticket)).status_code == 200
    return len(ctx)


def test_change_page_query_count_does_not_grow(
    admin_client, admin_user, ticket, customer, channel, agent, django_assert_max_num_queries
):
    drive(ticket, agent, "in_progress")
    few = change_page_queries(admin_client, ticket)
    for i in range(3):  # duplicates merged in bring their contacts and timeline events
        duplicate = make_ticket(customer=customer, channel=channel, subject=f"又来催 {i}")
        services.ticket_merge(ticket=duplicate.number, actor=admin_user, into=ticket.number)
    assert ticket.contacts.count() == 4
    assert change_page_queries(admin_client, ticket) == few
    with django_assert_max_num_queries(10):
        admin_client.get(change_url(ticket))


# --- transitions through the admin --------------------------------------------------------


def test_transition_page_renders_in_the_admin_look(admin_client, ticket):
    response = admin_client.get(transition_url(ticket, "classify"))
    assert response.status_code == 200
    assert [t.name for t in response.templates][:2] == [
        "admin/complaints/ticket/transition_form.html",
        "admin/base_site.html",
    ]
    page = response.content.decode()
    assert 'class="breadcrumbs"' in page and ticket.number in page
    assert 'name="classify-category"' in page
    assert admin_client.get(transition_url(ticket, "teleport")).status_code == 404


def test_classify_through_the_admin(admin_client, ticket):
    response = admin_client.post(transition_url(ticket, "classify"), classify_data(ticket))
    assert response.status_code == 302
    assert response["Location"] == change_url(ticket)
    ticket.refresh_from_db()
    assert ticket.status == Status.CLASSIFIED
    assert ticket.category.code == "logistics"
    assert events(ticket) == [EventKind.CREATED, EventKind.CLASSIFIED]
    page = admin_client.get(response["Location"]).content.decode()
    assert "Classify: ticket" in page and "is now Classified" in page


def test_classify_without_category_shows_the_service_message(admin_client, ticket):
    response = admin_client.post(
        transition_url(ticket, "classify"), classify_data(ticket, **{"classify-category": ""})
    )
    assert response.status_code == 400
    assert "Choose a category." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.RECEIVED and ticket.category_id is None
    assert events(ticket) == [EventKind.CREATED]


def test_close_before_follow_up_is_a_conflict(admin_client, ticket, agent):
    drive(ticket, agent, "resolved")
    get = admin_client.get(transition_url(ticket, "close"))
    assert "is not among the steps you can take" in get.content.decode()
    before = events(ticket)
    response = admin_client.post(transition_url(ticket, "close"), {"close-version": ticket.version})
    assert response.status_code == 409
    page = response.content.decode()
    assert "Cannot close: the ticket is Resolved." in page
    assert "A ticket can be closed only after it is resolved and followed up." in page
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED and ticket.closed_at is None
    assert events(ticket) == before


def test_resolve_without_the_four_elements_lists_what_is_missing(admin_client, ticket, agent):
    drive(ticket, agent, "in_progress")
    before = events(ticket)
    response = admin_client.post(
        transition_url(ticket, "resolve"),
        {
            "resolve-version": ticket.version,
            "resolve-solution": "",
            "resolve-responsible_person": "",
            "resolve-resolution_time": "",
            "resolve-evidence_ref": "",
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "A resolution needs all four elements; missing: " in page
    for element in ("time", "responsible person", "solution", "evidence (attachment or reference)"):
        assert element in page
    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS and ticket.solution == ""
    assert events(ticket) == before


def test_resolve_with_an_evidence_file_through_the_admin(
    admin_client, ticket, agent, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    drive(ticket, agent, "in_progress")

    def post(upload):
        return admin_client.post(
            transition_url(ticket, "resolve"),
            {
                "resolve-version": ticket.version,
                "resolve-solution": "已补发商品",
                "resolve-responsible_person": "物流部 刘师傅",
                "resolve-resolution_time": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
                "resolve-evidence_file": upload,
            },
        )

    refused = post(SimpleUploadedFile("evidence.exe", b"MZ\x90\x00", "application/octet-stream"))
    assert refused.status_code == 400
    assert "evidence_file" in refused.context["adminform"].form.errors
    assert not Attachment.objects.exists()

    response = post(SimpleUploadedFile("签收记录.txt", "客户已签收补发商品".encode(), "text/plain"))
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    assert ticket.attachments.get().original_name == "签收记录.txt"
    assert events(ticket)[-3:] == [
        EventKind.ATTACHMENT,
        EventKind.RESOLVED,
        EventKind.SURVEY_SENT,
    ]


def test_a_stale_form_is_a_conflict(admin_client, ticket):
    stale = classify_data(ticket)
    assert admin_client.post(transition_url(ticket, "classify"), stale).status_code == 302
    stale["classify-category"] = leaf_category("quality").pk
    response = admin_client.post(transition_url(ticket, "classify"), stale)
    assert response.status_code == 409
    assert "was changed by someone else meanwhile" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.category.code == "logistics"


def test_the_services_permission_rules_hold_in_the_admin(ticket, other_agent):
    client = staff_client(other_agent, "view_ticket", "change_ticket")
    response = client.post(transition_url(ticket, "classify"), classify_data(ticket))
    assert response.status_code == 403
    assert "This ticket belongs to another team." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.RECEIVED
    assert events(ticket) == [EventKind.CREATED]


def test_assign_and_escalate_through_the_admin(admin_client, ticket, agent):
    drive(ticket, agent, "classified")
    response = admin_client.post(
        transition_url(ticket, "assign"),
        {
            "assign-version": ticket.version,
            "assign-assignee": agent.pk,
        },
    )
    assert response.status_code == 302
    response = admin_client.post(
        transition_url(ticket, "escalate"),
        {
            "escalate-reason": "客户在微博投诉，影响扩大",
        },
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee, ticket.escalation_level) == (Status.ASSIGNED, agent, 1)
    assert events(ticket)[-2:] == [EventKind.ASSIGNED, EventKind.ESCALATED]


# --- adding a ticket ------------------------------------------------------------------------


def test_adding_a_ticket_goes_through_the_service(
    admin_client, admin_user, customer, channel, team_a
):
    response = admin_client.get(reverse("admin:complaints_ticket_add"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="status"' not in page and 'name="number"' not in page

    response = admin_client.post(
        reverse("admin:complaints_ticket_add"),
        {
            "customer": customer.pk,
            "channel": channel.pk,
            "subject": "  门店登记：洗衣机安装延误  ",
            "body": "客户到门店反映洗衣机预约安装已过三天仍无人上门。",
            "order_no": "SO2026112288",
            "team": team_a.pk,
        },
    )
    ticket = Ticket.objects.get(order_no="SO2026112288")
    assert response.status_code == 302
    assert response["Location"] == change_url(ticket)
    assert re.fullmatch(r"TS\d{8}-\d{6}", ticket.number)
    assert TicketSequence.objects.get(day=ticket.created_at.astimezone().date()).last >= 1
    assert ticket.subject == "门店登记：洗衣机安装延误"
    assert ticket.status == Status.RECEIVED and ticket.due_at is not None
    created = TimelineEvent.objects.get(ticket=ticket)
    assert (created.kind, created.actor) == (EventKind.CREATED, admin_user)
    assert ticket.contacts.count() == 1


def test_adding_a_ticket_refuses_bad_input_and_creates_nothing(admin_client, customer, channel):
    closed_channel = ChannelFactory(code="old-weibo", is_active=False)
    serials = list(TicketSequence.objects.values_list("day", "last"))
    response = admin_client.post(
        reverse("admin:complaints_ticket_add"),
        {
            "customer": customer.pk,
            "channel": closed_channel.pk,
            "subject": " ",
            "body": "",
        },
    )
    assert response.status_code == 400
    form = response.context["adminform"].form
    assert set(form.errors) == {"channel", "subject", "body"}
    # No ticket, and no number taken (the day's counter did not move).
    assert Ticket.objects.count() == 0
    assert list(TicketSequence.objects.values_list("day", "last")) == serials


# --- records: read-only -----------------------------------------------------------------------


def test_timeline_events_cannot_be_added_changed_or_deleted(admin_client, ticket):
    event = TimelineEvent.objects.get(ticket=ticket)
    opts = "admin:complaints_timelineevent"
    add = reverse(f"{opts}_add")
    change = reverse(f"{opts}_change", args=[event.pk])
    delete = reverse(f"{opts}_delete", args=[event.pk])

    assert admin_client.get(add).status_code == 403
    assert admin_client.post(add, {"ticket": ticket.pk, "kind": "note"}).status_code == 403
    view = admin_client.get(change)
    assert view.status_code == 200  # view only
    assert 'name="_save"' not in view.content.decode()
    assert admin_client.post(change, {"kind": "note", "message": "改写"}).status_code == 403
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403

    changelist = admin_client.get(reverse(f"{opts}_changelist"))
    assert 'name="action"' not in changelist.content.decode()
    admin_client.post(
        reverse(f"{opts}_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [event.pk],
            "post": "yes",
        },
    )
    event.refresh_from_db()
    assert (event.kind, event.message) == (EventKind.CREATED, "快递三天没到")
    assert TimelineEvent.objects.filter(ticket=ticket).count() == 1


def test_tickets_cannot_be_deleted(admin_client, ticket):
    delete = reverse("admin:complaints_ticket_delete", args=[ticket.pk])
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = admin_client.get(reverse(TICKET_CHANGELIST)).content.decode()
    assert "delete_selected" not in changelist
    admin_client.post(
        reverse(TICKET_CHANGELIST),
        {
            "action": "delete_selected",
            "_selected_action": [ticket.pk],
            "post": "yes",
        },
    )
    assert Ticket.objects.filter(pk=ticket.pk).exists()


@pytest.mark.parametrize("model", [Contact, Attachment, TicketSequence])
def test_service_records_are_view_only(admin_client, ticket, model):
    opts = f"admin:complaints_{model._meta.model_name}"
    assert admin_client.get(reverse(f"{opts}_add")).status_code == 403
    row = model.objects.first()
    if row is not None:
        assert admin_client.get(reverse(f"{opts}_change", args=[row.pk])).status_code == 200
        assert admin_client.post(reverse(f"{opts}_change", args=[row.pk]), {}).status_code == 403
        assert (
            admin_client.post(reverse(f"{opts}_delete", args=[row.pk]), {"post": "yes"}).status_code
            == 403
        )


# --- configuration screens --------------------------------------------------------------------


def test_category_list_shows_the_tree(admin_client):
    page = admin_client.get(reverse("admin:complaints_category_changelist")).content.decode()
    codes = re.findall(r'<td class="field-code">([\w-]+)</td>', page)
    # Every top-level category by sort order, each followed by its children.
    assert codes[:6] == [
        "quality",
        "logistics",
        "after-sales",
        "install-delay",
        "repair-response",
        "returns",
    ]
    assert len(codes) == Category.objects.count()
    assert '<td class="field-parent nowrap">售后服务</td>' in page


def test_category_tree_stays_two_levels(admin_client):
    child = Category.objects.get(code="install-delay")
    response = admin_client.post(
        reverse("admin:complaints_category_add"),
        {
            "parent": child.pk,
            "name": "三级",
            "code": "third-level",
            "sort_order": 1,
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "parent" in response.context["adminform"].form.errors
    root = Category.objects.get(code="after-sales")
    response = admin_client.post(
        reverse("admin:complaints_category_change", args=[root.pk]),
        {
            "parent": Category.objects.get(code="quality").pk,
            "name": root.name,
            "code": root.code,
            "sort_order": root.sort_order,
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "This category has subcategories" in response.content.decode()
    assert not Category.objects.filter(code="third-level").exists()


def test_customer_phone_is_normalized_and_searchable(admin_client):
    response = admin_client.post(
        reverse("admin:complaints_customer_add"),
        {
            "name": "刘先生",
            "phone": "139 1234 5678",
            "email": "",
            "region": "上海",
            "address": "",
            "vip_level": 0,
            "identities-TOTAL_FORMS": 1,
            "identities-INITIAL_FORMS": 0,
            "identities-0-kind": "wechat_openid",
            "identities-0-external_key": "oAbc123",
        },
    )
    assert response.status_code == 302
    customer = Customer.objects.get(name="刘先生")
    assert customer.phone == "+8613912345678"
    assert customer.identities.get().external_key == "oAbc123"
    page = admin_client.get(
        reverse("admin:complaints_customer_changelist"), {"q": "13912345678"}
    ).content.decode()
    assert "刘先生" in page
    bad = admin_client.post(
        reverse("admin:complaints_customer_add"),
        {
            "name": "错号",
            "phone": "12345",
            "vip_level": 0,
            "identities-TOTAL_FORMS": 0,
            "identities-INITIAL_FORMS": 0,
        },
    )
    assert bad.status_code == 200 and "phone" in bad.context["adminform"].form.errors
    assert not Customer.objects.filter(name="错号").exists()


def test_user_admin_edits_the_staff_profile_inline(admin_client, agent, team_b):
    url = reverse("admin:auth_user_change", args=[agent.pk])
    assert 'name="profile-0-role"' in admin_client.get(url).content.decode()
    logistics_dept = Department.objects.get(code="logistics")
    response = admin_client.post(
        reverse("admin:complaints_staffprofile_change", args=[agent.profile.pk]),
        {"role": "agent", "department": logistics_dept.pk},
    )
    assert response.status_code == 200
    assert "Customer-service staff belong to a customer-service team." in (
        response.content.decode()
    )
    response = admin_client.post(
        reverse("admin:complaints_staffprofile_change", args=[agent.profile.pk]),
        {"role": "senior", "department": team_b.pk},
    )
    assert response.status_code == 302
    agent.profile.refresh_from_db()
    assert (agent.profile.role, agent.profile.department) == ("senior", team_b)


def test_channel_admin_lists_channels_and_keeps_codes(admin_client, channel):
    page = admin_client.get(reverse("admin:channels_channel_changelist")).content.decode()
    assert "wechat-main" in page
    change = reverse("admin:channels_channel_change", args=[channel.pk])
    assert 'name="code"' not in admin_client.get(change).content.decode()
    response = admin_client.post(
        change, {"code": "renamed", "name": "微信服务号", "kind": "wechat"}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.code, channel.name, channel.is_active) == ("wechat-main", "微信服务号", False)
