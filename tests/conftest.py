"""Fixed personas and ticket builders shared by every test.

Personas (as in DESIGN.md §2): `agent` and `agent2` (tier 1, team A), `senior` (tier 2,
team A), `supervisor` (tier 3), `other_agent` (tier 1, team B), `logistics` and `tech`
(department staff), `admin` (superuser), `outsider` (a login with no role).
"""

import datetime as dt
import os

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone, translation

from channels import outbox
from complaints import numbering, services
from complaints.models import Department, Impact, Level, Role
from complaints.seeds import ensure_collaboration_defaults, ensure_reference_data
from sla.seeds import ensure_default_policies
from tests.factories import (
    ChannelFactory,
    CustomerFactory,
    DepartmentFactory,
    UserFactory,
    leaf_category,
    make_staff,
    make_ticket,
)

PASSWORD = "pw-closeloop-1"


def pytest_collection_modifyitems(config, items):
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)


@pytest.fixture(scope="session", autouse=True)
def _close_numbering_connection(django_db_setup):
    """Ticket numbers come over a connection of their own on PostgreSQL: close it before
    the test database is dropped."""
    yield
    numbering.close()


@pytest.fixture(autouse=True)
def _english_messages(settings):
    """Tests assert the English msgids; test_i18n checks that users get Chinese by default."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def reference_data(db):
    # Transactional tests flush the tables the data migration filled; put them back.
    ensure_reference_data()
    ensure_collaboration_defaults()
    ensure_default_policies()


@pytest.fixture
def team_a(reference_data):

    return DepartmentFactory(code="team-a", name="客服一组")


@pytest.fixture
def team_b(db):
    return DepartmentFactory(code="team-b", name="客服二组")


@pytest.fixture
def agent(team_a):
    return make_staff("agent", Role.AGENT, team_a, first_name="小李")


@pytest.fixture
def agent2(team_a):
    return make_staff("agent2", Role.AGENT, team_a, first_name="小王")


@pytest.fixture
def senior(team_a):
    return make_staff("senior", Role.SENIOR, team_a, first_name="张组长")


@pytest.fixture
def supervisor(reference_data):
    return make_staff("supervisor", Role.SUPERVISOR, None, first_name="陈主管")


@pytest.fixture
def other_agent(team_b):
    return make_staff("other_agent", Role.AGENT, team_b)


@pytest.fixture
def logistics(reference_data):
    return make_staff("logistics", Role.DEPARTMENT, Department.objects.get(code="logistics"))


@pytest.fixture
def tech(reference_data):
    return make_staff("tech", Role.DEPARTMENT, Department.objects.get(code="tech"))


@pytest.fixture
def admin_user(db):
    user = UserFactory(username="admin", is_staff=True, is_superuser=True)
    user.save()
    return user


@pytest.fixture
def outsider(db):
    user = UserFactory(username="outsider")
    user.save()
    return user


@pytest.fixture
def channel(db):
    return ChannelFactory(code="wechat-main", name="微信公众号")


@pytest.fixture
def customer(db):
    return CustomerFactory(name="王女士", phone="+8613800001234")


@pytest.fixture
def ticket(customer, channel, team_a):
    return make_ticket(customer=customer, channel=channel, team=team_a, order_no="SO20261122001")


def first_response_text(ticket) -> str:
    return (
        f"您好，您的投诉已受理，工单号 {ticket.number}。我们将在明天 18:00 前回复处理结果，"
        f"您也可以随时通过 {services.status_url(ticket)} 输入工单号和手机后四位查询进度。"
    )


def drive(ticket, actor, to: str):
    """Walk a ticket through the real services up to the state `to`."""
    steps = [
        "classified",
        "assigned",
        "first_responded",
        "in_progress",
        "resolved",
        "followed_up",
        "closed",
    ]
    target = steps.index(to)
    number = ticket.number
    if target >= 0:
        services.ticket_classify(
            ticket=number,
            actor=actor,
            category=leaf_category("logistics"),
            amount_level=Level.LOW,
            impact=Impact.INDIVIDUAL,
            urgency=Level.MEDIUM,
        )
    if target >= 1:
        services.ticket_assign(ticket=number, actor=actor, assignee=actor)
    if target >= 2:
        services.ticket_first_response(
            ticket=number,
            actor=actor,
            message=first_response_text(ticket),
            promised_followup_at=timezone.now() + dt.timedelta(days=1),
        )
        outbox.deliver_due()  # the worker sends it (tests never commit, so on_commit is idle)
    if target >= 3:
        services.ticket_start(ticket=number, actor=actor)
    if target >= 4:
        services.ticket_resolve(
            ticket=number,
            actor=actor,
            solution="补发商品并赠送优惠券",
            responsible_person="物流部 刘师傅",
            resolution_time=timezone.now(),
            evidence_ref="快递单号 SF123456",
        )
    if target >= 5:
        services.ticket_follow_up(ticket=number, actor=actor, note="回访客户，已收到补发，表示满意")
    if target >= 6:
        services.ticket_close(ticket=number, actor=actor)
    ticket.refresh_from_db()
    return ticket


@pytest.fixture
def drive_ticket():
    return drive


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"
