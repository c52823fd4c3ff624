"""The management dashboard (team leads, supervisors, admins) and its xlsx export."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from complaints import policies
from config.db_routers import reports_on_replica

from . import charts, export, selectors
from .forms import DashboardFilterForm


def _filtered(request):
    if policies.tier_of(request.user) < 2:
        raise PermissionDenied(_("The dashboard is for team leads and supervisors."))
    lookups = selectors.Lookups.load()
    form = DashboardFilterForm(request.GET, lookups=lookups)
    return form, lookups


@login_required
def index(request):
    with reports_on_replica():
        form, lookups = _filtered(request)
        if not form.is_valid():
            return render(request, "dashboard/index.html", {"form": form}, status=400)
        board = selectors.dashboard(form.filters(), lookups)
    context = {
        "form": form,
        "board": board,
        "chart_data": charts.chart_data(board),
        "query": request.GET.urlencode(),
    }
    return render(request, "dashboard/index.html", context)


@login_required
def export_xlsx(request):
    with reports_on_replica():
        form, lookups = _filtered(request)
        if not form.is_valid():
            return HttpResponse(
                " ".join(str(e) for errors in form.errors.values() for e in errors),
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        board = selectors.dashboard(form.filters(), lookups)
    f = board.filters
    response = HttpResponse(
        export.workbook(board),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="closeloop-dashboard-{f.first}-{f.last}.xlsx"'
    )
    return response
