"""Ticket numbers on PostgreSQL: taken outside the creating transaction, so creations do
not queue behind each other's commits; unique whatever happens to that transaction."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from complaints import numbering, services
from complaints.models import Ticket, TicketSequence
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def create(channel, team, subject="快递三天没到"):
    return services.ticket_create(
        customer=CustomerFactory(), channel=channel, team=team, subject=subject, body=subject
    )


def test_a_creation_does_not_wait_for_another_to_commit(channel, team_a):
    numbered, release = threading.Event(), threading.Event()
    outcome = {}

    def slow_creator():
        try:
            with transaction.atomic():
                outcome["first"] = create(channel, team_a).number
                numbered.set()
                release.wait(10)  # a long routing step, say, before the commit
        finally:
            connection.close()

    first = threading.Thread(target=slow_creator)
    first.start()
    try:
        assert numbered.wait(10), "the first creation did not get its number"
        started = time.monotonic()
        second = create(channel, team_a, subject="电话打不通")
        waited = time.monotonic() - started
        first_still_open = first.is_alive()
    finally:
        release.set()
        first.join(15)
    # Taken inside the transaction, the day's counter stayed locked until the first
    # creation committed: the second waited the whole 10 s.
    assert first_still_open, f"the second creation waited {waited:.1f}s for the first"
    serial = lambda number: int(number.rsplit("-", 1)[1])  # noqa: E731
    assert serial(second.number) == serial(outcome["first"]) + 1
    assert Ticket.objects.count() == 2


def test_a_rolled_back_creation_leaves_a_gap_never_a_duplicate(channel, team_a):
    kept = create(channel, team_a)
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = create(channel, team_a, subject="电话打不通")
        raise RuntimeError("the intake failed after numbering its ticket")
    after = create(channel, team_a, subject="屏幕有划痕")
    serial = lambda number: int(number.rsplit("-", 1)[1])  # noqa: E731
    assert serial(lost.number) == serial(kept.number) + 1
    assert serial(after.number) == serial(lost.number) + 1  # the gap
    assert sorted(Ticket.objects.values_list("number", flat=True)) == [kept.number, after.number]


def test_a_counter_held_by_a_transaction_is_waited_for_briefly(channel, team_a, monkeypatch):
    # A bulk loader reserves a block of today's serials in its transaction and then, in
    # the same transaction, creates a ticket: the number's own connection cannot get the
    # counter, so after a short wait the serial is taken inside the transaction.
    monkeypatch.setattr(numbering, "LOCK_TIMEOUT_MS", 200)
    numbering.close()  # the next connection sets the shorter lock timeout
    today = timezone.localdate()
    try:
        with transaction.atomic():
            TicketSequence.objects.update_or_create(day=today, defaults={"last": 41})
            started = time.monotonic()
            ticket = create(channel, team_a)
            waited = time.monotonic() - started
    finally:
        numbering.close()
    assert ticket.number == f"TS{today:%Y%m%d}-000042"
    assert 0.15 < waited < 5
    assert TicketSequence.objects.get(day=today).last == 42


def test_numbers_survive_a_lost_connection(channel, team_a):
    first = create(channel, team_a)
    lost = numbering._own["connection"]
    lost.close()  # e.g. the server restarted in between
    second = create(channel, team_a, subject="电话打不通")
    serial = lambda number: int(number.rsplit("-", 1)[1])  # noqa: E731
    assert serial(second.number) == serial(first.number) + 1
    # Taken on a new connection of its own, not fallen back into the transaction for good.
    assert numbering._own["connection"] is not lost and not numbering._own["connection"].closed
