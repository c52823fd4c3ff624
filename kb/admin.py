"""Admin: admins write articles, SOP templates, scripts, synonyms and forbidden phrases.

Saves go through kb.services, so the admin keeps versions, review dates and the
search columns like every other path.
"""

import datetime as dt
import difflib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from complaints.admin import HiddenFromDepartmentStaffMixin, ReadOnlyAdminMixin
from complaints.models import Customer, Ticket

from . import services
from .models import (
    Article,
    ArticleFeedback,
    ArticleStatus,
    ArticleVersion,
    CategoryReviewPolicy,
    ForbiddenPhrase,
    ReplyScript,
    SopStep,
    SopTemplate,
    SopTemplateVersion,
    SynonymGroup,
)

# --- articles ---------------------------------------------------------------------


class NeedsReviewFilter(admin.SimpleListFilter):
    title = _("review")
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("due", _("Needs review")), ("week", _("Due within 7 days"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        published = queryset.filter(status=ArticleStatus.PUBLISHED)
        if self.value() == "due":
            return published.filter(review_due_at__lte=now)
        if self.value() == "week":
            return published.filter(review_due_at__lte=now + dt.timedelta(days=7))
        return queryset


class ArticleVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ArticleVersion
    fields = ("number_link", "title", "status", "edited_by", "created_at")
    readonly_fields = fields
    extra = 0
    ordering = ("-number",)

    @admin.display(description=_("version"))
    def number_link(self, obj):
        url = reverse("admin:kb_articleversion_change", args=[obj.pk])
        return format_html('<a href="{}">v{}</a>', url, obj.number)


@admin.register(Article)
class ArticleAdmin(HiddenFromDepartmentStaffMixin, admin.ModelAdmin):
    list_display = (
        "title",
        "category",
        "status",
        "owner",
        "version",
        "review_due_at",
        "view_count",
        "helpful_count",
        "not_helpful_count",
    )
    list_filter = (NeedsReviewFilter, "status", "category")
    search_fields = ("title", "tags")
    list_select_related = ("category__parent", "owner")
    autocomplete_fields = ()
    fields = ("title", "category", "tags", "status", "owner", "body")
    readonly_fields = ()
    inlines = [ArticleVersionInline]
    actions = ["mark_reviewed"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "version",
            "review_due_at",
            "reviewed_at",
            "view_count",
            "helpful_count",
            "not_helpful_count",
            "created_at",
            "updated_at",
        )

    def get_fields(self, request, obj=None):
        return self.fields + tuple(self.get_readonly_fields(request, obj))

    def save_model(self, request, obj, form, change):
        services.article_save(article=obj, actor=request.user)

    @admin.action(description=_("Mark as reviewed (still correct)"))
    def mark_reviewed(self, request, queryset):
        done = 0
        for article in queryset.filter(status=ArticleStatus.PUBLISHED):
            services.article_mark_reviewed(article=article, actor=request.user)
            done += 1
        self.message_user(request, _("%(n)d article(s) marked as reviewed.") % {"n": done})


def _diff_html(before: str, after: str):
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=2
    )
    rows = []
    for line in lines:
        css = {"+": "color:#17803d", "-": "color:#b42318", "@": "color:#667085"}.get(line[:1], "")
        rows.append((css, line))
    if not rows:
        return _("No change.")
    return format_html(
        '<pre style="white-space:pre-wrap">{}</pre>',
        format_html_join("\n", '<span style="{}">{}</span>', rows),
    )


@admin.register(ArticleVersion)
class ArticleVersionAdmin(HiddenFromDepartmentStaffMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("article", "number", "status", "edited_by", "created_at")
    list_select_related = ("article", "edited_by")
    search_fields = ("article__title",)
    fields = (
        "article",
        "number",
        "title",
        "status",
        "tags",
        "category",
        "edited_by",
        "created_at",
        "changes",
    )
    readonly_fields = fields

    def previous(self, obj):
        return (
            ArticleVersion.objects.filter(article_id=obj.article_id, number__lt=obj.number)
            .order_by("-number")
            .first()
        )

    @admin.display(description=_("changes from the previous version"))
    def changes(self, obj):
        previous = self.previous(obj)

        def text(v):
            return f"# {v.title}\n[{v.tags}] ({v.status})\n\n{v.body}" if v else ""

        return _diff_html(text(previous), text(obj))


@admin.register(ArticleFeedback)
class ArticleFeedbackAdmin(HiddenFromDepartmentStaffMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("article", "helpful", "comment", "user", "created_at")
    list_filter = ("helpful",)
    list_select_related = ("article", "user")


@admin.register(CategoryReviewPolicy)
class CategoryReviewPolicyAdmin(HiddenFromDepartmentStaffMixin, admin.ModelAdmin):
    list_display = ("category", "fast_moving")
    list_select_related = ("category__parent",)


# --- search vocabulary and forbidden phrases -----------------------------------------


class SynonymGroupForm(forms.ModelForm):
    class Meta:
        model = SynonymGroup
        fields = ("words",)

    def clean_words(self):
        words = self.cleaned_data["words"]
        if len(SynonymGroup(words=words).word_list) < 2:
            raise ValidationError(_("Give at least two words, separated by spaces."))
        return words


@admin.register(SynonymGroup)
class SynonymGroupAdmin(HiddenFromDepartmentStaffMixin, admin.ModelAdmin):
    form = SynonymGroupForm
    list_display = ("__str__", "updated_at")
    search_fields = ("words",)


@admin.register(ForbiddenPhrase)
class ForbiddenPhraseAdmin(HiddenFromDepartmentStaffMixin, admin.ModelAdmin):
    list_display = ("phrase", "approved_wording", "is_active")
    list_filter = ("is_active",)
    search_fields = ("phrase", "approved_wording")


# --- SOP templates and scripts ---------------------------------------------------------


class SopStepInline(admin.TabularInline):
    model = SopStep
    fields = ("position", "title", "deadline_hours")
    extra = 1


class ReplyScriptForm(forms.ModelForm):
    class Meta:
        model = ReplyScript
        fields = ("kind", "body")

    def clean(self):
        cleaned = super().clean()
        problems = services.script_errors(cleaned.get("kind"), cleaned.get("body") or "")
        if problems:
            raise ValidationError(problems)
        return cleaned


class ReplyScriptInline(admin.StackedInline):
    model = ReplyScript
    form = ReplyScriptForm
    extra = 0


class SopTemplateVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SopTemplateVersion
    fields = ("number", "edited_by", "created_at")
    readonly_fields = fields
    extra = 0
    ordering = ("-number",)


def sample_ticket(template: SopTemplate) -> Ticket:
    """A ticket to preview scripts with: the newest of the category, else a made-up one."""
    if template.category_id:
        ticket = (
            Ticket.objects.filter(
                Q(category=template.category_id) | Q(category__parent=template.category_id)
            )
            .select_related("customer")
            .order_by("-created_at")
            .first()
        )
        if ticket is not None:
            return ticket
    return Ticket(
        number="TS20261122-000123",
        customer=Customer(name="王女士"),
        created_at=timezone.now(),
        promised_followup_at=timezone.now() + dt.timedelta(hours=24),
    )


@admin.register(SopTemplate)
class SopTemplateAdmin(HiddenFromDepartmentStaffMixin, admin.ModelAdmin):
    list_display = ("name", "category", "is_active", "version", "updated_at")
    list_filter = ("is_active",)
    list_select_related = ("category__parent",)
    fields = ("name", "category", "is_active", "version", "preview")
    readonly_fields = ("version", "preview")
    inlines = [SopStepInline, ReplyScriptInline, SopTemplateVersionInline]

    @admin.display(description=_("preview with a sample ticket"))
    def preview(self, obj):
        if obj is None or obj.pk is None:
            return _("Save the template to see a preview.")
        ticket = sample_ticket(obj)
        rows = [
            (script.get_kind_display(), services.render_script(script.body, ticket))
            for script in obj.scripts.all()
        ]
        if not rows:
            return _("No scripts yet.")
        return format_html(
            '<div data-testid="sop-preview"><p>{}</p>{}</div>',
            _("Sample ticket %(number)s") % {"number": ticket.number},
            format_html_join("", "<p><b>{}</b><br>{}</p>", rows),
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.sop_template_saved(template=form.instance, actor=request.user)
        messages.info(request, _("Saved as version %(n)d.") % {"n": form.instance.version})


@admin.register(SopTemplateVersion)
class SopTemplateVersionAdmin(HiddenFromDepartmentStaffMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("template", "number", "edited_by", "created_at")
    list_select_related = ("template", "edited_by")
    readonly_fields = ("template", "number", "snapshot", "edited_by", "created_at")
