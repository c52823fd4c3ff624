"""Agent workspace pages. Thin: parse the request, call a selector or a service, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from channels.models import Channel

from . import policies, selectors, services
from .forms import TRANSITION_FORMS, AttachmentForm, QueueFilterForm, ReplyForm
from .models import Customer, Status

QUEUE_PAGE_SIZE = 25


def _require_service_staff(user) -> None:
    if not policies.is_service_staff(user):
        # Department staff work from their task board; the workspace is not theirs.
        raise PermissionDenied(_("The agent workspace is for customer-service staff."))


@login_required
def queue(request):
    _require_service_staff(request.user)
    tab = request.GET.get("tab", "mine")
    if tab not in selectors.QUEUE_TABS:
        tab = "mine"
    channels = Channel.objects.filter(is_active=True).only("code", "name")
    form = QueueFilterForm(request.GET or None, channels=channels)
    filters = form.cleaned_data if form.is_valid() else {}
    tickets = selectors.queue_tickets(request.user, tab=tab, filters=filters)
    page = Paginator(tickets, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "tab": tab,
        "form": form,
        "page": page,
        "counts": selectors.queue_counts(request.user),
        "querystring": query.urlencode(),
    }
    template = "complaints/partials/queue_table.html" if request.htmx else "complaints/queue.html"
    return render(request, template, context)


def _ticket_context(request, ticket, *, forms=None, error=None):
    actions = selectors.available_actions(request.user, ticket)
    bound = forms or {}
    action_forms = [
        bound.get(name) or TRANSITION_FORMS[name](ticket=ticket, actor=request.user)
        for name in actions
    ]
    can_escalate = ticket.is_open and ticket.escalation_level < services.MAX_ESCALATION_LEVEL
    if can_escalate and "escalate" not in bound:
        escalate = TRANSITION_FORMS["escalate"](ticket=ticket, actor=request.user)
    else:
        escalate = bound.get("escalate")
    return {
        "ticket": ticket,
        "action_forms": action_forms,
        "escalate_form": escalate,
        "open_action": next(iter(bound), None),
        "error": error,
        "events": ticket.events.select_related("actor").order_by("-created_at", "-id"),
        "contacts": ticket.contacts.select_related("channel"),
        "attachments": ticket.attachments.all(),
        "customer360": selectors.customer_360(ticket.customer),
        "reply_form": bound.get("reply") or ReplyForm(),
        "attachment_form": bound.get("attachment") or AttachmentForm(),
        "status_url": services.status_url(ticket),
    }


@login_required
def ticket_detail(request, number):
    ticket, _can_write = selectors.ticket_for_user(request.user, number)
    return render(request, "complaints/ticket.html", _ticket_context(request, ticket))


def _run_and_respond(request, ticket, form_key, form, run):
    """Run a service for a bound form; redirect on success, re-render with the refusal otherwise."""
    status = 400
    error = None
    if form.is_valid():
        try:
            run()
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc.messages)
        except PermissionDenied as exc:
            status, error = 403, str(exc)
        except services.Conflict as exc:
            status, error = 409, str(exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("workspace:ticket", number=ticket.number)
    ticket.refresh_from_db()
    context = _ticket_context(request, ticket, forms={form_key: form}, error=error)
    return render(request, "complaints/ticket.html", context, status=status)


@login_required
@require_POST
def ticket_action(request, number, name):
    ticket, _can_write = selectors.ticket_for_user(request.user, number)
    form_class = TRANSITION_FORMS.get(name)
    if form_class is None:
        raise Http404("No such action")
    form = form_class(request.POST, request.FILES, ticket=ticket, actor=request.user)
    return _run_and_respond(request, ticket, name, form, form.run)


@login_required
@require_POST
def ticket_reply(request, number):
    ticket, _can_write = selectors.ticket_for_user(request.user, number)
    form = ReplyForm(request.POST)

    def run():
        services.ticket_reply(
            ticket=ticket.number,
            actor=request.user,
            body=form.cleaned_data["body"],
            internal=form.cleaned_data["internal"],
        )

    return _run_and_respond(request, ticket, "reply", form, run)


@login_required
@require_POST
def ticket_attachment(request, number):
    ticket, _can_write = selectors.ticket_for_user(request.user, number)
    form = AttachmentForm(request.POST, request.FILES)

    def run():
        services.attachment_add(
            ticket=ticket.number, actor=request.user, uploaded=form.cleaned_data["file"]
        )

    return _run_and_respond(request, ticket, "attachment", form, run)


@login_required
def customer_detail(request, pk):
    _require_service_staff(request.user)
    customer = get_object_or_404(Customer, pk=pk)
    context = {
        "customer360": selectors.customer_360(customer, limit=200),
        "stats": selectors.customer_stats(customer),
    }
    return render(request, "complaints/customer.html", context)


@login_required
def lookup(request):
    _require_service_staff(request.user)
    query = request.GET.get("q", "").strip()
    results = list(selectors.lookup(query)) if query else []
    if len(results) == 1 and results[0].number.lower() == query.lower():
        return redirect("workspace:ticket", number=results[0].number)
    return render(
        request, "complaints/lookup.html", {"query": query, "results": results, "statuses": Status}
    )


def approvals(request):
    raise Http404


compensation_decide = ticket_compensation = ticket_tasks = task_board = approvals
task_detail = task_action = notifications = approvals
