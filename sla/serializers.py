"""API shapes of the SLA engine: a ticket's clocks and risk alerts."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from . import selectors
from .models import Clock, RiskAlert, RiskKind, Severity, WarningLevel


class ClockOutput(serializers.ModelSerializer):
    stage_display = serializers.CharField(source="get_stage_display")
    warning_level = serializers.ChoiceField(
        source="warned_level",
        choices=WarningLevel.choices,
        help_text=_(
            "Highest warning sent: 0 none, 1–3 the warnings (by default at 50, 75 and 90 "
            "percent of the target), 4 the breach."
        ),
    )
    warning_level_display = serializers.CharField(source="get_warned_level_display")
    state = serializers.SerializerMethodField(
        help_text=_("met, met_late, running, paused, overdue or stopped (ticket closed/merged).")
    )

    class Meta:
        model = Clock
        fields = [
            "stage",
            "stage_display",
            "target_minutes",
            "started_at",
            "due_at",
            "met_at",
            "breached_at",
            "paused_at",
            "paused_seconds",
            "warning_level",
            "warning_level_display",
            "state",
        ]
        read_only_fields = fields

    def get_state(self, clock) -> str:
        now = self.context.setdefault("now", timezone.now())
        return selectors.clock_state(clock, now, clock.ticket.is_open)[0]


class RiskAlertOutput(serializers.ModelSerializer):
    ticket = serializers.SlugRelatedField(slug_field="number", read_only=True)
    kind = serializers.ChoiceField(choices=RiskKind.choices)
    kind_display = serializers.CharField(source="get_kind_display")
    severity = serializers.ChoiceField(
        choices=Severity.choices, help_text=_("1 low, 2 medium, 3 high.")
    )
    severity_display = serializers.CharField(source="get_severity_display")
    acknowledged_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = RiskAlert
        fields = [
            "id",
            "ticket",
            "kind",
            "kind_display",
            "severity",
            "severity_display",
            "message",
            "created_at",
            "acknowledged_by",
            "acknowledged_at",
        ]
        read_only_fields = fields
