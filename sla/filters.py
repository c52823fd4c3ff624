"""Query-string filters of the risk-alert list API (django-filter: junk is a 400)."""

import django_filters
from django.utils.translation import gettext_lazy as _

from .models import RiskAlert, RiskKind, Severity


class RiskAlertFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=RiskKind.choices, help_text=_("Signal kind."))
    severity = django_filters.TypedChoiceFilter(
        choices=Severity.choices, coerce=int, help_text=_("1 low, 2 medium, 3 high.")
    )
    acknowledged = django_filters.BooleanFilter(
        field_name="acknowledged_at",
        lookup_expr="isnull",
        exclude=True,
        help_text=_("true: acknowledged alerts only; false: open ones only; absent: both."),
    )

    class Meta:
        model = RiskAlert
        fields = ["kind", "severity", "acknowledged"]
