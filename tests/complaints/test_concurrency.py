"""Concurrent users on PostgreSQL: real row locks, real threads."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from complaints import services
from complaints.models import Status, Ticket
from tests.conftest import drive
from tests.factories import CustomerFactory, make_ticket

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def run_concurrently(fn, n):
    """Start `n` threads at the same moment; return each one's result or exception."""
    barrier = threading.Barrier(n)

    def worker(i):
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # noqa: BLE001 - the caller inspects every outcome
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


def test_ticket_numbers_are_unique_under_concurrent_creation(channel, team_a):
    customers = [CustomerFactory() for _ in range(20)]
    results = run_concurrently(
        lambda i: make_ticket(customer=customers[i], channel=channel, team=team_a).number, 20
    )
    assert all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 20
    assert Ticket.objects.count() == 20
    # Consecutive (earlier tests may have taken today's first serials: on PostgreSQL
    # numbers are taken in autocommit, outside their rolled-back transactions).
    serials = sorted(int(n.rsplit("-", 1)[1]) for n in results)
    assert serials == list(range(serials[0], serials[0] + 20))


def test_two_agents_taking_the_same_ticket_one_wins(ticket, agent, agent2):
    drive(ticket, agent, "classified")
    users = [agent, agent2]
    results = run_concurrently(
        lambda i: services.ticket_assign(ticket=ticket.number, actor=users[i], assignee=users[i]), 2
    )
    wins = [r for r in results if isinstance(r, Ticket)]
    conflicts = [r for r in results if isinstance(r, services.Conflict)]
    assert len(wins) == 1 and len(conflicts) == 1, results
    ticket.refresh_from_db()
    assert ticket.status == Status.ASSIGNED and ticket.assignee == wins[0].assignee
    assert ticket.events.filter(kind="assigned").count() == 1


def test_two_agents_closing_at_once_one_conflict_nothing_lost(ticket, agent, senior):
    drive(ticket, agent, "followed_up")
    users = [agent, senior]
    results = run_concurrently(
        lambda i: services.ticket_close(ticket=ticket.number, actor=users[i]), 2
    )
    assert sum(isinstance(r, Ticket) for r in results) == 1
    assert sum(isinstance(r, services.Conflict) for r in results) == 1
    assert ticket.events.filter(kind="closed").count() == 1


def test_opposite_merges_at_once_do_not_deadlock(supervisor, customer, channel, team_a):
    first = make_ticket(customer=customer, channel=channel, team=team_a)
    second = make_ticket(customer=customer, channel=channel, team=team_a)
    pairs = [(first.number, second.number), (second.number, first.number)]
    results = run_concurrently(
        lambda i: services.ticket_merge(ticket=pairs[i][0], actor=supervisor, into=pairs[i][1]), 2
    )
    assert sum(isinstance(r, Ticket) for r in results) == 1, results
    statuses = sorted(Ticket.objects.filter(customer=customer).values_list("status", flat=True))
    assert statuses == [Status.MERGED, Status.RECEIVED]
