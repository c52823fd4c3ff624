"""Staff knowledge-base pages and the ticket page's KB panels. Thin: parse, call, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from complaints import policies
from complaints import selectors as ticket_selectors
from complaints import services as ticket_services

from . import search, selectors, services
from .forms import FeedbackForm, SearchForm
from .rendering import render_markdown

PAGE_SIZE = 20


def _require_service_staff(user) -> None:
    if not policies.is_service_staff(user):
        raise PermissionDenied(_("The knowledge base is for customer-service staff."))


@login_required
def article_list(request):
    _require_service_staff(request.user)
    form = SearchForm(request.GET or None)
    context = {"form": form, "query": "", "results": None, "page": None}
    if form.is_valid() and form.cleaned_data["q"]:
        query = form.cleaned_data["q"]
        scope = form.cleaned_data["scope"] or "articles"
        find = selectors.search_tickets if scope == "tickets" else selectors.search_articles
        context.update(
            query=query,
            scope=scope,
            results=find(query, page=form.cleaned_data["page"] or 1, per_page=PAGE_SIZE),
        )
    else:
        articles = selectors.published_articles().order_by("-updated_at", "-id")
        context["page"] = Paginator(articles, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "kb/index.html", context)


def _published_article(pk):
    return get_object_or_404(selectors.published_articles(), pk=pk)


@login_required
def article_detail(request, pk, feedback_form=None, status=200):
    _require_service_staff(request.user)
    article = _published_article(pk)
    if feedback_form is None:
        services.article_record_view(article=article)
    context = {
        "article": article,
        "body_html": render_markdown(article.body),
        "feedback_form": feedback_form or FeedbackForm(),
        "plain_body": search.plain_text(article.body),
    }
    return render(request, "kb/article.html", context, status=status)


@login_required
@require_POST
def article_feedback(request, pk):
    _require_service_staff(request.user)
    article = _published_article(pk)
    form = FeedbackForm(request.POST)
    if form.is_valid():
        try:
            services.article_feedback(
                article=article,
                actor=request.user,
                helpful=form.cleaned_data["helpful"] == "yes",
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            messages.success(request, _("Thank you for your feedback."))
            return redirect("kb:article", pk=article.pk)
    return article_detail(request, pk, feedback_form=form, status=400)


def _workable_ticket(request, number):
    ticket, can_write = ticket_selectors.ticket_for_user(request.user, number)
    if not can_write:
        raise PermissionDenied(_("The knowledge base is for customer-service staff."))
    return ticket


@login_required
def ticket_panel(request, number):
    """SOP checklist, suggested articles and similar resolved tickets (htmx panel)."""
    ticket = _workable_ticket(request, number)
    template, checklist = selectors.ticket_sop(ticket)
    context = {
        "ticket": ticket,
        "kb_sop": template,
        "kb_checklist": checklist,
        "articles": selectors.suggested_articles(ticket),
        "similar": selectors.similar_resolved_tickets(ticket),
    }
    return render(request, "kb/partials/ticket_panel_body.html", context)


@login_required
def ticket_scripts(request, number):
    """The reply scripts of the ticket's SOP, filled in (htmx, into the reply box)."""
    ticket = _workable_ticket(request, number)
    template = selectors.sop_template_for(ticket.category)
    context = {"kb_scripts": selectors.reply_scripts(ticket, template)}
    return render(request, "kb/partials/reply_scripts.html", context)


@login_required
@require_POST
def ticket_sop_step(request, number, step_id):
    ticket, _can_write = ticket_selectors.ticket_for_user(request.user, number)
    try:
        services.sop_step_set_done(
            ticket=ticket.number,
            step=step_id,
            actor=request.user,
            done=request.POST.get("done") != "0",
        )
    except (ValidationError, PermissionDenied, ticket_services.Conflict) as exc:
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, message)
    return redirect("workspace:ticket", number=ticket.number)


def ticket_context(request, ticket) -> dict:
    """Whether the ticket page shows the KB panels (loaded by htmx: no query here).

    Called by complaints.views._ticket_context. Closed and merged tickets take no
    replies and no checklist changes, so they get none.
    """
    return {"kb_enabled": ticket.is_open and policies.is_service_staff(request.user)}
