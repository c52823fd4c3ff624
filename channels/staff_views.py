"""Staff pages of the intake: store-register import (with history) and ticket export."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from complaints import policies
from complaints.filters import TicketFilter
from complaints.models import Ticket

from . import registers
from .models import RegisterImport

# An export is a working list, not a backup.
MAX_EXPORT_ROWS = 50_000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _require_service_staff(user) -> None:
    if not policies.is_service_staff(user):
        raise PermissionDenied(_("Store registers and exports are for customer-service staff."))


class RegisterUploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Register file (.xlsx)"))


@login_required
def register_list(request):
    _require_service_staff(request.user)
    form = RegisterUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            record = registers.register_upload(
                uploaded=form.cleaned_data["file"], actor=request.user
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error("file", message)
        else:
            return redirect("intake:register-detail", pk=record.pk)
    history = RegisterImport.objects.select_related("uploaded_by")[:50]
    status = 400 if form.errors else 200
    return render(
        request, "channels/registers.html", {"form": form, "history": history}, status=status
    )


@login_required
def register_template(request):
    _require_service_staff(request.user)
    response = HttpResponse(registers.template_xlsx(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = 'attachment; filename="store-register-template.xlsx"'
    return response


@login_required
def register_detail(request, pk: int):
    _require_service_staff(request.user)
    record = get_object_or_404(RegisterImport.objects.select_related("uploaded_by"), pk=pk)
    return render(request, "channels/register_detail.html", {"record": record})


@login_required
@require_POST
def register_confirm(request, pk: int):
    _require_service_staff(request.user)
    get_object_or_404(RegisterImport, pk=pk)
    try:
        record = registers.register_confirm(record=pk, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if record.state == RegisterImport.State.IMPORTED:
            messages.success(
                request,
                _("Imported %(rows)d rows: %(new)d new tickets, %(joined)d joined open tickets.")
                % {
                    "rows": record.row_count,
                    "new": record.new_tickets,
                    "joined": record.joined_tickets,
                },
            )
        else:
            messages.error(request, _("Nothing was imported; see the problems below."))
    return redirect("intake:register-detail", pk=pk)


@login_required
def tickets_export(request):
    """The ticket list, filtered like the API list (status, channel, q…), as xlsx or csv."""
    _require_service_staff(request.user)
    fmt = request.GET.get("format", "xlsx")
    if fmt not in ("xlsx", "csv"):
        return HttpResponse(_("Choose format=xlsx or format=csv."), status=400)
    queryset = Ticket.objects.for_queue().select_related("repeat_of").order_by("-created_at", "-pk")
    filterset = TicketFilter(request.GET, queryset=queryset)
    if not filterset.is_valid():
        return HttpResponse(str(filterset.errors.as_text()), status=400, content_type="text/plain")
    content, content_type = registers.tickets_export(filterset.qs[:MAX_EXPORT_ROWS], fmt)
    response = HttpResponse(content, content_type=content_type)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="tickets-{stamp}.{fmt}"'
    return response
