"""SLA configuration in the Django admin: policies (versioned on save), clocks read-only."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from complaints.admin import ReadOnlyAdminMixin, ReadOnlyInline

from . import services
from .models import Clock, RiskAlert, RiskSettings, SlaPolicy, SlaPolicyVersion


class VersionInline(ReadOnlyInline):
    model = SlaPolicyVersion
    fields = (
        "number",
        "created_at",
        "first_response_minutes",
        "assessment_minutes",
        "solution_minutes",
        "closure_minutes",
        "warn_1_percent",
        "warn_2_percent",
        "warn_3_percent",
        "calendar",
        "task_response_hours",
        "task_completion_hours",
    )
    readonly_fields = fields
    ordering = ("-number",)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "priority",
        "category",
        "channel",
        "first_response_minutes",
        "assessment_minutes",
        "solution_minutes",
        "closure_minutes",
        "calendar",
        "is_active",
        "current_version",
    )
    list_filter = ("priority", "calendar", "is_active")
    list_select_related = ("category__parent", "channel", "current_version__policy")
    fieldsets = (
        (None, {"fields": ("name", "priority", "category", "channel", "is_active")}),
        (
            _("Targets (minutes of working time from receipt)"),
            {
                "fields": (
                    "first_response_minutes",
                    "assessment_minutes",
                    "solution_minutes",
                    "closure_minutes",
                )
            },
        ),
        (_("Warnings"), {"fields": ("warn_1_percent", "warn_2_percent", "warn_3_percent")}),
        (_("Calendar"), {"fields": ("calendar", "work_start", "work_end", "chinese_holidays")}),
        (
            _("Department tasks (collaboration tasks opened on the ticket)"),
            {"fields": ("task_response_hours", "task_completion_hours")},
        ),
    )
    inlines = [VersionInline]

    def save_model(self, request, obj, form, change):
        # Every change of terms becomes a new version; running tickets keep theirs.
        super().save_model(request, obj, form, change)
        services.policy_publish(obj)


@admin.register(Clock)
class ClockAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "ticket",
        "stage",
        "started_at",
        "due_at",
        "met_at",
        "breached_at",
        "warned_level",
        "paused_seconds",
    )
    list_filter = ("stage", "warned_level")
    list_select_related = ("ticket",)
    search_fields = ("ticket__number",)
    raw_id_fields = ("ticket", "policy_version")


@admin.register(RiskSettings)
class RiskSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "updated_at")

    def has_add_permission(self, request):
        # One row of settings: add it once, then edit it.
        return super().has_add_permission(request) and not RiskSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RiskAlert)
class RiskAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "severity", "ticket", "customer", "acknowledged_at")
    list_filter = ("kind", "severity")
    list_select_related = ("ticket", "customer")
    search_fields = ("ticket__number",)
