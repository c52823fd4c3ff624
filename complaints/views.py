"""Agent workspace pages. Thin: parse the request, call a selector or a service, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from channels.selectors import delivery_context
from kb.views import ticket_context as kb_ticket_context

from . import policies, selectors, services
from .forms import (
    TRANSITION_FORMS,
    AttachmentForm,
    CompensationForm,
    DecisionForm,
    QueueFilterForm,
    ReplyForm,
    TaskOpenForm,
    TaskReassignForm,
    TaskTextForm,
)
from .models import (
    Attachment,
    CallbackOutcome,
    Customer,
    FollowUpCall,
    Status,
    TimelineEvent,
)

QUEUE_PAGE_SIZE = 25


def _require_service_staff(user) -> None:
    if not policies.is_service_staff(user):
        # Department staff work from their task board; the workspace is not theirs.
        raise PermissionDenied(_("The agent workspace is for customer-service staff."))


@login_required
def queue(request):
    if policies.is_department_staff(request.user):
        return redirect("workspace:tasks")  # their home is the task board
    _require_service_staff(request.user)
    tab = request.GET.get("tab", "mine")
    if tab not in selectors.QUEUE_TABS:
        tab = "mine"
    form = QueueFilterForm(request.GET or None, channels=selectors.active_channels())
    filters = form.cleaned_data if form.is_valid() else {}
    tickets = selectors.queue_tickets(request.user, tab=tab, filters=filters)
    counts = selectors.queue_counts(request.user)
    paginator = selectors.DeferredJoinPaginator(tickets, QUEUE_PAGE_SIZE)
    if not any(filters.get(f) for f in selectors.QUEUE_FILTERS):
        # Unfiltered, the tab holds exactly what its badge counts: skip a second COUNT(*).
        paginator.count = counts[tab]
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = selectors.with_reference_rows(list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "tab": tab,
        "form": form,
        "page": page,
        "counts": counts,
        "querystring": query.urlencode(),
    }
    template = "complaints/partials/queue_table.html" if request.htmx else "complaints/queue.html"
    return render(request, template, context)


def _ticket_context(request, ticket, *, forms=None, error=None, cap=None):
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
    # The newest events; older ones load on demand (a long-running ticket has hundreds).
    events = list(
        ticket.events.select_related("actor").order_by("-created_at", "-id")[: TIMELINE_PAGE + 1]
    )
    earlier = len(events) > TIMELINE_PAGE
    events = events[:TIMELINE_PAGE]
    # Evidence, contacts, surveys, identities: read with the ticket on a GET.
    lists = selectors.ticket_page_lists(ticket)
    delivery = delivery_context(request.user, ticket, events)  # outbox: delivery states
    compensation = _compensation_context(request, ticket, bound, cap)
    return {
        "ticket": ticket,
        "action_forms": action_forms,
        "escalate_form": escalate,
        "open_action": next(iter(bound), None),
        "error": error,
        "events": events,
        "earlier_events": events[-1] if earlier else None,
        # One contact is the complaint itself (shown from the ticket).
        "contacts": lists.contacts if ticket.contact_count > 1 else None,
        "attachments": lists.attachments,
        "customer360": selectors.customer_360(
            ticket.customer,
            compensation_total=compensation["customer_total"],
            identities=lists.identities,
        ),
        "reply_form": bound.get("reply") or ReplyForm(),
        "attachment_form": bound.get("attachment") or AttachmentForm(),
        "status_url": services.status_url(ticket),
        **compensation,
        **delivery,
        **_collaboration_context(request, ticket, bound, survey=lists.survey),
        **kb_ticket_context(request, ticket),  # kb: SOP checklist and reply scripts
    }


def _ticket_to_work(user, number):
    """The ticket for a write from the agent workspace: 404 for those who cannot see it,
    403 for department staff (they work their tasks, not the ticket), so a refusal never
    renders the full ticket page (customer 360, phone) for them."""
    ticket, can_write = selectors.ticket_for_user(user, number)
    if not can_write:
        raise PermissionDenied(_("Department staff work their tasks from the task board."))
    return ticket


TIMELINE_PAGE = 50


@login_required
def ticket_timeline(request, number):
    """The next page of older timeline events (htmx: "Show earlier events")."""
    ticket, can_write = selectors.ticket_for_user(request.user, number)
    if not can_write:
        raise PermissionDenied(_("Department staff work their tasks from the task board."))
    try:
        before = TimelineEvent.objects.get(ticket=ticket, pk=int(request.GET.get("before", "")))
    except (ValueError, TimelineEvent.DoesNotExist):
        return HttpResponseBadRequest(_("Name the event to continue before."))
    older = (
        ticket.events.select_related("actor")
        .filter(
            Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, pk__lt=before.pk)
        )
        .order_by("-created_at", "-id")
    )
    events = list(older[: TIMELINE_PAGE + 1])
    earlier = len(events) > TIMELINE_PAGE
    events = events[:TIMELINE_PAGE]
    context = {
        "ticket": ticket,
        "events": events,
        "earlier_events": events[-1] if earlier else None,
        **delivery_context(request.user, ticket, events),
    }
    return render(request, "complaints/partials/timeline_items.html", context)


@login_required
def ticket_detail(request, number):
    ticket, can_write = selectors.ticket_for_user(request.user, number, page_lists=True)
    if not can_write:
        # Department staff see a ticket only through their department's task on it.
        task = selectors.ticket_tasks(ticket, request.user)[-1]
        return redirect("workspace:task", pk=task.pk)
    return render(request, "complaints/ticket.html", _ticket_context(request, ticket))


def _run_and_respond(request, ticket, form_key, form, run, *, success=None):
    """Run a service for a bound form; redirect on success, re-render with the refusal otherwise."""
    status = 400
    error = cap = None
    if form.is_valid():
        try:
            run()
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc.messages)
        except services.CapExceeded as exc:
            status, cap = 403, exc
        except PermissionDenied as exc:
            status, error = 403, str(exc)
        except services.Conflict as exc:
            status, error = 409, str(exc)
        else:
            messages.success(request, (success() if callable(success) else success) or _("Saved."))
            return redirect("workspace:ticket", number=ticket.number)
    ticket.refresh_from_db()
    context = _ticket_context(request, ticket, forms={form_key: form}, error=error, cap=cap)
    return render(request, "complaints/ticket.html", context, status=status)


@login_required
@require_POST
def ticket_action(request, number, name):
    ticket = _ticket_to_work(request.user, number)
    form_class = TRANSITION_FORMS.get(name)
    if form_class is None:
        raise Http404("No such action")
    form = form_class(request.POST, request.FILES, ticket=ticket, actor=request.user)
    return _run_and_respond(request, ticket, name, form, form.run)


@login_required
@require_POST
def ticket_reply(request, number):
    ticket = _ticket_to_work(request.user, number)
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
    ticket = _ticket_to_work(request.user, number)
    form = AttachmentForm(request.POST, request.FILES)

    def run():
        services.attachment_add(
            ticket=ticket.number, actor=request.user, uploaded=form.cleaned_data["file"]
        )

    return _run_and_respond(request, ticket, "attachment", form, run)


# Evidence shown in the browser; anything else downloads. nosniff is set globally.
INLINE_ATTACHMENT_TYPES = {
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/pdf",
    "audio/mpeg",
    "audio/wav",
}


@login_required
def attachment_download(request, number, pk):
    """Evidence files are personal data: served only to staff who may work the ticket."""
    ticket, can_write = selectors.ticket_for_user(request.user, number)
    if not can_write:
        raise Http404("No such file")
    attachment = get_object_or_404(Attachment, ticket=ticket, pk=pk)
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("File missing") from exc
    response = FileResponse(
        handle,
        as_attachment=attachment.content_type not in INLINE_ATTACHMENT_TYPES,
        filename=attachment.original_name,
        content_type=attachment.content_type,
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


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


# --- closing the loop: survey and call-backs -----------------------------------------


def _closing_loop_context(ticket, survey) -> dict:
    """`survey`: the ticket's latest survey (selectors.ticket_page_lists)."""
    if not ticket.resolved_at and not ticket.reopen_count and ticket.status != Status.CLOSED:
        return {"survey": None, "callbacks": []}  # nothing sent yet: no queries
    return {
        "survey": survey,
        "survey_link": services.survey_url(survey) if survey and not survey.is_answered else "",
        "callbacks": list(
            ticket.callbacks.select_related("assignee", "recorded_by").order_by("due_at", "id")
        ),
        "callback_outcomes": CallbackOutcome.choices,
    }


@login_required
def callbacks(request):
    """The call-backs an agent owes customers, oldest due first."""
    _require_service_staff(request.user)
    due = selectors.due_callbacks(request.user)
    return render(
        request,
        "complaints/callbacks.html",
        {"calls": due, "callback_outcomes": CallbackOutcome.choices, "now": timezone.now()},
    )


@login_required
@require_POST
def callback_record(request, pk):
    _require_service_staff(request.user)
    call = get_object_or_404(FollowUpCall.objects.select_related("ticket"), pk=pk)
    try:
        services.callback_record(
            callback=call.pk,
            actor=request.user,
            outcome=request.POST.get("outcome", ""),
            note=request.POST.get("note", ""),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except (PermissionDenied, services.Conflict) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Call-back recorded."))
    if request.POST.get("next") == "callbacks":
        return redirect("workspace:callbacks")
    return redirect("workspace:ticket", number=call.ticket.number)


# --- compensation ------------------------------------------------------------------


def _compensation_context(request, ticket, bound, cap) -> dict:
    user = request.user
    compensations, total, customer_total = selectors.ticket_page_compensations(ticket)
    can_compensate = ticket.is_open and policies.compensation_refusal(user, ticket) is None
    context = {
        "compensations": compensations,
        "compensation_total": total,
        "customer_total": customer_total,
        "can_compensate": can_compensate,
        "cap_exceeded": cap,
    }
    if can_compensate:
        limits = selectors.cached_compensation_limits()  # the grant re-reads them
        own = limits.get(policies.tier_of(user))
        context["compensation_form"] = bound.get("compensation") or CompensationForm(
            initial={"kind": "coupon"}
        )
        context["own_limit"] = own
        context["own_remaining"] = max(own - total, 0) if own is not None else None
    return context


def _collaboration_context(request, ticket, bound, *, survey) -> dict:
    """The collaboration-task panel of the ticket page (and the closing-the-loop one)."""
    can_open_tasks = ticket.is_open and policies.task_open_refusal(request.user, ticket) is None
    context = {
        "tasks": selectors.ticket_tasks(ticket),
        **_closing_loop_context(ticket, survey),
        "can_open_tasks": can_open_tasks,
        "decision_form": DecisionForm(),
        "task_text_form": TaskTextForm(),
    }
    if can_open_tasks:
        context["task_form"] = bound.get("tasks") or TaskOpenForm(
            departments=selectors.cached_collaborating_departments()
        )
    return context


@login_required
@require_POST
def ticket_compensation(request, number):
    ticket = _ticket_to_work(request.user, number)
    form = CompensationForm(request.POST)
    result = {}

    def run():
        result["compensation"] = services.compensation_grant(
            ticket=ticket.number,
            actor=request.user,
            kind=form.cleaned_data["kind"],
            amount=form.cleaned_data["amount"],
            reason=form.cleaned_data["reason"],
            request=form.cleaned_data.get("mode") == "request",
        )

    def success():
        compensation = result["compensation"]
        message = (
            _("Request for %(amount)s sent for approval.")
            if compensation.state == "requested"
            else _("%(amount)s granted.")
        )
        return message % {"amount": services.yuan(compensation.amount)}

    return _run_and_respond(request, ticket, "compensation", form, run, success=success)


@login_required
def approvals(request):
    if policies.tier_of(request.user) < 2:
        raise PermissionDenied(_("Approvals are for team leads and supervisors."))
    pending = list(selectors.pending_approvals(request.user)[:200])
    totals = selectors.ticket_totals([c.ticket_id for c in pending])
    rows = [(c, totals.get(c.ticket_id, 0)) for c in pending]
    return render(
        request, "complaints/approvals.html", {"rows": rows, "decision_form": DecisionForm()}
    )


@login_required
@require_POST
def compensation_decide(request, pk, decision):
    """Approve, reject or withdraw a request; back to where the user came from."""
    if decision not in ("approve", "reject", "cancel"):
        raise Http404("No such decision")
    compensation = get_object_or_404(
        selectors.compensations_for_user(request.user).select_related(None), pk=pk
    )
    form = DecisionForm(request.POST)
    form.is_valid()
    reason = form.cleaned_data.get("reason", "")
    try:
        if decision == "approve":
            services.compensation_approve(compensation=pk, actor=request.user, note=reason)
            messages.success(request, _("Approved."))
        elif decision == "reject":
            services.compensation_reject(compensation=pk, actor=request.user, reason=reason)
            messages.success(request, _("Rejected."))
        else:
            services.compensation_cancel(compensation=pk, actor=request.user)
            messages.success(request, _("Request withdrawn."))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except (PermissionDenied, services.Conflict) as exc:
        messages.error(request, str(exc))
    if request.POST.get("next") == "approvals":
        return redirect("workspace:approvals")
    return redirect("workspace:ticket", number=compensation.ticket.number)


# --- collaboration tasks -------------------------------------------------------------


@login_required
@require_POST
def ticket_tasks(request, number):
    ticket = _ticket_to_work(request.user, number)
    form = TaskOpenForm(request.POST, departments=selectors.collaborating_departments())

    def run():
        services.task_open(
            ticket=ticket.number,
            actor=request.user,
            specs=form.specs(),
            instruction=form.cleaned_data["instruction"],
        )

    return _run_and_respond(
        request, ticket, "tasks", form, run, success=_("Collaboration tasks opened.")
    )


@login_required
def task_board(request):
    user = request.user
    if not (policies.is_department_staff(user) or policies.is_service_staff(user)):
        raise PermissionDenied(_("The task board is for staff."))
    tab = request.GET.get("tab", "unclaimed")
    if tab not in selectors.BOARD_TABS:
        tab = "unclaimed"
    counts = selectors.board_counts(user)
    paginator = Paginator(selectors.task_board(user, tab=tab), 50)
    paginator.count = counts[tab]  # the tab holds exactly what its badge counts
    page = paginator.get_page(request.GET.get("page"))
    context = {"tab": tab, "page": page, "counts": counts}
    return render(request, "complaints/task_board.html", context)


def _task_context(request, task, *, error=None, bound=None):
    user = request.user
    department_side = policies.is_department_staff(user)
    allowed = {
        action
        for action in (*policies.DEPARTMENT_TASK_ACTIONS, *policies.AGENT_TASK_ACTIONS)
        if policies.task_refusal(user, task, action) is None
        and action in TASK_ACTION_STATES
        and task.state in TASK_ACTION_STATES[action]
    }
    if "resend" in allowed and not task.ticket.is_open:
        allowed.discard("resend")
    context = {
        "task": task,
        "ticket": task.ticket,
        "department_side": department_side,
        "allowed": allowed,
        "events": task.events.select_related("actor").order_by("-created_at", "-id"),
        "error": error,
        "text_form": (bound or {}).get("text") or TaskTextForm(),
        "overdue": task.is_overdue(),
        "task_text_actions": [
            ("complete", _("Complete"), _("The result, for the agent and the customer")),
            ("note", _("Add progress"), _("What has been done so far")),
            ("return", _("Return to the agent"), _("Why this task cannot be done here")),
            ("cancel", _("Cancel the task"), _("Why the department is no longer needed")),
            ("resend", _("Send again"), _("Updated instruction (optional)")),
        ],
    }
    if "reassign" in allowed:
        context["reassign_form"] = (bound or {}).get("reassign") or TaskReassignForm(
            department_id=task.department_id
        )
    if department_side:
        context["siblings"] = [
            t for t in selectors.ticket_tasks(task.ticket, user) if t.pk != task.pk
        ]
    return context


# Which task states each action starts from (the services enforce the same).
TASK_ACTION_STATES = {
    "claim": ("open",),
    "note": ("open", "claimed"),
    "complete": ("open", "claimed"),
    "return": ("open", "claimed"),
    "reassign": ("open", "claimed"),
    "cancel": ("open", "claimed", "returned"),
    "resend": ("returned",),
}


@login_required
def task_detail(request, pk):
    task = selectors.task_for_user(request.user, pk)
    return render(request, "complaints/task_detail.html", _task_context(request, task))


@login_required
@require_POST
def task_action(request, pk, action):
    task = selectors.task_for_user(request.user, pk)
    if action not in TASK_ACTION_STATES:
        raise Http404("No such action")
    text_form = TaskTextForm(request.POST)
    text_form.is_valid()
    text = text_form.cleaned_data.get("text", "")
    bound = {"text": text_form}
    status, error = 400, None
    try:
        if action == "claim":
            services.task_claim(task=task.pk, actor=request.user)
        elif action == "note":
            services.task_note(task=task.pk, actor=request.user, body=text)
        elif action == "complete":
            services.task_complete(task=task.pk, actor=request.user, result=text)
        elif action == "return":
            services.task_return(task=task.pk, actor=request.user, reason=text)
        elif action == "cancel":
            services.task_cancel(task=task.pk, actor=request.user, reason=text)
        elif action == "resend":
            services.task_resend(task=task.pk, actor=request.user, instruction=text)
        else:
            form = TaskReassignForm(request.POST, department_id=task.department_id)
            bound["reassign"] = form
            if not form.is_valid():
                raise ValidationError(form.errors.get("assignee", [_("Choose a colleague.")]))
            services.task_reassign(
                task=task.pk, actor=request.user, assignee=form.cleaned_data["assignee"]
            )
    except ValidationError as exc:
        error = " ".join(exc.messages)
    except PermissionDenied as exc:
        status, error = 403, str(exc)
    except services.Conflict as exc:
        status, error = 409, str(exc)
    else:
        messages.success(request, TASK_ACTION_DONE[action]())
        if request.POST.get("next") == "board":
            return redirect(f"{reverse('workspace:tasks')}?tab=mine")
        return redirect("workspace:task", pk=task.pk)
    task = selectors.task_for_user(request.user, pk)
    context = _task_context(request, task, error=error, bound=bound)
    return render(request, "complaints/task_detail.html", context, status=status)


TASK_ACTION_DONE = {
    "claim": lambda: _("Task claimed: it is yours now."),
    "note": lambda: _("Progress recorded."),
    "complete": lambda: _("Task completed; the agent has been told."),
    "return": lambda: _("Task returned to the agent."),
    "reassign": lambda: _("Task reassigned."),
    "cancel": lambda: _("Task cancelled."),
    "resend": lambda: _("Task sent to the department again."),
}


# --- notifications -------------------------------------------------------------------


@login_required
def notifications(request):
    if request.method == "POST":
        services.notifications_mark_read(user=request.user)
        return redirect("workspace:notifications")
    items = list(request.user.notifications.select_related("ticket")[:100])
    return render(request, "complaints/notifications.html", {"items": items})


@login_required
def nav_badges(request):
    """Header counts, loaded by htmx after the page so pages keep their query budget."""
    return render(
        request, "complaints/partials/nav_badges.html", selectors.nav_badges(request.user)
    )
