"""SLA pages: pause/resume on a ticket, the SLA report. Thin: parse, call, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from complaints import policies
from complaints import selectors as complaint_selectors
from complaints.services import Conflict

from . import selectors, services
from .forms import ReportRangeForm


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
