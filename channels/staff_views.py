"""Staff pages of the intake: hotline quick entry, store-register import, ticket export."""

import uuid

from django import forms
from django.conf import settings
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
from complaints.models import Category, Customer, Ticket
from complaints.phone import normalize_phone
from complaints.selectors import customer_360

from . import outbox, registers, services
from .models import OutboundMessage, RegisterImport

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
    limits = {"max_rows": f"{registers.MAX_ROWS:,}", "max_mb": registers.MAX_FILE_BYTES >> 20}
    return render(
        request,
        "channels/registers.html",
        {"form": form, "history": history, **limits},
        status=status,
    )


@login_required
def register_progress(request, pk: int):
    """The progress bar of a running import (polled by htmx); reloads the page when done."""
    _require_service_staff(request.user)
    record = get_object_or_404(RegisterImport, pk=pk)
    if record.state != RegisterImport.State.IMPORTING:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(
        request,
        "channels/partials/register_progress.html",
        {
            "record": record,
            "done": registers.import_progress(record),
            "chunk_rows": registers.CHUNK_ROWS,
        },
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
    done = registers.import_progress(record) if record.state == "importing" else None
    return render(
        request,
        "channels/register_detail.html",
        {"record": record, "done": done, "chunk_rows": registers.CHUNK_ROWS},
    )


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
        if record.state == RegisterImport.State.IMPORTING:
            messages.info(
                request,
                _("Importing %(rows)d rows in the background; this page shows the progress.")
                % {"rows": record.row_count},
            )
        elif record.state == RegisterImport.State.IMPORTED:
            messages.success(
                request,
                _("Imported %(rows)d rows: %(new)d new tickets, %(joined)d joined open tickets.")
                % {
                    "rows": record.row_count,
                    "new": record.new_tickets,
                    "joined": record.joined_tickets,
                },
            )
        elif record.state == RegisterImport.State.STOPPED:
            messages.error(
                request,
                _("The import stopped after %(done)d of %(rows)d rows; see why below.")
                % {"done": record.imported_rows, "rows": record.row_count},
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


# --- hotline and walk-in quick entry --------------------------------------------------


class HotlineForm(forms.Form):
    """One call or walk-in, recorded while the customer is on the line."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    phone = forms.CharField(label=gettext_lazy("Caller's phone"), max_length=20)
    name = forms.CharField(label=gettext_lazy("Customer name"), max_length=100)
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200, required=False)
    body = forms.CharField(
        label=gettext_lazy("What the customer says"), widget=forms.Textarea(attrs={"rows": 4})
    )
    order_no = forms.CharField(label=gettext_lazy("Order number"), max_length=64, required=False)
    category = forms.ModelChoiceField(
        label=gettext_lazy("Category"),
        queryset=Category.objects.filter(is_active=True).select_related("parent"),
        required=False,
    )
    recording_ref = forms.CharField(
        label=gettext_lazy("Call recording reference"),
        max_length=100,
        required=False,
        help_text=gettext_lazy(
            "The recording id from the phone system (dual recording: call + ticket)."
        ),
    )


@login_required
def hotline(request):
    """Look the caller up by phone first (customer 360), then record the call as a ticket
    through the same intake service as every channel (identity and repeat rules)."""
    _require_service_staff(request.user)
    phone = (request.POST.get("phone") or request.GET.get("phone") or "").strip()
    normalized = normalize_phone(phone) if phone else ""
    customer = Customer.objects.filter(phone=normalized).first() if normalized else None
    if request.method == "POST":
        form = HotlineForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            extra = {"recording": data["recording_ref"]} if data["recording_ref"] else {}
            try:
                result = services.intake_submit(
                    channel=services.hotline_channel(),
                    external_id=f"hotline-{data['token']}",
                    customer={"name": data["name"], "phone": data["phone"]},
                    subject=data["subject"],
                    body=data["body"],
                    order_no=data["order_no"],
                    category=data["category"],
                    actor=request.user,
                    extra=extra,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    name = field.removeprefix("customer.")
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
            else:
                ticket = result.ticket
                messages.success(
                    request,
                    _("Ticket %(number)s opened.") % {"number": ticket.number}
                    if result.created
                    else _("Recorded on the customer's open ticket %(number)s.")
                    % {"number": ticket.number},
                )
                return redirect("workspace:ticket", number=ticket.number)
        status = 400
    else:
        initial = {"token": uuid.uuid4().hex, "phone": phone}
        if customer is not None:
            initial["name"] = customer.name
        form = HotlineForm(initial=initial)
        status = 200
    context = {
        "form": form,
        "phone": phone,
        "searched": bool(phone),
        "customer360": customer_360(customer) if customer is not None else None,
    }
    return render(request, "channels/hotline.html", context, status=status)


# --- outbound delivery on the ticket page ---------------------------------------------------

# htmx stops polling on this status (https://htmx.org/attributes/hx-trigger/).
HTMX_STOP_POLLING = 286


def _ticket_message(user, number, pk):
    from complaints.selectors import ticket_for_user

    ticket, can_write = ticket_for_user(user, number)
    if not can_write:
        raise PermissionDenied(_("Department staff work their tasks from the task board."))
    message = get_object_or_404(
        OutboundMessage.objects.select_related("ticket"), pk=pk, ticket=ticket
    )
    return message


def _delivery_response(request, message, status=200):
    context = {
        "m": message,
        "can_retry": outbox.retry_refusal(request.user, message) is None,
        "poll_seconds": settings.CLOSELOOP_DELIVERY_POLL_SECONDS,
    }
    response = render(request, "channels/partials/delivery.html", context, status=status)
    if status == 200 and message.is_final:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
def message_state(request, number, pk):
    """The delivery badge of one message (polled by htmx until it is final)."""
    return _delivery_response(request, _ticket_message(request.user, number, pk))


@login_required
@require_POST
def message_retry(request, number, pk):
    message = _ticket_message(request.user, number, pk)
    try:
        message = outbox.message_retry(message=message, actor=request.user)
    except ValidationError as exc:
        message.last_error = " ".join(exc.messages)
        return _delivery_response(request, message, status=400)
    return _delivery_response(request, message)
