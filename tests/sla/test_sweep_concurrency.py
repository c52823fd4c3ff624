"""Two sweeps at once on PostgreSQL: SKIP LOCKED and re-checks under the lock, no duplicates."""

import datetime as dt
from unittest import mock

import pytest
import time_machine
from django.core import mail

from complaints.models import EventKind, Notification
from sla import services as sla
from tests.complaints.test_concurrency import run_concurrently
from tests.conftest import drive
from tests.factories import make_ticket
from tests.sla.conftest import T0

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_concurrent_sweeps_send_each_warning_exactly_once(
    agent, senior, supervisor, customer, channel, team_a
):
    agent.email, senior.email = "xiaoli@example.cn", "zhang@example.cn"
    agent.save()
    senior.save()
    # The supervisor has no address: in-app only (not in line at 75 % anyway).
    with time_machine.travel(T0, tick=False):
        tickets = [make_ticket(customer=customer, channel=channel, team=team_a) for _ in range(30)]
        for ticket in tickets[:15]:
            drive(ticket, agent, "assigned")
    mail.outbox.clear()
    # django-q2 runs the queued e-mail task inline once each sweep's ticket commits.
    with (
        time_machine.travel(T0 + dt.timedelta(hours=3), tick=False),
        mock.patch("django_q.conf.Conf.SYNC", True),
    ):
        # Every first-response clock is at 75 %: warnings 1 and 2 at once.
        results = run_concurrently(lambda i: sla.sweep(batch_size=7), 4)
        assert all(isinstance(r, sla.SweepResult) for r in results), results
        sla.sweep()  # whatever a worker skipped is handled by the next run
        sla.sweep()  # and a run with nothing due sends nothing
    for ticket in tickets:
        assert ticket.events.filter(kind=EventKind.SLA_WARNING).count() == 1, ticket.number
    assigned, unassigned = tickets[:15], tickets[15:]
    # Assigned tickets: one warning to the assignee and the lead (levels 1 and 2 skipped
    # together); unassigned ones: the lead stands in for the missing assignee.
    for ticket in assigned:
        assert Notification.objects.filter(ticket=ticket, recipient=agent).count() == 1
        assert Notification.objects.filter(ticket=ticket, recipient=senior).count() == 1
    for ticket in unassigned:
        assert Notification.objects.filter(ticket=ticket).count() == 1
    assert Notification.objects.filter(recipient=supervisor).count() == 0
    # One e-mail per warning, to everyone told who has an address.
    assert len(mail.outbox) == 30
    by_ticket = {}
    for message in mail.outbox:
        number = next(t.number for t in tickets if t.number in message.subject)
        by_ticket.setdefault(number, []).append(sorted(message.to))
    assert len(by_ticket) == 30
    for ticket in assigned:
        assert by_ticket[ticket.number] == [["xiaoli@example.cn", "zhang@example.cn"]]
    for ticket in unassigned:
        assert by_ticket[ticket.number] == [["zhang@example.cn"]]


def test_sweep_skips_a_ticket_locked_by_an_agent(agent, senior, customer, channel, team_a):
    import threading

    from django.db import connection, transaction

    from complaints.models import Ticket

    with time_machine.travel(T0, tick=False):
        ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                Ticket.objects.select_for_update().get(pk=ticket.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        locked.wait(10)
        with time_machine.travel(T0 + dt.timedelta(hours=2), tick=False):
            result = sla.sweep()
        assert result.skipped == 1 and result.tickets == 0
    finally:
        release.set()
        holder.join()
    with time_machine.travel(T0 + dt.timedelta(hours=2), tick=False):
        assert sla.sweep().tickets == 1
    assert Notification.objects.filter(ticket=ticket).count() == 1
