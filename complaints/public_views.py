"""Public pages for customers (no login): the self-service status check."""

from django.core.cache import cache
from django.shortcuts import render
from django.utils.translation import gettext as _

from .models import Status, Ticket

# Attempts per client address per window before the page refuses (429).
STATUS_RATE_LIMIT = 20
STATUS_RATE_WINDOW = 600

NEXT_STEPS = {
    Status.RECEIVED: lambda: _("We have received your complaint and will classify it shortly."),
    Status.CLASSIFIED: lambda: _("Your complaint is being passed to the right person."),
    Status.ASSIGNED: lambda: _("An agent has taken your complaint and will contact you."),
    Status.IN_PROGRESS: lambda: _("We are working on a solution."),
    Status.RESOLVED: lambda: _("A solution has been carried out; we will call you to check."),
    Status.FOLLOWED_UP: lambda: _("We have followed up with you; the case will be closed."),
    Status.CLOSED: lambda: _("The case is closed. Thank you for your patience."),
    Status.MERGED: lambda: _("This complaint is handled together with another ticket of yours."),
}


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def status_page(request):
    number = request.GET.get("number", "").strip()[:24]
    last4 = request.GET.get("phone_last4", "").strip()[:4]
    context = {"number": number, "result": None, "not_found": False}
    if number and last4:
        key = f"status-attempts:{_client_ip(request)}"
        attempts = cache.get_or_set(key, 0, STATUS_RATE_WINDOW)
        if attempts >= STATUS_RATE_LIMIT:
            context["error"] = _("Too many attempts. Please try again in a few minutes.")
            return render(request, "complaints/public_status.html", context, status=429)
        cache.incr(key)
        ticket = Ticket.objects.select_related("customer").filter(number=number).first()
        # A wrong number and a wrong phone look the same, so nothing can be probed.
        if ticket and len(last4) == 4 and ticket.customer.phone.endswith(last4):
            context["result"] = {
                "number": ticket.number,
                "status": ticket.get_status_display(),
                "next_step": NEXT_STEPS[ticket.status](),
                "promised_followup_at": ticket.promised_followup_at,
                "received_at": ticket.created_at,
                "customer": ticket.customer.name[:1] + "*" * max(len(ticket.customer.name) - 1, 1),
                "phone": ticket.customer.masked_phone,
            }
        else:
            context["not_found"] = True
    return render(request, "complaints/public_status.html", context)
