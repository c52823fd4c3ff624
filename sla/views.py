"""SLA pages: pause/resume on a ticket, the SLA report. Thin: parse, call, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from complaints import policies
from complaints import selectors as complaint_selectors
from complaints.services import Conflict

from . import risks, selectors, services
from .forms import ReportRangeForm
from .models import RiskKind


def _run(request, number, action, done: str):
    ticket, _can_write = complaint_selectors.ticket_for_user(request.user, number)
    try:
        action(ticket)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except (PermissionDenied, Conflict) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("workspace:ticket", number=ticket.number)


@login_required
@require_POST
def ticket_pause(request, number):
    reason = request.POST.get("reason", "")
    return _run(
        request,
        number,
        lambda t: services.ticket_pause(ticket=t.number, actor=request.user, reason=reason),
        _("The SLA clocks are paused until the customer answers."),
    )


@login_required
@require_POST
def ticket_resume(request, number):
    return _run(
        request,
        number,
        lambda t: services.ticket_resume(ticket=t.number, actor=request.user),
        _("The SLA clocks run again."),
    )


@login_required
def report(request):
    """SLA rates and breaches for a date range (team leads and supervisors)."""
    if policies.tier_of(request.user) < 2:
        raise PermissionDenied(_("The SLA report is for team leads and supervisors."))
    form = ReportRangeForm(request.GET or ReportRangeForm.default_initial())
    if not form.is_valid():
        return render(request, "sla/report.html", {"form": form}, status=400)
    start, end = form.bounds()
    context = {"form": form, "report": selectors.sla_report(start, end)}
    return render(request, "sla/report.html", context)


RISK_TABS = ("open", "acknowledged")


@login_required
def risk_board(request):
    """Risk alerts for team leads and supervisors, newest first; acknowledge to take them on."""
    if policies.tier_of(request.user) < 2:
        raise PermissionDenied(_("The risk board is for team leads and supervisors."))
    tab = request.GET.get("tab", "open")
    if tab not in RISK_TABS:
        tab = "open"
    kind = request.GET.get("kind", "")
    alerts = risks.visible_alerts(request.user).filter(acknowledged_at__isnull=(tab == "open"))
    if kind in RiskKind.values:
        alerts = alerts.filter(kind=kind)
    else:
        kind = ""
    page = Paginator(alerts.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    context = {"tab": tab, "kind": kind, "kinds": RiskKind.choices, "page": page}
    return render(request, "sla/risk_board.html", context)


@login_required
@require_POST
def risk_acknowledge(request, pk):
    try:
        risks.acknowledge(alert=pk, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except (PermissionDenied, Conflict) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Alert acknowledged."))
    return redirect("sla:risks")
