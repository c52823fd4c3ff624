"""Query-string filters of the staff ticket list (django-filter).

Every filter parses its value with a Django form field, so junk (`priority=x`,
a 40-digit category id, a NUL byte) is a 400 with the parameter named, never a
database error.
"""

import datetime as dt

import django_filters
from django import forms
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import OPEN_STATUSES, Priority, Status, Ticket
from .phone import normalize_phone

# How close a deadline must be for the ticket to count as "due soon".
SLA_DUE_SOON = dt.timedelta(hours=1)
MAX_ID = 2**31 - 1


class SlaState(models.TextChoices):
    OK = "ok", _("On track (no deadline, or more than an hour left)")
    DUE_SOON = "due_soon", _("Due within an hour (open tickets)")
    BREACHED = "breached", _("Deadline passed (open tickets)")


class IntegerFilter(django_filters.NumberFilter):
    # NumberFilter parses decimals; ids are integers.
    field_class = forms.IntegerField


class TicketFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices, help_text=_("Ticket status."))
    category = IntegerFilter(
        method="filter_category",
        min_value=1,
        max_value=MAX_ID,
        help_text=_("Category id; a top-level category also matches its subcategories."),
    )
    priority = django_filters.TypedChoiceFilter(
        choices=Priority.choices, coerce=int, help_text=_("Priority, 1 (critical) to 4 (low).")
    )
    channel = django_filters.CharFilter(
        field_name="channel__code", max_length=50, help_text=_("Channel code.")
    )
    assignee = django_filters.CharFilter(
        field_name="assignee__username", max_length=150, help_text=_("Assignee's username.")
    )
    sla = django_filters.ChoiceFilter(
        choices=SlaState.choices,
        method="filter_sla",
        help_text=_("SLA state of the next deadline."),
    )
    q = django_filters.CharFilter(
        method="filter_q",
        max_length=200,
        help_text=_(
            "Text in the number, subject, description or order number "
            "(case-insensitive), or the customer's phone number."
        ),
    )

    class Meta:
        model = Ticket
        fields = ["status", "category", "priority", "channel", "assignee", "sla", "q"]

    def filter_category(self, queryset, name, value: int):
        return queryset.filter(Q(category_id=value) | Q(category__parent_id=value))

    def filter_sla(self, queryset, name, value: str):
        now = timezone.now()
        soon = now + SLA_DUE_SOON
        if value == SlaState.OK:
            return queryset.filter(Q(due_at__isnull=True) | Q(due_at__gt=soon))
        queryset = queryset.filter(status__in=OPEN_STATUSES)
        if value == SlaState.DUE_SOON:
            return queryset.filter(due_at__gt=now, due_at__lte=soon)
        return queryset.filter(due_at__lte=now)

    def filter_q(self, queryset, name, value: str):
        value = value.strip()
        if not value:
            return queryset
        condition = (
            Q(number__icontains=value)
            | Q(subject__icontains=value)
            | Q(body__icontains=value)
            | Q(order_no__icontains=value)
        )
        phone = normalize_phone(value)
        if phone:
            condition |= Q(customer__phone=phone)
        return queryset.filter(condition)
