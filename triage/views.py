"""Triage pages: the ticket panel (htmx), apply rules, accept a suggestion, the dry run
and suggestion report, and an agent's availability. Thin: services and selectors decide."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from complaints import policies
from complaints import selectors as ticket_selectors
from complaints import services as ticket_services
from complaints.models import Impact, Level, Status

from . import selectors, services
from .forms import AcceptForm, AvailabilityForm, DryRunForm
from .models import TicketUrgency, TicketWatcher


def _workable_ticket(user, number):
    ticket, can_write = ticket_selectors.ticket_for_user(user, number)
    if not can_write:
        raise PermissionDenied(_("Triage is for customer-service staff."))
    return ticket


def _refusal(exc) -> str:
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


@login_required
def ticket_panel(request, number):
    """Urgency, the suggested category with one-click accept, watchers, apply rules."""
    ticket = _workable_ticket(request.user, number)
    suggestion = services.suggestion_show(ticket=ticket, user=request.user)
    urgency = TicketUrgency.objects.filter(ticket=ticket).first()
    can_classify = ticket.status == Status.RECEIVED and not policies.action_refusal(
        request.user, ticket, "classify"
    )
    accept_form = AcceptForm(
        initial={
            "amount_level": ticket.amount_level or Level.LOW,
            "impact": ticket.impact or Impact.INDIVIDUAL,
            "urgency": ticket.urgency or (urgency.level if urgency else Level.MEDIUM),
            "version": ticket.version,
        }
    )
    context = {
        "ticket": ticket,
        "urgency": urgency,
        "suggestion": suggestion,
        "can_accept": can_classify and suggestion is not None and suggestion.outcome == "shown",
        "accept_form": accept_form,
        "can_apply": ticket.is_open
        and not policies.action_refusal(request.user, ticket, "classify"),
        "watchers": TicketWatcher.objects.filter(ticket=ticket).select_related("user"),
    }
    return render(request, "triage/partials/ticket_panel_body.html", context)


@login_required
@require_POST
def ticket_apply(request, number):
    ticket = _workable_ticket(request.user, number)
    try:
        report = services.triage_apply(ticket=ticket.number, actor=request.user)
    except (ValidationError, PermissionDenied, ticket_services.Conflict) as exc:
        messages.error(request, _refusal(exc))
    else:
        for line in report.applied:
            messages.success(request, line)
        for line in report.skipped:
            messages.warning(request, line)
        if not report.changed:
            messages.info(request, _("Routing rules applied: nothing to change."))
    return redirect("workspace:ticket", number=ticket.number)


@login_required
@require_POST
def suggestion_accept(request, number):
    ticket = _workable_ticket(request.user, number)
    form = AcceptForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Grade the amount, impact and urgency to accept."))
        return redirect("workspace:ticket", number=ticket.number)
    try:
        services.suggestion_accept(
            ticket=ticket.number,
            actor=request.user,
            amount_level=form.cleaned_data["amount_level"],
            impact=form.cleaned_data["impact"],
            urgency=form.cleaned_data["urgency"],
            expected_version=form.cleaned_data.get("version"),
        )
    except (ValidationError, PermissionDenied, ticket_services.Conflict) as exc:
        messages.error(request, _refusal(exc))
    else:
        messages.success(request, _("Suggested category accepted; the ticket is classified."))
    return redirect("workspace:ticket", number=ticket.number)


def _require_service_staff(user) -> None:
    if not policies.is_service_staff(user):
        raise PermissionDenied(_("Triage is for customer-service staff."))


@login_required
def index(request):
    """Dry run of the routing rules on a pasted text, suggestion report, availability."""
    _require_service_staff(request.user)
    form = DryRunForm(request.GET or None)
    result = None
    if form.is_valid():
        data = form.cleaned_data
        result = selectors.dry_run(
            text=data["text"],
            channel=data["channel"],
            category=data["category"],
            vip_level=data["vip_level"],
            order_amount=data["order_amount"],
            hour=data["hour"],
        )
    context = {
        "form": form,
        "result": result,
        "stats": selectors.suggestion_stats(),
        "by_agent": selectors.suggestion_stats_by_agent(),
        "availability": selectors.availability_of(request.user),
        "can_set_availability": policies.tier_of(request.user) in (1, 2),
    }
    return render(request, "triage/index.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def availability(request):
    _require_service_staff(request.user)
    form = AvailabilityForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose on duty or away."))
        return redirect("triage:index")
    try:
        row = services.availability_set(user=request.user, status=form.cleaned_data["status"])
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _refusal(exc))
    else:
        messages.success(
            request, _("You are now: %(status)s.") % {"status": row.get_status_display()}
        )
    return redirect("triage:index")
