"""Reads of the knowledge base: search, suggestions for a ticket, its SOP and scripts."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from complaints.models import Category, Status, Ticket

from . import search
from .models import (
    Article,
    ArticleStatus,
    ReplyScript,
    ScriptKind,
    SopStep,
    SopStepCheck,
    SopTemplate,
)
from .services import render_script

RESOLVED_STATUSES = (Status.RESOLVED, Status.FOLLOWED_UP, Status.CLOSED)


def published_articles():
    return Article.objects.filter(status=ArticleStatus.PUBLISHED).select_related("category__parent")


def _page(parsed, found: search.Found, page, per_page, snippet_of) -> search.SearchPage:
    terms = parsed.highlight_terms
    hits = [
        search.Hit(obj=row, score=score, snippet=snippet_of(row, terms))
        for row, score in found.rows
    ]
    return search.SearchPage(
        hits=hits,
        total=found.total,
        page=page,
        per_page=per_page,
        query=parsed,
        total_capped=found.capped,
        ranked=found.ranked,
    )


def _article_snippet(article, terms):
    return search.highlight(search.plain_text(article.body), terms)


def _ticket_snippet(ticket, terms):
    return search.highlight(f"{ticket.subject} {ticket.body}", terms)


def search_articles(query: str, *, page: int = 1, per_page: int = 20) -> search.SearchPage:
    """Published articles matching every word of the query, best first.

    The total is counted up to `search.COUNT_CAP` (`total_capped` says there are more).
    """
    parsed = search.parse_query(query)
    page = max(1, page)
    found = search.run_search(
        published_articles(),
        search.ARTICLE_INDEX,
        parsed,
        offset=(page - 1) * per_page,
        limit=per_page,
    )
    return _page(parsed, found, page, per_page, _article_snippet)


def search_tickets(
    query: str, *, page: int = 1, per_page: int = 20, queryset=None
) -> search.SearchPage:
    """Tickets whose subject or description match every word of the query."""
    parsed = search.parse_query(query)
    page = max(1, page)
    queryset = queryset if queryset is not None else Ticket.objects.all()
    found = search.run_search(
        queryset.select_related("category__parent", "customer"),
        search.TICKET_INDEX,
        parsed,
        offset=(page - 1) * per_page,
        limit=per_page,
    )
    return _page(parsed, found, page, per_page, _ticket_snippet)


def _more_like(ticket: Ticket) -> search.ParsedQuery:
    words = search.salient_words(f"{ticket.subject} {ticket.subject} {ticket.body}")
    synonyms = search.synonym_map()
    return search.ParsedQuery(groups=[[w, *synonyms.get(w, [])] for w in words])


def suggested_articles(ticket: Ticket, *, limit: int = 5) -> list[search.Hit]:
    """Published articles sharing the most telling words of the ticket's text."""
    parsed = _more_like(ticket)
    rows = search.run_search(
        published_articles(), search.ARTICLE_INDEX, parsed, match_all=False, limit=limit
    ).rows
    terms = parsed.highlight_terms
    hits = [search.Hit(obj=a, score=s, snippet=_article_snippet(a, terms)) for a, s in rows]
    for hit in hits:
        # What "insert into reply" puts in the reply box: the article as plain text.
        hit.insert_text = search.plain_text(hit.obj.body)[:400]
    return hits


def similar_resolved_tickets(ticket: Ticket, *, limit: int = 5) -> list[search.Hit]:
    """The resolved tickets most like this one, with their solutions."""
    parsed = _more_like(ticket)
    queryset = (
        Ticket.objects.filter(status__in=RESOLVED_STATUSES)
        .exclude(pk=ticket.pk)
        .exclude(solution="")
        .select_related("category__parent")
    )
    rows = search.run_search(
        queryset, search.TICKET_INDEX, parsed, match_all=False, limit=limit
    ).rows
    terms = parsed.highlight_terms
    return [search.Hit(obj=t, score=s, snippet=_ticket_snippet(t, terms)) for t, s in rows]


# --- SOP ------------------------------------------------------------------------------


def sop_template_for(category: Category | None, **annotations) -> SopTemplate | None:
    """The active template of the category, else of its parent, else the default one.

    One query: the candidates are read together and picked here (the ticket page pays
    for it on every first response). `annotations` ride along on the candidates.
    """
    keys = [key for key in (category.pk, category.parent_id) if key] if category else []
    candidates = list(
        SopTemplate.objects.filter(is_active=True)
        .filter(Q(category_id__in=keys) | Q(category__isnull=True))
        .annotate(**annotations)
    )
    found = {t.category_id: t for t in candidates if t.category_id is not None}
    for key in keys:
        if key in found:
            return found[key]
    return next((t for t in candidates if t.category_id is None), None)  # in Meta order


@dataclass
class ChecklistItem:
    step: SopStep
    done: SopStepCheck | None
    due_at: dt.datetime | None

    @property
    def overdue(self) -> bool:
        return self.done is None and self.due_at is not None and self.due_at < timezone.now()


@dataclass
class ScriptOption:
    kind: str
    label: str
    text: str


def ticket_sop(ticket: Ticket) -> tuple[SopTemplate | None, list[ChecklistItem]]:
    template = sop_template_for(ticket.category)
    if template is None:
        return None, []
    steps = list(template.steps.all())
    checks = {
        c.step_id: c
        for c in SopStepCheck.objects.filter(ticket=ticket).select_related("checked_by")
    }
    items = [
        ChecklistItem(
            step=step,
            done=checks.get(step.pk),
            due_at=ticket.created_at + dt.timedelta(hours=step.deadline_hours)
            if step.deadline_hours
            else None,
        )
        for step in steps
    ]
    return template, items


def reply_scripts(ticket: Ticket, template: SopTemplate | None) -> list[ScriptOption]:
    """The template's scripts filled for this ticket, in the order of ScriptKind."""
    if template is None:
        return []
    by_kind = {s.kind: s for s in template.scripts.all()}
    return [
        ScriptOption(kind=kind, label=str(label), text=render_script(by_kind[kind].body, ticket))
        for kind, label in ScriptKind.choices
        if kind in by_kind
    ]


def first_response_script(ticket: Ticket, deadline) -> str | None:
    """The first-response script of the ticket's SOP, if an admin wrote one."""
    script = ReplyScript.objects.filter(template=OuterRef("pk"), kind=ScriptKind.FIRST_RESPONSE)
    template = sop_template_for(
        ticket.category, first_response=Subquery(script.values("body")[:1])
    )  # one query with its script (a template has at most one of each kind)
    body = template.first_response if template else None
    return render_script(body, ticket, deadline=deadline) if body else None
