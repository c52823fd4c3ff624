"""Public pages for customers (no login): the self-service status check and the survey."""

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from . import services
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


class StatusRateLimited(Exception):
    """Too many status lookups from one client address (429)."""


def status_lookup(request, number: str, last4: str) -> dict | None:
    """The public, masked view of a ticket for its number + the phone's last four digits.

    Shared by the page and the API. A wrong number and a wrong phone both give None, so
    nothing can be probed; every attempt counts against the client address's limit.
    """
    key = f"status-attempts:{_client_ip(request)}"
    attempts = cache.get_or_set(key, 0, STATUS_RATE_WINDOW)
    if attempts >= STATUS_RATE_LIMIT:
        raise StatusRateLimited
    cache.incr(key)
    number, last4 = number.strip()[:24], last4.strip()[:4]
    ticket = Ticket.objects.select_related("customer").filter(number=number).first()
    if not ticket or len(last4) != 4 or not ticket.customer.phone.endswith(last4):
        return None
    return {
        "number": ticket.number,
        "status": ticket.status,
        "status_display": ticket.get_status_display(),
        "next_step": NEXT_STEPS[ticket.status](),
        "promised_followup_at": ticket.promised_followup_at,
        "received_at": ticket.created_at,
        "customer": ticket.customer.name[:1] + "*" * max(len(ticket.customer.name) - 1, 1),
        "phone": ticket.customer.masked_phone,
    }


def status_page(request):
    number = request.GET.get("number", "").strip()[:24]
    last4 = request.GET.get("phone_last4", "").strip()[:4]
    context = {"number": number, "result": None, "not_found": False}
    if number and last4:
        try:
            context["result"] = status_lookup(request, number, last4)
        except StatusRateLimited:
            context["error"] = _("Too many attempts. Please try again in a few minutes.")
            return render(request, "complaints/public_status.html", context, status=429)
        context["not_found"] = context["result"] is None
    return render(request, "complaints/public_status.html", context)


SURVEY_DIMENSIONS = [
    ("efficiency", _lazy("How quickly was it handled? (解决效率)")),
    ("attitude", _lazy("How was the service attitude? (服务态度)")),
    ("clarity", _lazy("How clearly did we communicate? (沟通清晰度)")),
    ("resolution", _lazy("How well was the problem solved? (问题解决率)")),
    ("empathy", _lazy("Did we understand how you felt? (情感共鸣)")),
]


def survey_page(request, link):
    """The customer's satisfaction survey behind the signed, single-use link."""
    try:
        survey = services.survey_from_link(link)
    except ValidationError as exc:
        context = {"error": " ".join(exc.messages)}
        return render(request, "complaints/public_survey.html", context, status=404)
    context = {
        "survey": survey,
        "number": survey.ticket.number,
        "dimensions": SURVEY_DIMENSIONS,
        "scale": range(1, 6),
        "overall_scale": range(0, 11),
        "values": request.POST,
    }
    if survey.is_answered:
        return render(request, "complaints/public_survey.html", {**context, "done": True})
    if request.method != "POST":
        return render(request, "complaints/public_survey.html", context)
    try:
        services.survey_answer(link=link, answers=request.POST.dict())
    except ValidationError as exc:
        context["errors"] = exc.message_dict
        return render(request, "complaints/public_survey.html", context, status=400)
    except services.Conflict:
        return render(request, "complaints/public_survey.html", {**context, "done": True})
    return render(request, "complaints/public_survey.html", {**context, "done": True})
