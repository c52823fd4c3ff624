"""Routing rules: order, every condition and every action, at intake and on demand."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from complaints.models import EventKind, Impact, Level, Notification, Priority, Status
from sla.models import RiskAlert, RiskKind
from tests.factories import ChannelFactory, CustomerFactory, leaf_category
from triage import engine
from triage.models import IntakeFacts, TicketWatcher

pytestmark = pytest.mark.django_db

LOGISTICS_TEXT = "买的东西快递三天没有送到，客服电话也打不通。"


def notes(ticket) -> list[str]:
    return [e.message for e in ticket.events.filter(kind=EventKind.NOTE).order_by("id")]


class TestOrder:
    def test_first_match_stops_later_rules(self, intake, rule_factory, reference_data):
        rule_factory(
            name="先", position=10, keywords="快递", set_priority=Priority.P2, stop_processing=True
        )
        rule_factory(name="后", position=20, keywords="快递", set_priority=Priority.P1)
        ticket = intake(LOGISTICS_TEXT)
        assert ticket.priority == Priority.P2
        assert [n for n in notes(ticket) if "Rule" in n] == [
            "Rule “先” set priority P2 high. (matched 快递)"
        ]

    def test_position_not_creation_order_decides(self, intake, rule_factory, reference_data):
        rule_factory(name="后", position=20, keywords="快递", set_priority=Priority.P1)
        rule_factory(name="先", position=10, keywords="快递", set_priority=Priority.P2)
        assert intake(LOGISTICS_TEXT).priority == Priority.P2

    def test_all_matches_apply_in_order(self, intake, rule_factory, reference_data):
        rule_factory(
            name="一", position=10, keywords="快递", set_priority=Priority.P2, stop_processing=False
        )
        rule_factory(
            name="二", position=20, keywords="电话", set_impact=Impact.GROUP, stop_processing=False
        )
        rule_factory(name="不中", position=30, keywords="起火", set_priority=Priority.P1)
        ticket = intake(LOGISTICS_TEXT)
        assert (ticket.priority, ticket.impact) == (Priority.P2, Impact.GROUP)
        fired = [n for n in notes(ticket) if n.startswith("Rule")]
        assert [n.split("”")[0] for n in fired] == ["Rule “一", "Rule “二"]

    def test_inactive_rules_never_fire(self, intake, rule_factory, reference_data):
        rule_factory(name="停用", keywords="快递", set_priority=Priority.P1, is_active=False)
        assert intake(LOGISTICS_TEXT).priority == Priority.P3


class TestConditions:
    def test_channel(self, intake, rule_factory, hotline, reference_data):
        rule_factory(name="热线", channels=[hotline], set_priority=Priority.P2)
        assert intake(LOGISTICS_TEXT).priority == Priority.P3
        assert intake(LOGISTICS_TEXT, via=hotline).priority == Priority.P2

    def test_category_from_the_channel_hint(self, intake, rule_factory, reference_data):
        after_sales = leaf_category("after-sales")
        rule_factory(name="售后", categories=[after_sales], set_priority=Priority.P2)
        # A child category matches a rule on its parent.
        assert intake("安装师傅一直没来", category_hint="install-delay").priority == Priority.P2
        assert intake("安装师傅一直没来", category_hint="logistics").priority == Priority.P3

    def test_keywords_use_jieba_words_not_substrings(self, intake, rule_factory, reference_data):
        rule_factory(name="书", keywords="书", set_priority=Priority.P2)
        assert intake("说明书写得看不懂，退货又很麻烦").priority == Priority.P3
        assert intake("买的书印刷质量很差").priority == Priority.P2

    def test_keywords_match_traditional_characters(self, intake, rule_factory, reference_data):
        rule_factory(name="快递", keywords="快递, 物流", set_priority=Priority.P2)
        assert intake("我的快遞一週都沒到").priority == Priority.P2

    def test_vip_level(self, intake, rule_factory, reference_data):
        rule_factory(name="VIP", vip_min_level=3, set_priority=Priority.P2)
        CustomerFactory(phone="+8613911112222", vip_level=3)
        CustomerFactory(phone="+8613911113333", vip_level=2)
        assert intake(LOGISTICS_TEXT, phone="13911112222").priority == Priority.P2
        assert intake(LOGISTICS_TEXT, phone="13911113333").priority == Priority.P3

    def test_order_amount(self, intake, rule_factory, reference_data):
        rule_factory(
            name="大额", amount_min=Decimal("5000"), amount_max=Decimal("20000"), set_priority=2
        )
        assert intake(LOGISTICS_TEXT, order_amount="5000.00").priority == Priority.P2
        assert intake(LOGISTICS_TEXT, order_amount="4999.99").priority == Priority.P3
        assert intake(LOGISTICS_TEXT, order_amount="20000.01").priority == Priority.P3
        # No amount sent: a rule on the amount does not fire.
        assert intake(LOGISTICS_TEXT).priority == Priority.P3
        assert IntakeFacts.objects.filter(order_amount=Decimal("5000.00")).exists()

    def test_bad_order_amount_is_refused(self, intake, reference_data):
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError) as exc:
            intake(LOGISTICS_TEXT, order_amount="lots")
        assert "order_amount" in exc.value.message_dict

    @pytest.mark.parametrize(
        ("local_time", "fires"),
        [("23:30", True), ("02:00", True), ("06:59", True), ("07:00", False), ("15:00", False)],
    )
    def test_time_of_day_spanning_midnight(
        self, intake, rule_factory, reference_data, local_time, fires
    ):
        rule_factory(name="夜间", hour_from=22, hour_to=7, set_priority=Priority.P2)
        hour, minute = map(int, local_time.split(":"))
        shanghai = dt.timezone(dt.timedelta(hours=8))
        with time_machine.travel(dt.datetime(2026, 11, 23, hour, minute, tzinfo=shanghai)):
            ticket = intake(LOGISTICS_TEXT)
        assert (ticket.priority == Priority.P2) is fires

    def test_all_conditions_must_hold(self, intake, rule_factory, hotline, reference_data):
        rule_factory(name="热线快递", channels=[hotline], keywords="快递", set_priority=2)
        assert intake("热线打不通", via=hotline).priority == Priority.P3
        assert intake(LOGISTICS_TEXT).priority == Priority.P3
        assert intake(LOGISTICS_TEXT, via=hotline).priority == Priority.P2


class TestActions:
    def test_category_and_grading_classify_the_ticket(self, intake, rule_factory):
        rule_factory(
            name="物流",
            keywords="快递",
            set_category=leaf_category("logistics"),
            set_amount_level=Level.LOW,
            set_impact=Impact.INDIVIDUAL,
            set_urgency=Level.MEDIUM,
        )
        ticket = intake(LOGISTICS_TEXT)
        assert ticket.status == Status.CLASSIFIED
        assert ticket.category.code == "logistics"
        assert ticket.priority == Priority.P3  # graded 1 + 1 + 2
        classified = ticket.events.get(kind=EventKind.CLASSIFIED)
        assert classified.actor is None
        assert "routing rules" in classified.message

    def test_partial_grading_leaves_the_ticket_received(self, intake, rule_factory):
        rule_factory(name="物流", keywords="快递", set_category=leaf_category("logistics"))
        ticket = intake(LOGISTICS_TEXT)
        assert ticket.status == Status.RECEIVED
        assert ticket.category.code == "logistics"
        assert "Rule “物流” set category 物流配送. (matched 快递)" in notes(ticket)

    def test_priority_moves_the_sla_clocks_to_its_policy(
        self, intake, rule_factory, reference_data
    ):
        from sla.models import Clock

        rule_factory(name="P1", keywords="快递", set_priority=Priority.P1)
        urgent = intake(LOGISTICS_TEXT)
        assert urgent.priority == Priority.P1
        priorities = set(
            Clock.objects.filter(ticket=urgent).values_list(
                "policy_version__policy__priority", flat=True
            )
        )
        assert priorities == {Priority.P1}

    def test_team(self, intake, rule_factory, team_b):
        rule_factory(name="二组", keywords="快递", assign_team=team_b)
        ticket = intake(LOGISTICS_TEXT)
        assert ticket.team == team_b
        assert ticket.assignee is None

    def test_skill_group_assigns_once_graded(self, intake, rule_factory, skill_group, agent):
        rule_factory(
            name="物流",
            keywords="快递",
            set_category=leaf_category("logistics"),
            set_amount_level=Level.LOW,
            set_impact=Impact.INDIVIDUAL,
            set_urgency=Level.MEDIUM,
            assign_skill_group=skill_group,
        )
        ticket = intake(LOGISTICS_TEXT)
        assert ticket.status == Status.ASSIGNED
        assert ticket.assignee == agent  # round robin: the first on-duty member
        assert ticket.team == skill_group.team
        event = ticket.events.get(kind=EventKind.ASSIGNED)
        assert "skill group 物流组" in event.message
        assert Notification.objects.filter(recipient=agent, ticket=ticket).exists()

    def test_skill_group_waits_for_classification(self, intake, rule_factory, skill_group):
        rule_factory(name="物流", keywords="快递", assign_skill_group=skill_group)
        ticket = intake(LOGISTICS_TEXT)
        assert ticket.status == Status.RECEIVED
        assert ticket.assignee is None
        assert ticket.team == skill_group.team
        assert any("assigned once it is classified" in n for n in notes(ticket))

    def test_watcher_is_added_and_told(self, intake, rule_factory, supervisor):
        rule_factory(name="关注", keywords="快递", add_watcher=supervisor)
        ticket = intake(LOGISTICS_TEXT)
        assert TicketWatcher.objects.filter(ticket=ticket, user=supervisor).exists()
        assert Notification.objects.filter(recipient=supervisor, ticket=ticket).exists()

    def test_risk_alert(self, intake, rule_factory):
        rule_factory(name="监管", keywords="快递", raise_risk=RiskKind.VIP, risk_message="重点客户")
        ticket = intake(LOGISTICS_TEXT)
        alert = RiskAlert.objects.get(ticket=ticket, kind=RiskKind.VIP)
        assert alert.message == "重点客户"

    def test_contacts_joining_an_open_ticket_are_not_routed_again(
        self, intake, rule_factory, reference_data
    ):
        ticket = intake(LOGISTICS_TEXT, order_no="SO1", phone="13955556666")
        rule_factory(name="P1", keywords="快递", set_priority=Priority.P1)
        again = intake(LOGISTICS_TEXT, order_no="SO1", phone="13955556666")
        assert again.pk == ticket.pk
        assert again.priority == Priority.P3


class TestOnDemand:
    def test_button_applies_rules_and_records_the_actor(self, login, agent, ticket, rule_factory):
        rule_factory(name="P2", keywords="快递", set_priority=Priority.P2)
        response = login(agent).post(f"/triage/tickets/{ticket.number}/apply/")
        assert response.status_code == 302
        ticket.refresh_from_db()
        assert ticket.priority == Priority.P2
        event = ticket.events.filter(kind=EventKind.NOTE).latest("id")
        assert event.actor == agent
        assert event.message.startswith("Rule “P2” set priority P2 high")

    def test_nothing_to_change_is_said(self, login, agent, ticket):
        client = login(agent)
        response = client.post(f"/triage/tickets/{ticket.number}/apply/", follow=True)
        assert "nothing to change" in response.content.decode()

    def test_classified_tickets_keep_their_category(
        self, login, agent, ticket, rule_factory, drive_ticket, skill_group
    ):
        drive_ticket(ticket, agent, "classified")
        rule_factory(
            name="改类", keywords="快递", set_category=leaf_category("quality"),
            assign_skill_group=skill_group,
        )  # fmt: skip
        login(agent).post(f"/triage/tickets/{ticket.number}/apply/")
        ticket.refresh_from_db()
        assert ticket.category.code == "logistics"
        # ...but an unassigned classified ticket is now assigned within the group.
        assert ticket.assignee is not None
        assert ticket.status == Status.ASSIGNED

    def test_agent_of_another_team_is_refused(self, login, other_agent, ticket, rule_factory):
        rule_factory(name="P2", keywords="快递", set_priority=Priority.P2)
        response = login(other_agent).post(f"/triage/tickets/{ticket.number}/apply/", follow=True)
        assert "another team" in response.content.decode()
        ticket.refresh_from_db()
        assert ticket.priority == Priority.P3

    def test_department_staff_are_refused(self, login, logistics, ticket):
        response = login(logistics).post(f"/triage/tickets/{ticket.number}/apply/")
        assert response.status_code == 404


class TestDryRun:
    def test_shows_which_rule_would_fire(self, login, agent, rule_factory, reference_data):
        rule_factory(name="安全", position=10, keywords="起火", set_priority=Priority.P1)
        rule_factory(name="物流", position=20, keywords="快递", set_priority=Priority.P2)
        response = login(agent).get("/triage/", {"text": "快递送来的充电宝起火了", "vip_level": 0})
        assert response.status_code == 200
        body = response.content.decode()
        assert "matched 起火" in body
        assert body.count('data-testid="triage-fired"') == 1  # 安全 stops before 物流
        assert "matches, but an earlier rule stopped" in body
        assert "Safety — 起火" in body  # the urgency words too

    def test_nothing_fires(self, login, agent, rule_factory, reference_data):
        rule_factory(name="安全", keywords="起火", set_priority=Priority.P1)
        response = login(agent).get("/triage/", {"text": "普通咨询", "vip_level": 0})
        assert 'data-testid="triage-no-rule"' in response.content.decode()

    def test_conditions_from_the_form(self, rule_factory, reference_data):
        from triage.selectors import dry_run

        hotline = ChannelFactory(code="hotline-2", kind="hotline")
        rule_factory(name="热线大额", channels=[hotline], amount_min=100, vip_min_level=2)
        assert not dry_run(text="你好", channel=hotline, vip_level=2)["fired"]
        fired = dry_run(text="你好", channel=hotline, vip_level=2, order_amount=Decimal(100))
        assert [r["rule"].name for r in fired["fired"]] == ["热线大额"]


class TestIntakeCost:
    def test_rules_cost_the_same_queries_however_many(
        self, intake, rule_factory, reference_data, hotline
    ):
        rule_factory(name="r0", keywords="不会出现的词", channels=[hotline])
        intake("预热一下")  # first-use costs (jieba, caches) out of the way
        with CaptureQueriesContext(connection) as one_rule:
            intake("没有任何规则会命中的一段话")
        for i in range(1, 15):
            rule_factory(name=f"r{i}", keywords=f"不会出现的词{i}", channels=[hotline])
        intake("又预热一下")  # reloads the rules: five queries, however many rules
        with CaptureQueriesContext(connection) as many_rules:
            intake("没有任何规则会命中的一段话")
        assert len(many_rules) == len(one_rule)

    def test_load_rules_is_three_queries(self, rule_factory, hotline, django_assert_num_queries):
        for i in range(5):
            rule_factory(name=f"r{i}", keywords="快递", channels=[hotline])
        with django_assert_num_queries(3):
            assert len(engine.load_rules()) == 5


class TestRuleCache:
    def test_warm_intake_reads_no_rule_or_word_table(self, intake, rule_factory, reference_data):
        rule_factory(name="P2", keywords="起火", set_priority=Priority.P2)
        intake("预热一下")
        with CaptureQueriesContext(connection) as queries:
            intake("没有任何规则会命中的一段话")
        tables = " ".join(q["sql"] for q in queries)
        assert "triage_routingrule" not in tables
        assert "triage_urgencyterm" not in tables

    def test_a_saved_rule_is_used_at_once(self, intake, rule_factory, reference_data):
        intake("预热一下")
        rule = rule_factory(name="P2", keywords="快递", set_priority=Priority.P2)
        assert intake(LOGISTICS_TEXT).priority == Priority.P2
        rule.is_active = False
        rule.save()
        assert intake(LOGISTICS_TEXT).priority == Priority.P3

    def test_other_processes_reload_after_commit(
        self, rule_factory, reference_data, django_capture_on_commit_callbacks
    ):
        from django.core.cache import cache

        engine.cached_rules_and_terms()
        before = cache.get(engine.rules_cache.generation_key)
        with django_capture_on_commit_callbacks(execute=True):
            rule_factory(name="新规则", keywords="快递")
        assert cache.get(engine.rules_cache.generation_key) != before
        assert [c.rule.name for c in engine.cached_rules_and_terms()[0]] == ["新规则"]

    def test_entries_expire(self, rule_factory, reference_data, monkeypatch):
        engine.cached_rules_and_terms()
        # A rule written where no signal fires (another process's raw SQL, say).
        from triage.models import RoutingRule

        RoutingRule.objects.bulk_create([RoutingRule(name="批量")])
        assert engine.cached_rules_and_terms()[0] == []
        monkeypatch.setattr(engine.rules_cache, "max_age", 0)
        assert [c.rule.name for c in engine.cached_rules_and_terms()[0]] == ["批量"]


def test_dry_run_page_query_count(
    login, agent, rule_factory, hotline, django_assert_max_num_queries
):
    for i in range(8):
        rule_factory(name=f"r{i}", keywords="快递", channels=[hotline], stop_processing=False)
    client = login(agent)
    with django_assert_max_num_queries(16):
        response = client.get("/triage/", {"text": "快递起火了", "vip_level": 0})
    assert response.content.decode().count('data-testid="triage-fired"') == 0


def test_seed_demo_triage_is_idempotent(db, reference_data, team_a, team_b, agent, agent2):
    from triage.models import AgentAvailability, RoutingRule, SkillGroup
    from triage.seeds import seed_triage_demo

    users = {"agent": agent, "agent2": agent2}
    teams = {"team-a": team_a, "team-b": team_b}
    lines = []
    seed_triage_demo(users=users, teams=teams, write=lines.append)
    counts = (RoutingRule.objects.count(), SkillGroup.objects.count())
    seed_triage_demo(users=users, teams=teams, write=lines.append)
    assert (RoutingRule.objects.count(), SkillGroup.objects.count()) == counts == (6, 3)
    assert AgentAvailability.objects.filter(status="on_duty").count() == 2
    assert "routing rules already present" in lines[-1]


def test_admin_refuses_a_parent_category_and_reversed_amounts(client, admin_user, reference_data):
    client.force_login(admin_user)
    response = client.post(
        "/admin/triage/routingrule/add/",
        {
            "name": "坏规则",
            "position": 10,
            "is_active": "on",
            "stop_processing": "on",
            "set_category": leaf_category("after-sales").pk,  # has subcategories
            "amount_min": "500",
            "amount_max": "100",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Choose a leaf category" in body
    assert "The upper amount is below the lower one." in body
    from triage.models import RoutingRule

    assert not RoutingRule.objects.exists()


def test_admin_rule_list_shows_what_each_rule_does(client, admin_user, rule_factory, supervisor):
    rule_factory(name="关注", keywords="快递", add_watcher=supervisor, set_priority=Priority.P1)
    client.force_login(admin_user)
    body = client.get("/admin/triage/routingrule/").content.decode()
    assert "priority P1 critical; watcher 陈主管" in body


def test_the_public_web_form_goes_through_the_rules(client, rule_factory, reference_data):
    """Every door calls the intake: the web form's complaint is routed too."""
    import re as regex

    from complaints.models import Ticket

    web = ChannelFactory(code="web", name="网页投诉", kind="web")
    rule_factory(name="网页物流", channels=[web], keywords="快递", set_priority=Priority.P2)
    page = client.get("/complain/").content.decode()
    token = regex.search(r'name="token" value="([0-9a-f]{32})"', page).group(1)
    response = client.post(
        "/complain/",
        {
            "name": "赵先生",
            "phone": "139 1234 5678",
            "body": "快递三天没到，电话打不通。",
            "website": "",
            "token": token,
        },
    )
    assert response.status_code == 200
    ticket = Ticket.objects.get()
    assert ticket.priority == Priority.P2
    assert ticket.events.filter(message__startswith="Rule “网页物流”").exists()


def test_signed_api_sends_the_order_amount_to_the_rules(rule_factory, reference_data):
    from complaints.models import Ticket
    from tests.channels.test_intake import payload, post

    wechat = ChannelFactory(code="wechat-api", kind="wechat")
    rule_factory(name="大额", amount_min=Decimal("5000"), set_priority=Priority.P2)
    response = post(wechat, payload(order_amount="6800.00"))
    assert response.status_code == 201
    ticket = Ticket.objects.get()
    assert ticket.priority == Priority.P2
    assert ticket.intake_facts.order_amount == Decimal("6800.00")
    bad = post(wechat, payload(external_id="msg-2", order_amount="-1"))
    assert bad.status_code == 400
    assert "order_amount" in bad.json()
