"""Triage fixtures: rules, skill groups, on-duty agents and an intake helper."""

import itertools

import pytest

from channels.services import intake_submit
from complaints.models import Role
from tests.factories import ChannelFactory, make_staff
from triage.models import AgentAvailability, RoutingRule, SkillGroup

_ids = itertools.count(1)


@pytest.fixture
def rule_factory(db):
    def _rule(name="rule", position=100, channels=(), categories=(), **fields):
        rule = RoutingRule.objects.create(name=name, position=position, **fields)
        if channels:
            rule.channels.set(channels)
        if categories:
            rule.categories.set(categories)
        return rule

    return _rule


@pytest.fixture
def on_duty():
    def _on_duty(*users, status=AgentAvailability.Status.ON_DUTY):
        for user in users:
            AgentAvailability.objects.update_or_create(user=user, defaults={"status": status})

    return _on_duty


@pytest.fixture
def skill_group(team_a, agent, agent2, on_duty):
    group = SkillGroup.objects.create(name="物流组", team=team_a, max_open_per_agent=5)
    group.members.set([agent, agent2])
    on_duty(agent, agent2)
    return group


@pytest.fixture
def agent3(team_a):
    return make_staff("agent3", Role.AGENT, team_a, first_name="小赵")


@pytest.fixture
def intake(channel):
    """Submit a contact through the real intake (every door goes through it)."""

    def _intake(body, *, via=None, phone=None, vip=None, **kwargs):
        n = next(_ids)
        result = intake_submit(
            channel=via or channel,
            external_id=f"msg-{n}",
            customer={"name": f"客户{n}", "phone": phone or f"1390000{n:04d}"},
            body=body,
            **kwargs,
        )
        ticket = result.ticket
        if vip is not None:
            ticket.customer.vip_level = vip
            ticket.customer.save(update_fields=["vip_level"])
        ticket.refresh_from_db()
        return ticket

    return _intake


@pytest.fixture
def hotline(db):
    return ChannelFactory(code="hotline", name="客服热线", kind="hotline")
