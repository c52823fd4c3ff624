"""Reads: what a user may see, the queue, the ticket page and the customer 360."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import models
from django.db.models import (
    Aggregate,
    Count,
    F,
    IntegerField,
    JSONField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, JSONObject
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from channels.selectors import channels_cache

from . import policies
from .models import (
    ACTIVE_STATUSES,
    ACTIVE_TASK_STATES,
    OPEN_STATUSES,
    PAID_COMPENSATION_STATES,
    Attachment,
    CallbackState,
    Category,
    Channel,
    CollaborationTask,
    Compensation,
    CompensationLimit,
    CompensationState,
    Contact,
    Customer,
    CustomerIdentity,
    Department,
    FollowUpCall,
    Notification,
    Role,
    Status,
    Survey,
    TaskState,
    Ticket,
)
from .refcache import ReferenceCache

QUEUE_TABS = ("mine", "team", "open")
# The filters that narrow a queue tab (sort only reorders it).
QUEUE_FILTERS = ("status", "category", "priority", "channel")


def ticket_for_user(user, number: str, *, page_lists: bool = False) -> tuple[Ticket, bool]:
    """The ticket and whether the user may act on it; 404 for anyone who may not see it.

    Outsiders get 404 rather than 403 so ticket numbers cannot be probed.
    `page_lists`: also read the ticket page's short lists in the same query (see
    `ticket_page_lists`).
    """
    # The ticket a duplicate went into by its number alone: joining the ticket table a
    # second time doubled PostgreSQL's planning time for this query (~3 ms of ~5 ms).
    merged_into = Ticket.objects.filter(pk=OuterRef("merged_into_id")).values("number")
    tickets = Ticket.objects.select_related(
        "customer", "category__parent", "channel", "assignee", "team"
    ).annotate(merged_into_number=Subquery(merged_into))
    if page_lists:
        tickets = tickets.annotate(**_PAGE_LISTS)
    ticket = tickets.filter(number=number).first()
    if ticket is None or not policies.can_view_ticket(user, ticket):
        raise Http404("No such ticket")
    return ticket, policies.is_service_staff(user)


# --- the ticket page's short lists, folded into the ticket's own query ------------------


class _JSONRows(Aggregate):
    """The group's values as one JSON array (json_group_array / jsonb_agg)."""

    function = "JSON_GROUP_ARRAY"
    output_field = JSONField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="JSONB_AGG", **extra_context)


def _json_rows(queryset, **extra) -> Subquery:
    """Every row of `queryset` (all its columns, plus `extra` expressions) as a JSON
    array of objects: one column of the outer query instead of a query of its own.
    NULL or [] when there is none. `_instances` turns it back into model instances."""
    columns = {f.attname: F(f.attname) for f in queryset.model._meta.concrete_fields}
    rows = (
        queryset.order_by()
        .annotate(_all=Value(1))
        .values("_all")
        .annotate(rows=_JSONRows(JSONObject(**columns, **extra)))
        .values("rows")
    )
    return Subquery(rows, output_field=JSONField())


def _from_json(field, value):
    """A column's value as the model field holds it (JSON has no dates or decimals)."""
    if value is None:
        return None
    if isinstance(field, models.DateTimeField):
        parsed = parse_datetime(value)
        # SQLite stores UTC without an offset; PostgreSQL's JSON carries one.
        return timezone.make_aware(parsed, dt.UTC) if timezone.is_naive(parsed) else parsed
    if isinstance(field, models.DateField):
        return parse_date(value)
    if isinstance(field, models.DecimalField):
        return Decimal(str(value))
    if isinstance(field, models.BooleanField):
        return bool(value)
    return value


def _instances(model, rows, *, db: str, order_by: tuple[str, ...]) -> list:
    """Model instances (as if loaded by a query) from `_json_rows`' JSON, sorted."""
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    objects = []
    for row in rows or ():
        obj = model.from_db(db, names, [_from_json(f, row[f.attname]) for f in fields])
        obj._json_row = row
        objects.append(obj)
    return sorted(objects, key=lambda o: tuple(getattr(o, name) for name in order_by))


_PAGE_LISTS = {
    "_attachments_json": _json_rows(Attachment.objects.filter(ticket_id=OuterRef("pk"))),
    "_contacts_json": _json_rows(
        Contact.objects.filter(ticket_id=OuterRef("pk")), channel_name=F("channel__name")
    ),
    "_surveys_json": _json_rows(Survey.objects.filter(ticket_id=OuterRef("pk"))),
    "_identities_json": _json_rows(
        CustomerIdentity.objects.filter(customer_id=OuterRef("customer_id"))
    ),
}


@dataclass
class TicketPageLists:
    attachments: list
    contacts: list
    identities: list
    survey: Survey | None


def ticket_page_lists(ticket: Ticket) -> TicketPageLists:
    """The evidence files, contacts and surveys of the ticket and the identities of its
    customer: from the JSON columns of `ticket_for_user(..., page_lists=True)` (no
    query), else read here (four queries)."""
    if not hasattr(ticket, "_attachments_json"):
        return TicketPageLists(
            attachments=list(ticket.attachments.all()),
            contacts=list(ticket.contacts.select_related("channel")),
            identities=list(ticket.customer.identities.order_by("id")),
            survey=ticket.surveys.order_by("-created_at", "-id").first(),
        )
    db = ticket._state.db
    attachments = _instances(
        Attachment, ticket._attachments_json, db=db, order_by=("created_at", "id")
    )
    contacts = _instances(Contact, ticket._contacts_json, db=db, order_by=("occurred_at", "id"))
    for item in attachments:
        item.ticket = ticket
    for contact in contacts:
        contact.ticket = ticket
        contact.channel = Channel(id=contact.channel_id, name=contact._json_row["channel_name"])
    surveys = _instances(Survey, ticket._surveys_json, db=db, order_by=("created_at", "id"))
    for survey in surveys:
        survey.ticket = ticket
    identities = _instances(CustomerIdentity, ticket._identities_json, db=db, order_by=("id",))
    for identity in identities:
        identity.customer = ticket.customer
    return TicketPageLists(
        attachments=attachments,
        contacts=contacts,
        identities=identities,
        survey=surveys[-1] if surveys else None,
    )


def queue_tickets(user, *, tab: str = "mine", filters: dict | None = None):
    """Tickets for one queue tab, sorted by priority then the next deadline.

    Joins only the customer and the assignee: `with_reference_rows` adds the category and
    the channel from the cached tables (every join costs PostgreSQL planning time: the
    five of `for_queue` took ~8 ms to plan, two ~1 ms).
    """
    filters = filters or {}
    qs = Ticket.objects.select_related("customer", "assignee")
    if tab == "mine":
        qs = qs.filter(assignee=user, status__in=OPEN_STATUSES)
    elif tab == "team":
        team_id = policies.team_id_of(user)
        qs = qs.filter(assignee__isnull=True, status__in=ACTIVE_STATUSES)
        qs = qs.filter(Q(team_id=team_id) | Q(team__isnull=True)) if team_id else qs
    else:
        qs = qs.filter(status__in=OPEN_STATUSES)
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("category"):
        qs = qs.filter(
            Q(category_id=filters["category"]) | Q(category__parent_id=filters["category"])
        )
    if filters.get("priority"):
        qs = qs.filter(priority=filters["priority"])
    if filters.get("channel"):
        qs = qs.filter(channel__code=filters["channel"])
    sort = filters.get("sort") or "priority"
    if sort == "due":
        qs = qs.order_by("due_at", "priority", "id")
    elif sort == "newest":
        qs = qs.order_by("-created_at", "-id")
    else:
        qs = qs.order_by("priority", "due_at", "id")
    return qs


class DeferredJoinPaginator(Paginator):
    """Pages of a sorted queryset that stay cheap deep down (page 100 of "all open").

    With a plain OFFSET, PostgreSQL fetches and joins every skipped row (customer,
    channel, category, assignee…) before discarding it: 2,500 joined rows for page 100.
    Here a later page is `WHERE id IN (the page's ids)`: the ids come from the sort
    index alone (an index-only scan over the skipped entries, no heap, no join), and
    only the page's rows are read and joined. The outer query keeps the ordering, so
    the page's rows come back in queue order. Same page numbers and links as before.
    """

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        tickets = self.object_list
        # The first page skips nothing: LIMIT alone.
        rows = tickets.filter(pk__in=tickets.values("pk")[bottom:top]) if bottom else tickets[:top]
        return self._get_page(rows, number, self)


def _count(qs) -> Coalesce:
    """COUNT(*) of a queryset as a scalar subquery (the constant GROUP BY key is dropped,
    so it yields one row; an empty queryset, `.none()`, yields NULL, hence the 0)."""
    counted = qs.order_by().annotate(_all=Value(1)).values("_all").annotate(n=Count("*"))
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), 0)


# A big backlog's "all open" badge is shared by every agent and costs a count of every
# open ticket per page view (~10 ms at 80,000): above this many it is counted at most
# once per OPEN_COUNT_MAX_AGE seconds (in the shared cache: Redis in production), like
# the view counts of other helpdesks. A small backlog is always counted exactly.
OPEN_COUNT_EXACT_UP_TO = 5_000
OPEN_COUNT_MAX_AGE = 10
OPEN_COUNT_CACHE_KEY = "queue:open-count"


def queue_counts(user) -> dict[str, int]:
    """The three tab badges in one query.

    Each count is its own subquery, so each reads the small partial index made for its
    tab (the open backlog is a few percent of a table that is mostly closed history)
    instead of one pass over every open ticket evaluating three filters. "All open" of
    a backlog over OPEN_COUNT_EXACT_UP_TO may be up to OPEN_COUNT_MAX_AGE seconds old.
    """
    shared_open = cache.get(OPEN_COUNT_CACHE_KEY)
    tabs = {
        "mine": _count(queue_tickets(user, tab="mine")),
        "team": _count(queue_tickets(user, tab="team")),
    }
    if shared_open is None:
        tabs["open"] = _count(queue_tickets(user, tab="open"))
    counts = get_user_model().objects.filter(pk=user.pk).annotate(**tabs).values(*tabs).first()
    counts = counts or dict.fromkeys(tabs, 0)
    if shared_open is not None:
        counts["open"] = shared_open
    elif counts["open"] > OPEN_COUNT_EXACT_UP_TO:
        cache.set(OPEN_COUNT_CACHE_KEY, counts["open"], OPEN_COUNT_MAX_AGE)
    return counts


def available_actions(user, ticket: Ticket) -> list[str]:
    """Transitions the user may run on the ticket in its current state (for buttons)."""
    if not policies.is_service_staff(user):
        return []
    field = Ticket._meta.get_field("status")
    names = []
    for transition in field.get_all_transitions(Ticket):
        if transition.source != ticket.status or transition.name in names:
            continue
        if transition.name == "first_response" and ticket.first_responded_at:
            continue
        if transition.name == "start" and not ticket.first_responded_at:
            continue
        if (
            transition.name == "assign"
            and ticket.assignee_id == user.pk
            and policies.tier_of(user) == 1
        ):
            continue  # an agent's own ticket: nothing to take
        if policies.action_refusal(user, ticket, transition.name, assignee=user) is None:
            names.append(transition.name)
    return sorted(names, key=policies.LIFECYCLE_ACTIONS.index)


@dataclass
class Customer360:
    customer: Customer
    tickets: list
    open_count: int
    promises: list
    identities: list
    compensation_total: Decimal = Decimal("0.00")


def customer_360(
    customer: Customer,
    *,
    limit: int = 50,
    compensation_total: Decimal | None = None,
    identities: list | None = None,
) -> Customer360:
    """Everything about a customer in one view: tickets on every channel and what was promised.

    `compensation_total` and `identities`, when the caller has read them already, save
    their queries."""
    tickets = list(
        customer.tickets.select_related("channel", "category__parent", "assignee").order_by(
            "-created_at"
        )[:limit]
    )
    promises = [t for t in tickets if t.promised_followup_at and t.status in OPEN_STATUSES]
    return Customer360(
        customer=customer,
        tickets=tickets,
        open_count=sum(1 for t in tickets if t.status in OPEN_STATUSES),
        promises=promises,
        identities=list(customer.identities.all()) if identities is None else identities,
        compensation_total=(
            customer_compensation_total(customer)
            if compensation_total is None
            else compensation_total
        ),
    )


def assignable_staff(team_id: int | None):
    """Active agents a ticket of the team can go to (supervisors can take any)."""
    qs = get_user_model().objects.filter(
        is_active=True, profile__role__in=[Role.AGENT, Role.SENIOR, Role.SUPERVISOR]
    )
    if team_id:
        qs = qs.filter(Q(profile__department_id=team_id) | Q(profile__role=Role.SUPERVISOR))
    return qs.select_related("profile").order_by("username")


def lookup(query: str, *, limit: int = 20):
    """Find tickets by ticket number, customer phone or order number."""
    from .phone import normalize_phone

    query = query.strip()
    if not query:
        return Ticket.objects.none()
    condition = Q(number__iexact=query) | Q(order_no=query)
    phone = normalize_phone(query)
    if phone:
        condition |= Q(customer__phone=phone)
    return Ticket.objects.for_queue().filter(condition).order_by("-created_at")[:limit]


def customer_stats(customer: Customer) -> dict:
    return customer.tickets.aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(status__in=OPEN_STATUSES)),
        last_contact=Max("created_at"),
        reopened=Count("id", filter=Q(reopen_count__gt=0)),
        closed=Count("id", filter=Q(status=Status.CLOSED)),
    )


# --- compensation ------------------------------------------------------------------


def ticket_compensations(ticket: Ticket) -> tuple[list[Compensation], Decimal]:
    """The ticket's compensation rows (oldest first) and the total the customer gets."""
    rows = list(
        ticket.compensations.select_related("requested_by", "decided_by").order_by(
            "created_at", "id"
        )
    )
    total = sum((c.amount for c in rows if c.state in PAID_COMPENSATION_STATES), Decimal("0.00"))
    return rows, total


def ticket_page_compensations(ticket: Ticket) -> tuple[list[Compensation], Decimal, Decimal]:
    """For the ticket page, in one query: the ticket's rows, its total and the customer's
    total over all their tickets (granted plus approved)."""
    rows = list(
        Compensation.objects.filter(ticket__customer_id=ticket.customer_id)
        .select_related("requested_by", "decided_by")
        .order_by("created_at", "id")
    )
    mine = [c for c in rows if c.ticket_id == ticket.pk]
    for compensation in mine:
        compensation.ticket = ticket
    paid = Decimal("0.00")
    customer_paid = Decimal("0.00")
    for c in rows:
        if c.state in PAID_COMPENSATION_STATES:
            customer_paid += c.amount
            if c.ticket_id == ticket.pk:
                paid += c.amount
    return mine, paid, customer_paid


def customer_compensation_total(customer: Customer) -> Decimal:
    total = Compensation.objects.filter(
        ticket__customer=customer, state__in=PAID_COMPENSATION_STATES
    ).aggregate(total=Sum("amount"))["total"]
    return total or Decimal("0.00")


def pending_approvals(user):
    """Requests this user may decide: a lead's team's requests routed to tier 2, and
    every pending request for supervisors. Oldest first; never the user's own."""
    tier = policies.tier_of(user)
    if tier < 2:
        return Compensation.objects.none()
    qs = (
        Compensation.objects.filter(state=CompensationState.REQUESTED, approver_tier__lte=tier)
        .exclude(requested_by=user)
        .select_related("ticket__customer", "ticket__team", "requested_by")
        .order_by("created_at", "id")
    )
    if policies.role_of(user) == Role.SENIOR:
        team_id = policies.team_id_of(user)
        qs = qs.filter(Q(ticket__team_id=team_id) | Q(ticket__team__isnull=True))
    return qs


def compensations_for_user(user):
    """Compensation rows the user may read (service staff only)."""
    if not policies.is_service_staff(user):
        return Compensation.objects.none()
    return Compensation.objects.select_related("ticket", "requested_by", "decided_by").order_by(
        "-created_at", "-id"
    )


# --- collaboration tasks -------------------------------------------------------------

BOARD_TABS = ("unclaimed", "mine", "department", "done")


def visible_tasks(user):
    """Tasks the user may read: service staff all, department staff their department's."""
    qs = CollaborationTask.objects.select_related(
        "ticket__customer", "department", "assignee", "created_by"
    )
    if policies.is_service_staff(user):
        return qs
    if policies.is_department_staff(user) and policies.team_id_of(user):
        return qs.filter(department_id=policies.team_id_of(user))
    return qs.none()


def task_for_user(user, pk) -> CollaborationTask:
    try:
        return visible_tasks(user).get(pk=int(pk))
    except (CollaborationTask.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such task") from exc


def task_board(user, *, tab: str = "unclaimed"):
    """One tab of a department's board, most urgent first."""
    qs = visible_tasks(user)
    if tab == "mine":
        qs = qs.filter(assignee=user, state=TaskState.CLAIMED).order_by("complete_due_at", "id")
    elif tab == "department":
        qs = qs.filter(state=TaskState.CLAIMED).order_by("complete_due_at", "id")
    elif tab == "done":
        qs = qs.filter(state__in=[TaskState.DONE, TaskState.RETURNED]).order_by(
            "-updated_at", "-id"
        )
    else:
        qs = qs.filter(state=TaskState.OPEN).order_by("respond_due_at", "id")
    return qs


def board_counts(user) -> dict[str, int]:
    """The four tab badges in one query, each count on the index of its own tab."""
    counts = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(**{tab: _count(task_board(user, tab=tab)) for tab in BOARD_TABS})
        .values(*BOARD_TABS)
        .first()
    )
    return counts or dict.fromkeys(BOARD_TABS, 0)


def ticket_tasks(ticket: Ticket, user=None) -> list[CollaborationTask]:
    """The ticket's tasks (department staff: only their department's)."""
    qs = ticket.tasks.select_related("department", "assignee", "created_by").order_by(
        "created_at", "id"
    )
    if user is not None and not policies.is_service_staff(user):
        qs = qs.filter(department_id=policies.team_id_of(user))
    return list(qs)


def department_tickets(user):
    """Tickets department staff may open: those their department has tasks on."""
    if not policies.is_department_staff(user) or not policies.team_id_of(user):
        return Ticket.objects.none()
    return Ticket.objects.filter(tasks__department_id=policies.team_id_of(user)).distinct()


def nav_badges(user) -> dict[str, int]:
    """Counts for the header: unread notifications, approvals waiting, open tasks."""
    if not user.is_authenticated:
        return {}
    badges = {
        "notifications": Notification.objects.filter(recipient=user, read_at__isnull=True).count(),
        "approvals": None,
        "tasks": None,
        "callbacks": None,
    }
    if policies.tier_of(user) >= 2:
        badges["approvals"] = pending_approvals(user).count()
    if policies.is_service_staff(user):
        badges["callbacks"] = callbacks_for_user(user).filter(due_at__lte=timezone.now()).count()
    if policies.is_department_staff(user):
        badges["tasks"] = visible_tasks(user).filter(state__in=ACTIVE_TASK_STATES).count()
    return badges


def ticket_totals(ticket_ids) -> dict[int, Decimal]:
    """Granted + approved amount per ticket, for a list of tickets in one query."""
    rows = (
        Compensation.objects.filter(
            ticket_id__in=set(ticket_ids), state__in=PAID_COMPENSATION_STATES
        )
        .values("ticket_id")
        .annotate(total=Sum("amount"))
    )
    return {row["ticket_id"]: row["total"] for row in rows}


def collaborating_departments():
    return Department.objects.filter(kind=Department.Kind.COLLABORATING).order_by("code")


# --- reference tables, cached ------------------------------------------------------------
# Read by every ticket page and queue request, edited by admins a few times a year. Each
# process keeps a copy until a save or delete commits anywhere (the generation key lives
# in the shared cache: Redis in production; with the local-memory default, other
# processes notice within max_age). Services never use these copies: a grant checks the
# limits it reads under the ticket's lock, a task's deadlines come from the database.
# The watched models are registered in ComplaintsConfig.ready. Read-only values.


def _load_compensation_limits() -> dict[int, Decimal]:
    return {0: Decimal("0.00"), **{row.tier: row.amount for row in CompensationLimit.objects.all()}}


compensation_limits_cache = ReferenceCache(
    "compensation-limits", _load_compensation_limits, max_age=30
)
departments_cache = ReferenceCache(
    "collaborating-departments", lambda: list(collaborating_departments()), max_age=30
)
categories_cache = ReferenceCache(
    "categories", lambda: list(Category.objects.select_related("parent")), max_age=30
)


def _channels_by_id() -> dict[int, Channel]:
    # The channels' own cache (by API key, for signed requests) serves here too.
    return {c.pk: c for c in channels_cache.get().values()}


def active_channels() -> list[Channel]:
    """The channels still taking contacts, in their order (the queue's channel filter)."""
    return [c for c in _channels_by_id().values() if c.is_active]


def with_reference_rows(tickets: list[Ticket]) -> list[Ticket]:
    """The tickets with their category (and its parent) and channel taken from the cached
    tables instead of joins; rows the cache does not know yet are read (one query)."""
    channels = _channels_by_id()
    categories = {c.pk: c for c in categories_cache.get()}
    if missing := {t.channel_id for t in tickets} - channels.keys():
        channels = {**channels, **Channel.objects.in_bulk(missing)}
    if missing := {t.category_id for t in tickets if t.category_id} - categories.keys():
        categories = {**categories, **Category.objects.select_related("parent").in_bulk(missing)}
    for ticket in tickets:
        ticket.channel = channels[ticket.channel_id]
        ticket.category = categories.get(ticket.category_id)
    return tickets


def cached_compensation_limits() -> dict[int, Decimal]:
    """Each tier's authority on one ticket, as `services.compensation_limits` (for display)."""
    return compensation_limits_cache.get()


def cached_collaborating_departments() -> list[Department]:
    return departments_cache.get()


def category_choices(*, leaves_only: bool = False) -> list[tuple[int, str]]:
    """(id, "parent/name") of the active categories in their order; `leaves_only`: those
    without subcategories (what a ticket is classified into)."""
    categories = categories_cache.get()
    parents = {c.parent_id for c in categories if c.parent_id}
    return [
        (c.pk, c.full_name)
        for c in categories
        if c.is_active and not (leaves_only and c.pk in parents)
    ]


def due_callbacks(user, *, limit: int = 200):
    """Pending call-backs, oldest due first (see callbacks_for_user)."""
    return callbacks_for_user(user)[:limit]


def callbacks_for_user(user):
    """Pending call-backs: the agent's own; a lead's team's; a supervisor's all."""
    qs = FollowUpCall.objects.filter(state=CallbackState.PENDING).select_related(
        "ticket__customer", "assignee", "message"
    )
    role = policies.role_of(user)
    if role == Role.AGENT:
        qs = qs.filter(assignee=user)
    elif role == Role.SENIOR:
        qs = qs.filter(ticket__team_id=policies.team_id_of(user))
    return qs.order_by("due_at", "id")
