import re

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from . import classifier, selectors, services
from .models import (
    AgentAvailability,
    CategoryModel,
    CategorySuggestion,
    RoutingRule,
    SkillGroup,
    TicketUrgency,
    TicketWatcher,
    UrgencyTerm,
)


class RoutingRuleForm(forms.ModelForm):
    def clean(self):
        data = super().clean()
        category = data.get("set_category")
        if category is not None and category.children.exists():
            self.add_error("set_category", _("Choose a leaf category (one without subcategories)."))
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", _("The upper amount is below the lower one."))
        if data.get("raise_risk") == "" and data.get("risk_message"):
            self.add_error("raise_risk", _("Choose the kind of risk alert the message is for."))
        return data


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = ("position", "name", "is_active", "stop_processing", "actions_summary")
    list_display_links = ("name",)
    list_editable = ("position", "is_active", "stop_processing")
    list_filter = ("is_active",)
    search_fields = ("name", "keywords")
    filter_horizontal = ("channels", "categories")
    autocomplete_fields = ("add_watcher",)
    fieldsets = (
        (None, {"fields": ("name", "position", "is_active", "stop_processing")}),
        (
            _("Conditions (all that are filled in must hold)"),
            {
                "fields": (
                    "channels",
                    "categories",
                    "keywords",
                    "vip_min_level",
                    ("amount_min", "amount_max"),
                    ("hour_from", "hour_to"),
                )
            },
        ),
        (
            _("Actions"),
            {
                "fields": (
                    "set_category",
                    ("set_amount_level", "set_impact", "set_urgency"),
                    "set_priority",
                    "assign_team",
                    "assign_skill_group",
                    "add_watcher",
                    ("raise_risk", "risk_message"),
                )
            },
        ),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related(
                "set_category__parent", "assign_team", "assign_skill_group", "add_watcher"
            )
        )

    @admin.display(description=_("actions"))
    def actions_summary(self, rule):
        return "; ".join(selectors.rule_actions(rule))


@admin.register(SkillGroup)
class SkillGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "strategy", "max_open_per_agent", "is_active")
    list_filter = ("team", "strategy", "is_active")
    filter_horizontal = ("categories", "members")


@admin.register(AgentAvailability)
class AgentAvailabilityAdmin(admin.ModelAdmin):
    list_display = ("user", "status", "last_assigned_at", "changed_at")
    list_editable = ("status",)
    list_filter = ("status",)
    search_fields = ("user__username", "user__first_name")
    autocomplete_fields = ("user",)
    readonly_fields = ("last_assigned_at", "changed_at")


class UrgencyTermForm(forms.ModelForm):
    def clean(self):
        data = super().clean()
        if data.get("is_pattern") and data.get("term"):
            try:
                re.compile(data["term"])
            except re.error as exc:
                self.add_error("term", _("Not a valid regular expression: %(e)s") % {"e": exc})
        return data


@admin.register(UrgencyTerm)
class UrgencyTermAdmin(admin.ModelAdmin):
    form = UrgencyTermForm
    list_display = ("term", "reason", "level", "is_pattern", "is_active")
    list_editable = ("is_active",)
    list_filter = ("reason", "level", "is_active")
    search_fields = ("term",)


@admin.register(TicketUrgency)
class TicketUrgencyAdmin(admin.ModelAdmin):
    list_display = ("ticket", "level", "matches", "detected_at")
    list_select_related = ("ticket",)
    readonly_fields = ("ticket", "level", "matches", "detected_at")

    def has_add_permission(self, request):
        return False


@admin.register(TicketWatcher)
class TicketWatcherAdmin(admin.ModelAdmin):
    list_display = ("ticket", "user", "rule", "created_at")
    list_select_related = ("ticket", "user", "rule")
    raw_id_fields = ("ticket",)
    autocomplete_fields = ("user",)


@admin.register(CategoryModel)
class CategoryModelAdmin(admin.ModelAdmin):
    list_display = ("created_at", "samples", "classes", "holdout_accuracy", "library")
    exclude = ("payload",)
    readonly_fields = ("created_at", "samples", "classes", "holdout_accuracy", "library")
    actions = ["train_now"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Train a new model now (on resolved tickets)"))
    def train_now(self, request, queryset):
        try:
            result = services.train()
        except classifier.NotEnoughData as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            _("Trained on %(n)d tickets, %(k)d categories.")
            % {"n": result.samples, "k": result.classes},
        )


@admin.register(CategorySuggestion)
class CategorySuggestionAdmin(admin.ModelAdmin):
    list_display = (
        "ticket",
        "category",
        "confidence",
        "outcome",
        "final_category",
        "shown_to",
        "decided_by",
        "shown_at",
    )
    list_filter = ("outcome",)
    list_select_related = (
        "ticket",
        "category__parent",
        "final_category__parent",
        "shown_to",
        "decided_by",
    )
    readonly_fields = [f.name for f in CategorySuggestion._meta.fields]

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "triage_stats": selectors.suggestion_stats()}
        return super().changelist_view(request, extra_context=extra_context)
