"""Every write to the knowledge base and the SOP checklists goes through these functions.

The admin, the staff pages and seed_demo call them, so versions, review dates and the
search columns are kept the same way on every path.
"""

import datetime as dt
import re

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints import policies
from complaints import services as ticket_services
from complaints.models import Category, Customer, EventKind, Ticket

from . import search
from .models import (
    Article,
    ArticleFeedback,
    ArticleStatus,
    ArticleVersion,
    CategoryReviewPolicy,
    ReplyScript,
    ScriptKind,
    SopStep,
    SopStepCheck,
    SopTemplate,
    SopTemplateVersion,
)

PLACEHOLDERS = ("customer_name", "ticket_number", "deadline", "status_url", "survey_url")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


# --- articles -----------------------------------------------------------------------


def review_days(category: Category | None) -> int:
    """Days until an article of this category is due for review (7 fast-moving, 30 else)."""
    if category is not None:
        ids = [category.pk, category.parent_id]
        if CategoryReviewPolicy.objects.filter(category_id__in=ids, fast_moving=True).exists():
            return settings.CLOSELOOP_KB_FAST_REVIEW_DAYS
    return settings.CLOSELOOP_KB_REVIEW_DAYS


def _article_errors(article: Article) -> dict:
    errors = {}
    if not article.title.strip():
        errors["title"] = [_("A title is required.")]
    if not article.body.strip():
        errors["body"] = [_("The article needs a body.")]
    if len(article.body) > 100_000:
        errors["body"] = [_("Keep the article under 100,000 characters.")]
    if article.status not in ArticleStatus.values:
        errors["status"] = [_("Unknown status.")]
    return errors


# Columns a save writes; the counters are left to their own F() updates.
_ARTICLE_SAVE_FIELDS = [
    "title",
    "body",
    "category",
    "tags",
    "status",
    "owner",
    "version",
    "review_due_at",
    "reviewed_at",
    "updated_at",
    "title_tokens",
    "tags_tokens",
    "body_tokens",
]


@transaction.atomic
def article_save(*, article: Article, actor) -> Article:
    """Save the article's current fields as its next version (new or edited).

    A published article counts as reviewed by whoever saves it: its next review is due
    after the category's review cycle. Drafts and archived articles have none.
    """
    article.title = (article.title or "").strip()[:200]
    article.tags = " ".join(article.tag_list)[:200]
    errors = _article_errors(article)
    if errors:
        raise ValidationError(errors)
    for name, value in search.article_tokens(
        title=article.title, tags=article.tags, body=article.body
    ).items():
        setattr(article, name, value)
    if article.owner_id is None and actor is not None and actor.is_authenticated:
        article.owner = actor
    now = timezone.now()
    if article.status == ArticleStatus.PUBLISHED:
        article.reviewed_at = now
        article.review_due_at = now + dt.timedelta(days=review_days(article.category))
    else:
        article.review_due_at = None
    if article.pk is None:
        article.version = 1
        article.save()
    else:
        # The row lock makes concurrent saves take consecutive version numbers.
        current = Article.objects.select_for_update().values_list("version", flat=True)
        article.version = current.get(pk=article.pk) + 1
        article.save(update_fields=_ARTICLE_SAVE_FIELDS)
    ArticleVersion.objects.create(
        article=article,
        number=article.version,
        title=article.title,
        body=article.body,
        tags=article.tags,
        status=article.status,
        category=article.category,
        edited_by=actor if actor is not None and actor.is_authenticated else None,
        created_at=now,
    )
    return article


def article_create(*, actor, title: str, body: str, **fields) -> Article:
    return article_save(article=Article(title=title, body=body, **fields), actor=actor)


def article_mark_reviewed(*, article: Article, actor) -> Article:
    """Confirm a published article is still right without editing it."""
    if article.status != ArticleStatus.PUBLISHED:
        raise ValidationError(_("Only published articles are reviewed."))
    now = timezone.now()
    article.reviewed_at = now
    article.review_due_at = now + dt.timedelta(days=review_days(article.category))
    Article.objects.filter(pk=article.pk).update(
        reviewed_at=article.reviewed_at, review_due_at=article.review_due_at
    )
    return article


def article_record_view(*, article: Article) -> None:
    Article.objects.filter(pk=article.pk).update(view_count=F("view_count") + 1)


def _require_service_staff(actor) -> None:
    if not policies.is_service_staff(actor):
        raise PermissionDenied(_("The knowledge base is for customer-service staff."))


@transaction.atomic
def article_feedback(*, article: Article, actor, helpful: bool, comment: str = "") -> None:
    _require_service_staff(actor)
    comment = (comment or "").strip()
    if len(comment) > 2000:
        raise ValidationError({"comment": [_("Keep the comment under 2,000 characters.")]})
    if article.status != ArticleStatus.PUBLISHED:
        raise ValidationError(_("Feedback is for published articles."))
    ArticleFeedback.objects.create(article=article, user=actor, helpful=helpful, comment=comment)
    counter = "helpful_count" if helpful else "not_helpful_count"
    Article.objects.filter(pk=article.pk).update(**{counter: F(counter) + 1})


def reindex_articles(queryset=None, *, batch_size: int = 500) -> int:
    """Recompute the token columns (after a change of segmentation or a bulk import)."""
    queryset = queryset if queryset is not None else Article.objects.all()
    done = 0
    batch = []
    for article in queryset.only("pk", "title", "tags", "body").iterator(chunk_size=batch_size):
        for name, value in search.article_tokens(
            title=article.title, tags=article.tags, body=article.body
        ).items():
            setattr(article, name, value)
        batch.append(article)
        if len(batch) >= batch_size:
            Article.objects.bulk_update(batch, ["title_tokens", "tags_tokens", "body_tokens"])
            done += len(batch)
            batch = []
    if batch:
        Article.objects.bulk_update(batch, ["title_tokens", "tags_tokens", "body_tokens"])
        done += len(batch)
    return done


def reindex_tickets(queryset=None, *, batch_size: int = 1000, only_missing: bool = False) -> int:
    """Fill `Ticket.search_tokens` for rows created without `ticket_create` (bulk loads)."""
    queryset = queryset if queryset is not None else Ticket.objects.all()
    if only_missing:
        queryset = queryset.filter(search_tokens="")
    done = 0
    batch = []
    for ticket in queryset.only("pk", "subject", "body").iterator(chunk_size=batch_size):
        ticket.search_tokens = search.ticket_tokens(subject=ticket.subject, body=ticket.body)
        batch.append(ticket)
        if len(batch) >= batch_size:
            Ticket.objects.bulk_update(batch, ["search_tokens"])
            done += len(batch)
            batch = []
    if batch:
        Ticket.objects.bulk_update(batch, ["search_tokens"])
        done += len(batch)
    return done


# --- SOP templates and reply scripts -----------------------------------------------


def script_errors(kind: str, body: str) -> list[str]:
    """What is wrong with a reply script's text (unknown or missing placeholders)."""
    errors = []
    used = set(_PLACEHOLDER.findall(body or ""))
    unknown = sorted(used - set(PLACEHOLDERS))
    if unknown:
        errors.append(
            _("Unknown placeholders: %(names)s. Use %(allowed)s.")
            % {
                "names": ", ".join(f"{{{n}}}" for n in unknown),
                "allowed": ", ".join(f"{{{n}}}" for n in PLACEHOLDERS),
            }
        )
    if kind == ScriptKind.FIRST_RESPONSE and not {"ticket_number", "status_url"} <= used:
        errors.append(
            _(
                "A first response must tell the customer how to check the status: "
                "include {ticket_number} and {status_url}."
            )
        )
    return errors


def ticket_deadline(ticket: Ticket) -> dt.datetime:
    """The deadline a script promises: the promised follow-up, else the next SLA one."""
    return (
        ticket.promised_followup_at
        or ticket.due_at
        or ticket.resolve_due_at
        or (timezone.now() + dt.timedelta(hours=24))
    )


def render_script(
    body: str, ticket: Ticket, *, deadline: dt.datetime | None = None, survey_url: str = ""
) -> str:
    """The script with its placeholders filled for this ticket (unknown ones left as is;
    {survey_url} only where a survey link exists, i.e. in the messages sent on resolution)."""
    try:
        customer_name = ticket.customer.name
    except Customer.DoesNotExist:
        customer_name = ""
    values = {
        "customer_name": customer_name,
        "ticket_number": ticket.number,
        "deadline": timezone.localtime(deadline or ticket_deadline(ticket)).strftime(
            "%Y-%m-%d %H:%M"
        ),
        "status_url": ticket_services.status_url(ticket),
        "survey_url": survey_url,
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)


def template_snapshot(template: SopTemplate) -> dict:
    return {
        "name": template.name,
        "category": template.category_id,
        "is_active": template.is_active,
        "steps": [
            {"title": s.title, "deadline_hours": s.deadline_hours} for s in template.steps.all()
        ],
        "scripts": {s.kind: s.body for s in template.scripts.all()},
    }


@transaction.atomic
def sop_template_saved(*, template: SopTemplate, actor) -> SopTemplateVersion:
    """Record a version after the template and its steps and scripts were saved."""
    locked = SopTemplate.objects.select_for_update().get(pk=template.pk)
    locked.version += 1
    SopTemplate.objects.filter(pk=locked.pk).update(version=locked.version)
    template.version = locked.version
    return SopTemplateVersion.objects.create(
        template=locked,
        number=locked.version,
        snapshot=template_snapshot(locked),
        edited_by=actor if actor is not None and actor.is_authenticated else None,
    )


@transaction.atomic
def sop_template_create(*, actor, name: str, category=None, steps=(), scripts=None):
    """A template with its steps [(title, hours)] and scripts {kind: text} (seed, tests)."""
    for kind, body in (scripts or {}).items():
        problems = script_errors(kind, body)
        if problems:
            raise ValidationError({"scripts": problems})
    template = SopTemplate.objects.create(name=name, category=category)
    SopStep.objects.bulk_create(
        SopStep(template=template, position=i, title=title, deadline_hours=hours)
        for i, (title, hours) in enumerate(steps, start=1)
    )
    ReplyScript.objects.bulk_create(
        ReplyScript(template=template, kind=kind, body=body)
        for kind, body in (scripts or {}).items()
    )
    sop_template_saved(template=template, actor=actor)
    return template


@transaction.atomic
def sop_step_set_done(*, ticket: Ticket | str, step: SopStep | int, actor, done: bool = True):
    """Tick (or untick) one SOP step on a ticket; the change lands on its timeline."""
    from .selectors import sop_template_for

    locked = ticket_services._lock(ticket)
    ticket_services._require(actor, locked, "note")
    if not locked.is_open:
        raise ticket_services.Conflict(_("The checklist of a closed ticket cannot change."))
    step_id = step.pk if isinstance(step, SopStep) else step
    template = sop_template_for(locked.category)
    step = SopStep.objects.filter(pk=step_id, template=template).first() if template else None
    if step is None:
        raise ValidationError(_("This step is not part of the ticket's SOP."))
    existing = SopStepCheck.objects.filter(ticket=locked, step=step).first()
    if done and existing is None:
        SopStepCheck.objects.create(ticket=locked, step=step, checked_by=actor)
        message = _("SOP step done: %(step)s") % {"step": step.title}
    elif not done and existing is not None:
        existing.delete()
        message = _("SOP step reopened: %(step)s") % {"step": step.title}
    else:
        return None  # already in the requested state: nothing to record
    return ticket_services._record(locked, actor, EventKind.NOTE, message)
