"""Assignment within a skill group: strategies, availability, cap, and races."""

import threading
import time

import pytest
from django.db import close_old_connections, connection, transaction

from complaints.models import EventKind, Role, Status, Ticket
from sla import risks
from sla.models import RiskAlert, RiskKind
from tests.factories import make_staff, make_ticket
from triage import assignment
from triage.assignment import pick_agent
from triage.models import AgentAvailability, SkillGroup

pytestmark = pytest.mark.django_db


def pick(group):
    with transaction.atomic():
        return pick_agent(group).user


def give(user, n, team):
    """n active tickets assigned to user."""
    for _ in range(n):
        ticket = make_ticket(team=team)
        Ticket.objects.filter(pk=ticket.pk).update(assignee=user, status=Status.ASSIGNED)


class TestStrategies:
    def test_round_robin_takes_turns(self, skill_group, agent, agent2, agent3, on_duty):
        skill_group.members.add(agent3)
        on_duty(agent3)
        picks = [pick(skill_group) for _ in range(6)]
        assert picks == [agent, agent2, agent3, agent, agent2, agent3]

    def test_least_open_takes_the_least_loaded(self, skill_group, agent, agent2, team_a):
        skill_group.strategy = SkillGroup.Strategy.LEAST_OPEN
        skill_group.save()
        give(agent, 2, team_a)
        assert pick(skill_group) == agent2
        give(agent2, 3, team_a)
        assert pick(skill_group) == agent

    def test_only_active_tickets_count(self, skill_group, agent, agent2, team_a):
        skill_group.strategy = SkillGroup.Strategy.LEAST_OPEN
        skill_group.save()
        give(agent, 2, team_a)
        Ticket.objects.filter(assignee=agent).update(status=Status.RESOLVED)
        assert pick(skill_group) == agent  # resolved work does not count; agent.pk is first

    def test_away_agents_get_nothing(self, skill_group, agent, agent2, on_duty):
        on_duty(agent, status=AgentAvailability.Status.AWAY)
        assert {pick(skill_group) for _ in range(3)} == {agent2}

    def test_agents_without_availability_row_get_nothing(self, skill_group, agent, agent2):
        AgentAvailability.objects.filter(user=agent2).delete()
        assert {pick(skill_group) for _ in range(2)} == {agent}

    def test_cap_on_open_tickets(self, skill_group, agent, agent2, team_a):
        skill_group.max_open_per_agent = 2
        skill_group.save()
        give(agent, 2, team_a)
        give(agent2, 1, team_a)
        assert pick(skill_group) == agent2
        give(agent2, 1, team_a)
        with transaction.atomic():
            result = pick_agent(skill_group)
        assert result.user is None
        assert result.reason == "everyone on duty is at the cap"

    def test_members_of_another_team_are_not_picked(
        self, skill_group, agent, agent2, other_agent, on_duty
    ):
        skill_group.members.add(other_agent)
        on_duty(other_agent)
        assert other_agent not in {pick(skill_group) for _ in range(4)}

    def test_department_staff_in_a_group_are_not_picked(self, skill_group, agent, agent2, on_duty):
        staff = make_staff("odd", Role.DEPARTMENT, skill_group.team)
        skill_group.members.add(staff)
        on_duty(staff)
        assert staff not in {pick(skill_group) for _ in range(4)}


class TestAvailabilityPage:
    def test_agent_sets_own_availability(self, login, agent):
        client = login(agent)
        response = client.post("/triage/availability/", {"status": "away"})
        assert response.status_code == 302
        assert AgentAvailability.objects.get(user=agent).status == "away"
        client.post("/triage/availability/", {"status": "on_duty"})
        assert AgentAvailability.objects.get(user=agent).status == "on_duty"

    def test_bad_status_changes_nothing(self, login, agent, on_duty):
        on_duty(agent)
        login(agent).post("/triage/availability/", {"status": "asleep"})
        assert AgentAvailability.objects.get(user=agent).status == "on_duty"

    def test_supervisor_has_no_availability(self, login, supervisor):
        response = login(supervisor).post("/triage/availability/", {"status": "away"}, follow=True)
        assert "for agents and team leads" in response.content.decode()
        assert not AgentAvailability.objects.exists()


class TestPassedAround:
    def test_each_assignment_counts_towards_the_reassigned_signal(
        self, intake, rule_factory, skill_group, senior, agent, agent2, agent3, settings
    ):
        """Auto-assignment writes the same ASSIGNED event the 推诿 risk scan counts."""
        from complaints import services
        from complaints.models import Impact, Level
        from tests.factories import leaf_category

        rule_factory(
            name="物流",
            keywords="快递",
            set_category=leaf_category("logistics"),
            set_amount_level=Level.LOW,
            set_impact=Impact.INDIVIDUAL,
            set_urgency=Level.MEDIUM,
            assign_skill_group=skill_group,
        )
        ticket = intake("快递一直没到")
        services.ticket_assign(ticket=ticket.number, actor=senior, assignee=agent2)
        services.ticket_assign(ticket=ticket.number, actor=senior, assignee=agent3)
        assert ticket.events.filter(kind=EventKind.ASSIGNED).count() == 3
        risks.scan()
        assert RiskAlert.objects.filter(ticket=ticket, kind=RiskKind.REASSIGNED).exists()


# --- concurrency on PostgreSQL --------------------------------------------------------------


def _run_concurrently(n, work):
    """Run work(i) in n threads released together; return results and errors."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


@pytest.fixture
def slow_counting(monkeypatch):
    """Widen the race: pause between counting open tickets and taking the pick. Without
    the row locks, concurrent pickers would all count the same free slots."""
    real = assignment.open_ticket_counts

    def slow(user_ids):
        counts = real(user_ids)
        time.sleep(0.15)
        return counts

    monkeypatch.setattr(assignment, "open_ticket_counts", slow)


def _assign_new_ticket(group, team):
    close_old_connections()
    ticket = make_ticket(team=team)
    with transaction.atomic():
        chosen = pick_agent(group).user
        if chosen is not None:
            Ticket.objects.filter(pk=ticket.pk).update(assignee=chosen, status=Status.ASSIGNED)
    return chosen.pk if chosen else None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentPicking:
    def test_the_last_free_slot_is_taken_once(
        self, reference_data, team_a, agent, on_duty, slow_counting
    ):
        group = SkillGroup.objects.create(name="一人组", team=team_a, max_open_per_agent=1)
        group.members.set([agent])
        on_duty(agent)
        results, errors = _run_concurrently(4, lambda i: _assign_new_ticket(group, team_a))
        assert not errors
        assert results.count(agent.pk) == 1
        assert results.count(None) == 3
        assert agent.assigned_tickets.filter(status=Status.ASSIGNED).count() == 1

    def test_round_robin_spreads_concurrent_intakes_evenly(
        self, reference_data, team_a, agent, agent2, on_duty, slow_counting
    ):
        group = SkillGroup.objects.create(name="轮流", team=team_a, max_open_per_agent=50)
        group.members.set([agent, agent2])
        on_duty(agent, agent2)
        results, errors = _run_concurrently(6, lambda i: _assign_new_ticket(group, team_a))
        assert not errors
        assert sorted(results.count(u.pk) for u in (agent, agent2)) == [3, 3]

    def test_least_loaded_under_concurrency_respects_the_cap(
        self, reference_data, team_a, agent, agent2, on_duty, slow_counting
    ):
        group = SkillGroup.objects.create(
            name="少者得",
            team=team_a,
            strategy=SkillGroup.Strategy.LEAST_OPEN,
            max_open_per_agent=2,
        )
        group.members.set([agent, agent2])
        on_duty(agent, agent2)
        results, errors = _run_concurrently(6, lambda i: _assign_new_ticket(group, team_a))
        assert not errors
        assert results.count(agent.pk) == 2
        assert results.count(agent2.pk) == 2
        assert results.count(None) == 2

    def test_concurrent_intakes_never_share_the_last_slot(
        self, reference_data, team_a, agent, on_duty, channel, slow_counting
    ):
        from channels.services import intake_submit
        from complaints.models import Impact, Level
        from tests.factories import leaf_category
        from triage.models import RoutingRule

        group = SkillGroup.objects.create(name="一人组", team=team_a, max_open_per_agent=1)
        group.members.set([agent])
        on_duty(agent)
        RoutingRule.objects.create(
            name="物流",
            keywords="快递",
            set_category=leaf_category("logistics"),
            set_amount_level=Level.LOW,
            set_impact=Impact.INDIVIDUAL,
            set_urgency=Level.MEDIUM,
            assign_skill_group=group,
        )

        def submit(i):
            close_old_connections()
            result = intake_submit(
                channel=channel,
                external_id=f"race-{i}",
                customer={"name": f"客户{i}", "phone": f"1380000{i:04d}"},
                body="快递一直没到，请尽快处理",
            )
            return result.ticket.pk

        results, errors = _run_concurrently(3, submit)
        assert not errors
        tickets = Ticket.objects.filter(pk__in=results)
        assert tickets.filter(assignee=agent).count() == 1
        assert tickets.filter(assignee__isnull=True, status=Status.CLASSIFIED).count() == 2
