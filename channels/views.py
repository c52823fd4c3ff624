"""The public complaint form (no login): one more door into the intake service."""

import uuid

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.utils.translation import gettext as _

from complaints.public_views import _client_ip
from complaints.services import status_url

from . import services
from .forms import ComplaintForm

TEMPLATE = "channels/complain.html"


def _rate_limited(request) -> bool:
    """Count submissions per client address in a fixed window (Django's cache)."""
    window = settings.CLOSELOOP_WEB_FORM_WINDOW_SECONDS
    key = f"complain-attempts:{_client_ip(request)}"
    cache.add(key, 0, timeout=window)
    try:
        attempts = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=window)
        attempts = 1
    return attempts > settings.CLOSELOOP_WEB_FORM_LIMIT


def complain(request):
    if request.method != "POST":
        form = ComplaintForm(initial={"token": uuid.uuid4().hex})
        return render(request, TEMPLATE, {"form": form})

    form = ComplaintForm(request.POST)
    if _rate_limited(request):
        form.is_valid()
        context = {"form": form, "error": _("Too many complaints from here. Please try later.")}
        return render(request, TEMPLATE, context, status=429)
    if request.POST.get("website"):
        context = {"form": form, "error": _("Your complaint could not be sent.")}
        return render(request, TEMPLATE, context, status=400)
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = services.intake_submit(
                channel=services.web_channel(),
                external_id=f"web-{data['token']}",
                customer={"name": data["name"], "phone": data["phone"]},
                body=data["body"],
                order_no=data["order_no"],
                category=data["category"],
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                name = field.removeprefix("customer.")
                for message in messages:
                    form.add_error(name if name in form.fields else None, message)
        else:
            ticket = result.ticket
            context = {"ticket": ticket, "status_url": status_url(ticket)}
            return render(request, "channels/complain_done.html", context)
    if "token" in form.errors:
        # The hidden token was lost or altered: give the page a fresh one so that
        # sending it again works, and say why it did not go through.
        data = request.POST.copy()
        data["token"] = uuid.uuid4().hex
        form = ComplaintForm(data)
        form.is_valid()
        form.add_error(None, _("The form expired. Please check it and send it again."))
    return render(request, TEMPLATE, {"form": form}, status=400)
