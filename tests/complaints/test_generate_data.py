"""`manage.py generate_data`: benchmark data that obeys the same rules as the services."""

import io
import re
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Max
from django.urls import reverse

from complaints.management.bulk_data import LONG_PREFIX, PREFIX, RowWriter
from complaints.models import (
    OPEN_STATUSES,
    CollaborationTask,
    Compensation,
    Contact,
    Customer,
    CustomerIdentity,
    Status,
    Ticket,
    TicketSequence,
    TimelineEvent,
)
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db

N = 400
NUMBER = re.compile(r"TS(\d{8})-(\d{6})")


def generate(**options) -> str:
    out = io.StringIO()
    options.setdefault("tickets", N)
    options.setdefault("batch", 150)
    call_command("generate_data", stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def generated(db):
    return generate()


def test_counts_and_relations(generated):
    assert Ticket.objects.count() == N + 1  # plus the long-timeline ticket
    assert Customer.objects.count() == N // 3
    # Several identities per customer on average, each (kind, key) once.
    assert CustomerIdentity.objects.count() > Customer.objects.count() * 1.5
    assert not Ticket.objects.filter(contacts__isnull=True).exists()
    first_contacts = Contact.objects.filter(external_id__startswith=PREFIX)
    assert first_contacts.values("ticket").distinct().count() == N + 1
    events = TimelineEvent.objects.count()
    assert 5 * N < events < 12 * N
    assert Compensation.objects.exists() and CollaborationTask.objects.exists()
    # Every task's events name the task and the task's ticket.
    for task in CollaborationTask.objects.all()[:50]:
        assert task.events.exists()
        assert set(task.events.values_list("ticket_id", flat=True)) == {task.ticket_id}


def test_states_are_consistent(generated):
    by_status = Counter(Ticket.objects.values_list("status", flat=True))
    open_share = sum(by_status[s] for s in OPEN_STATUSES) / (N + 1)
    assert 0.03 < open_share < 0.2
    assert by_status[Status.CLOSED] > N * 0.7
    for t in Ticket.objects.all():
        if t.status == Status.CLOSED:
            assert t.closed_at and t.resolved_at and t.due_at is None
            assert t.resolution_time and t.solution and t.responsible_person
        elif t.status == Status.MERGED:
            assert t.merged_into_id and t.merged_into.status in OPEN_STATUSES
            assert t.due_at is None
        else:
            assert t.due_at is not None
        if t.status not in (Status.RECEIVED,):
            assert t.category_id and t.classified_at
        steps = [t.created_at, t.classified_at, t.assigned_at, t.first_responded_at, t.started_at]
        steps = [s for s in steps if s]
        assert steps == sorted(steps)
        assert t.contact_count == t.contacts.count()


def test_numbers_are_unique_and_follow_the_sequence(generated):
    numbers = list(Ticket.objects.values_list("number", flat=True))
    assert len(set(numbers)) == len(numbers)
    top = Counter()
    for number in numbers:
        day, serial = NUMBER.fullmatch(number).groups()
        top[day] = max(top[day], int(serial))
    sequence = {
        f"{d:%Y%m%d}": last for d, last in TicketSequence.objects.values_list("day", "last")
    }
    # Other tests' days may have counters too (PostgreSQL takes numbers in autocommit).
    assert {day: sequence.get(day) for day in top} == dict(top)


def test_long_timeline_ticket(generated):
    contact = Contact.objects.get(external_id__startswith=LONG_PREFIX)
    ticket = contact.ticket
    assert ticket.events.count() == 200
    assert ticket.status == Status.IN_PROGRESS and ticket.assignee.username == "agent"
    times = list(ticket.events.order_by("id").values_list("created_at", flat=True))
    assert times == sorted(times)


def test_pages_render_on_generated_data(generated, client):
    from django.contrib.auth import get_user_model

    agent = get_user_model().objects.get(username="agent")
    client.force_login(agent)
    for tab in ("mine", "team", "open"):
        assert client.get(reverse("workspace:queue"), {"tab": tab}).status_code == 200
    number = Contact.objects.get(external_id__startswith=LONG_PREFIX).ticket.number
    assert client.get(reverse("workspace:ticket", args=[number])).status_code == 200


def test_second_run_adds_with_fresh_ids_and_numbers(generated):
    generate(tickets=50, seed=2)
    assert Ticket.objects.count() == N + 1 + 51
    numbers = Ticket.objects.values_list("number", flat=True)
    assert len(set(numbers)) == len(numbers)
    # New rows get ids after the loaded ones: the id sequences were moved on.
    top = Ticket.objects.aggregate(top=Max("pk"))["top"]
    assert make_ticket().pk > top


def test_refuses_a_database_with_other_tickets(db):
    make_ticket()
    with pytest.raises(CommandError, match="--force"):
        generate(tickets=10)
    assert Ticket.objects.count() == 1
    generate(tickets=10, force=True)
    assert Ticket.objects.count() == 12


def test_foreign_key_bulk_check(generated):
    writer = RowWriter()
    writer.check_foreign_keys({Ticket: 1, TimelineEvent: 1, Contact: 1})
    per_ticket = TimelineEvent.objects.values("ticket").annotate(n=Count("id"))
    assert per_ticket.count() == N + 1


def test_bad_arguments(db):
    with pytest.raises(CommandError):
        generate(tickets=0)


def test_tab_counts_match_the_tabs(generated):
    """queue_counts / board_counts count each tab in a subquery: same numbers as the tabs."""
    from django.contrib.auth import get_user_model

    from complaints import selectors

    User = get_user_model()
    for username in ("agent", "senior", "supervisor"):
        user = User.objects.get(username=username)
        counts = selectors.queue_counts(user)
        assert counts == {
            tab: selectors.queue_tickets(user, tab=tab).count() for tab in selectors.QUEUE_TABS
        }
        assert counts["open"] > 0
    for username in ("logistics", "agent"):
        user = User.objects.get(username=username)
        assert selectors.board_counts(user) == {
            tab: selectors.task_board(user, tab=tab).count() for tab in selectors.BOARD_TABS
        }


def test_queue_pages_count_from_the_badges(generated, client):
    """Unfiltered, the paginator takes the tab's badge count; filtered, it counts."""
    from django.contrib.auth import get_user_model

    from complaints import selectors

    agent = get_user_model().objects.get(username="agent")
    client.force_login(agent)
    counts = selectors.queue_counts(agent)
    response = client.get(reverse("workspace:queue"), {"tab": "open"})
    assert response.context["page"].paginator.count == counts["open"]
    response = client.get(reverse("workspace:queue"), {"tab": "open", "priority": 1})
    expected = selectors.queue_tickets(agent, tab="open", filters={"priority": 1}).count()
    assert response.context["page"].paginator.count == expected


def test_knowledge_base_articles_from_the_same_texts(generated):
    """One published article per ticket by default (at most 100k), findable by search."""
    from kb.benchmarks import BENCH_TAG
    from kb.models import Article, ArticleStatus
    from kb.selectors import search_articles

    articles = Article.objects.filter(tags=BENCH_TAG)
    assert articles.count() == N
    assert not articles.exclude(status=ArticleStatus.PUBLISHED).exists()
    # Search by two words of one article's title finds it on the first page.
    article = articles.order_by("pk")[N // 2]
    words = [w for w in article.title_tokens.split() if len(w) > 1][:2]
    page = search_articles(" ".join(words), per_page=100)
    assert article.pk in {hit.obj.pk for hit in page.hits}


def test_articles_can_be_skipped(db):
    from kb.models import Article

    generate(tickets=20, articles=0)
    assert not Article.objects.exists()
    with pytest.raises(CommandError, match="--articles"):
        generate(tickets=20, articles=-1, force=True)


def test_the_open_backlog_gets_its_sla_clocks(generated):
    """`--clocks open` (the default): every open ticket has its four clocks, with a pending
    check where one still runs, so the queue countdowns and the sweep have work; the
    closed history has none."""
    from complaints.models import OPEN_STATUSES
    from sla.models import Clock

    open_ids = set(Ticket.objects.filter(status__in=OPEN_STATUSES).values_list("pk", flat=True))
    assert open_ids
    per_ticket = Clock.objects.values("ticket_id").annotate(n=Count("id"))
    assert {row["ticket_id"] for row in per_ticket} == open_ids
    assert {row["n"] for row in per_ticket} == {4}
    assert Clock.objects.filter(next_check_at__isnull=False).exists()


def test_clocks_for_every_ticket_or_none(db):
    from sla.models import Clock

    generate(tickets=30, clocks="none", articles=0)
    assert not Clock.objects.exists()
    generate(tickets=30, clocks="all", articles=0, seed=3)
    # The second run backfills every ticket but the merged ones (they keep no clock).
    assert Clock.objects.values("ticket_id").distinct().count() == (
        Ticket.objects.exclude(status="merged").count()
    )
