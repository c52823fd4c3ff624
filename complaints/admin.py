"""The Django admin: configuration backbone and a second door to the same lifecycle.

Reference data (departments, categories, channels, users and their roles) is edited
here directly. Tickets are not: every ticket field is read-only on the change page,
a new ticket goes through `services.ticket_create`, and lifecycle steps are buttons
that open the workspace's transition forms and run the same services, so a rule
(a required field, a permission, a state) holds in the admin exactly as on the
agent's pages. The timeline, contacts and attachments are records written by the
services and can only be viewed.

Compensation and collaboration tasks follow the same rule: money and tasks move only
through the services (the compensation page has Approve / Reject / Withdraw buttons
that call them), while the tier limits and the departments' task deadlines are plain
configuration. Department staff who are given admin access still see only what the
portal shows them: the tickets their department has tasks on, never a customer's
full phone number, and a 404 for every other ticket.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from channels.models import Channel

from . import policies, selectors, services
from .forms import TRANSITION_FORMS
from .models import (
    Attachment,
    Category,
    CollaborationTask,
    Compensation,
    CompensationLimit,
    CompensationState,
    Contact,
    Customer,
    CustomerIdentity,
    Department,
    Notification,
    Role,
    StaffProfile,
    TaskState,
    Ticket,
    TicketSequence,
    Tier,
    TimelineEvent,
)
from .phone import normalize_phone

User = get_user_model()

admin.site.site_header = _("Closeloop administration")
admin.site.site_title = _("Closeloop admin")
admin.site.index_title = _("Configuration")


class AdminUrlMixin:
    """Reverse this model admin's own URLs (its extra action views included)."""

    def _admin_url(self, view: str, *args) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}",
            args=args,
            current_app=self.admin_site.name,
        )


class ReadOnlyAdminMixin:
    """View-only for everyone, superusers included: the rows are records services write."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PhoneSearchMixin:
    """Also find rows by a phone number typed in any common form (138 0000 1234, 0086…)."""

    phone_lookup = "phone"

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        phone = normalize_phone(search_term)
        if phone:
            # OR onto the already list-filtered queryset so the filters still apply.
            results |= queryset.filter(**{self.phone_lookup: phone})
        return results, may_have_duplicates


# --- least privilege for department staff ------------------------------------------


def is_department_staff(request) -> bool:
    """Department staff (协作部门人员); superusers never count as such."""
    return policies.is_department_staff(request.user)


def department_ticket_ids(user):
    """Ids of the tickets the user's department has collaboration tasks on (a subquery)."""
    return CollaborationTask.objects.filter(department_id=policies.team_id_of(user)).values(
        "ticket_id"
    )


class DepartmentScopedAdminMixin:
    """Department staff reach only rows of tickets their department has tasks on.

    Any other row is a 404, as in the workspace, so ticket numbers and ids cannot be
    probed. Everyone else keeps the queryset the admin would show anyway.
    """

    # Lookup from this model to the ticket's id.
    department_scope = "ticket"

    def scope_for_department(self, request, queryset):
        if not policies.team_id_of(request.user):
            return queryset.none()
        return queryset.filter(
            **{f"{self.department_scope}__in": department_ticket_ids(request.user)}
        )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_department_staff(request):
            queryset = self.scope_for_department(request, queryset)
        return queryset

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None and is_department_staff(request):
            # Not the admin's usual "doesn't exist" redirect: it would tell a probe apart.
            raise Http404("No such object")
        return obj


class HiddenFromDepartmentStaffMixin:
    """Unavailable to department staff whatever permissions they were given."""

    def has_module_permission(self, request):
        return not is_department_staff(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return not is_department_staff(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return not is_department_staff(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return not is_department_staff(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not is_department_staff(request) and super().has_delete_permission(request, obj)


def for_own_department(request, queryset, lookup: str = "department_id"):
    """Rows of the department staff's own department (none without a department)."""
    department_id = policies.team_id_of(request.user)
    if not department_id:
        return queryset.none()
    return queryset.filter(**{lookup: department_id})


def ticket_link(ticket) -> str:
    url = reverse("admin:complaints_ticket_change", args=[ticket.pk])
    return format_html('<a href="{}">{}</a>', url, ticket.number)


# --- staff --------------------------------------------------------------------------


class DepartmentForm(forms.ModelForm):
    class Meta:
        model = Department
        fields = ("name", "code", "kind", "task_response_hours", "task_completion_hours")

    def clean(self):
        cleaned_data = super().clean()
        response = cleaned_data.get("task_response_hours")
        completion = cleaned_data.get("task_completion_hours")
        if response and completion and completion < response:
            # task_open refuses a completion deadline before the response one.
            self.add_error(
                "task_completion_hours",
                _("The completion time cannot be shorter than the response time."),
            )
        return cleaned_data


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    form = DepartmentForm
    list_display = ("name", "code", "kind", "task_response_hours", "task_completion_hours")
    list_filter = ("kind",)
    search_fields = ("name", "code")
    fieldsets = (
        (None, {"fields": ("name", "code", "kind")}),
        (
            _("Collaboration task deadlines"),
            {
                "fields": ("task_response_hours", "task_completion_hours"),
                "description": _(
                    "Defaults for new tasks opened for this department; tasks already "
                    "open keep their deadlines."
                ),
            },
        ),
    )


class StaffProfileForm(forms.ModelForm):
    class Meta:
        model = StaffProfile
        fields = ("role", "department", "is_head")

    def clean(self):
        cleaned_data = super().clean()
        role, department = cleaned_data.get("role"), cleaned_data.get("department")
        if cleaned_data.get("is_head") and role != Role.DEPARTMENT:
            # Heads reassign their department's tasks; service teams have team leads (tier 2).
            self.add_error(
                "is_head", _("Only department staff can be the head of their department.")
            )
        # Policies derive what a user may see and do from the role and the department;
        # a mismatched pair would give department staff a service queue or vice versa.
        if role == Role.DEPARTMENT:
            if department is None or department.kind != Department.Kind.COLLABORATING:
                self.add_error(
                    "department", _("Department staff belong to a collaborating department.")
                )
        elif department is not None and department.kind != Department.Kind.SERVICE:
            self.add_error(
                "department", _("Customer-service staff belong to a customer-service team.")
            )
        return cleaned_data


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    form = StaffProfileForm
    fk_name = "user"
    can_delete = False
    max_num = 1
    verbose_name_plural = _("staff profile")


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    form = StaffProfileForm
    list_display = ("user", "role", "department", "is_head")
    list_filter = ("role", "department", "is_head")
    list_select_related = ("user", "department")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    autocomplete_fields = ("user",)
    fields = ("user", "role", "department", "is_head")

    def get_readonly_fields(self, request, obj=None):
        # A profile belongs to one user for good; pick the user only when adding.
        return ("user",) if obj else ()


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = (StaffProfileInline,)
    list_display = (*BaseUserAdmin.list_display, "role")
    list_filter = (*BaseUserAdmin.list_filter, "profile__role", "profile__department")
    list_select_related = ("profile",)

    @admin.display(description=_("role"), ordering="profile__role")
    def role(self, user):
        profile = getattr(user, "profile", None)
        return profile.get_role_display() if profile else "—"


# --- customers ----------------------------------------------------------------------


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ("name", "phone", "email", "region", "address", "vip_level")

    def clean_phone(self):
        raw = self.cleaned_data.get("phone", "")
        if not raw:
            return ""
        phone = normalize_phone(raw)
        if not phone:
            raise ValidationError(
                _("Enter a Chinese mobile or landline number, e.g. 138 0013 8000 or 010-12345678.")
            )
        return phone


class CustomerIdentityInline(HiddenFromDepartmentStaffMixin, admin.TabularInline):
    model = CustomerIdentity
    fields = ("kind", "external_key", "created_at")
    readonly_fields = ("created_at",)
    extra = 0


@admin.register(Customer)
class CustomerAdmin(HiddenFromDepartmentStaffMixin, PhoneSearchMixin, admin.ModelAdmin):
    # Full phone numbers, addresses and identities: never for department staff, who see
    # the customer only through a task, phone masked.
    form = CustomerForm
    list_display = ("name", "phone", "email", "region", "vip_level", "created_at")
    list_filter = ("vip_level",)
    search_fields = ("name", "phone", "email")
    readonly_fields = ("created_at",)
    inlines = (CustomerIdentityInline,)
    ordering = ("-created_at",)
    show_full_result_count = False


@admin.register(CustomerIdentity)
class CustomerIdentityAdmin(HiddenFromDepartmentStaffMixin, admin.ModelAdmin):
    list_display = ("external_key", "kind", "customer", "created_at")
    list_filter = ("kind",)
    list_select_related = ("customer",)
    search_fields = ("external_key", "customer__name", "customer__phone")
    autocomplete_fields = ("customer",)
    readonly_fields = ("created_at",)


# --- categories ---------------------------------------------------------------------


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ("parent", "name", "code", "sort_order", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The tree has two levels: only a top-level category can be a parent.
        roots = Category.objects.filter(parent__isnull=True)
        if self.instance.pk:
            roots = roots.exclude(pk=self.instance.pk)
        self.fields["parent"].queryset = roots

    def clean_parent(self):
        parent = self.cleaned_data.get("parent")
        if parent is not None and self.instance.pk and self.instance.children.exists():
            raise ValidationError(
                _("This category has subcategories, so it must stay at the top level.")
            )
        return parent


class CategoryLevelFilter(admin.SimpleListFilter):
    title = _("level")
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [("top", _("Top level")), ("sub", _("Subcategory"))]

    def queryset(self, request, queryset):
        if self.value() in ("top", "sub"):
            return queryset.filter(parent__isnull=self.value() == "top")
        return queryset


# Tree order: each top-level category (by its sort order) followed by its children.
CATEGORY_TREE_ORDER = (
    Coalesce("parent__sort_order", "sort_order").asc(),
    Coalesce("parent_id", "id").asc(),
    F("parent_id").asc(nulls_first=True),
    "sort_order",
    "id",
)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryForm
    list_display = ("tree_name", "parent", "code", "sort_order", "is_active")
    list_editable = ("sort_order", "is_active")
    list_filter = ("is_active", CategoryLevelFilter)
    list_select_related = ("parent",)
    search_fields = ("name", "code", "parent__name")
    ordering = CATEGORY_TREE_ORDER

    @admin.display(description=_("name"), ordering="name")
    def tree_name(self, category):
        if category.parent_id:
            return format_html("&emsp;└ {}", category.name)
        return format_html("<strong>{}</strong>", category.name)


# --- tickets ------------------------------------------------------------------------

# Button labels for the lifecycle actions, in the order selectors.available_actions uses.
ACTION_LABELS = {
    "classify": _("Classify"),
    "assign": _("Assign"),
    "first_response": _("First response"),
    "start": _("Start handling"),
    "resolve": _("Resolve"),
    "follow_up": _("Record follow-up"),
    "close": _("Close"),
    "reopen": _("Reopen"),
    "merge": _("Merge"),
    "escalate": _("Escalate"),
}

# A service error keyed by a name the form calls differently.
SERVICE_FIELD_ALIASES = {"file": "evidence_file"}


def add_service_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError onto the form: field errors by field, the rest on top."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            field = SERVICE_FIELD_ALIASES.get(field, field)
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.error_list)


class CategoryListFilter(admin.SimpleListFilter):
    """Category filter labelled with full names; a top-level category includes its children."""

    title = _("category")
    parameter_name = "category"

    def lookups(self, request, model_admin):
        categories = Category.objects.select_related("parent").order_by(*CATEGORY_TREE_ORDER)
        return [(str(c.pk), c.full_name) for c in categories]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(Q(category_id=value) | Q(category__parent_id=value))


class ReadOnlyInline(admin.TabularInline):
    """A record list on the ticket page: shown, never edited."""

    extra = 0
    can_delete = False
    related: tuple[str, ...] = ()

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.related)


class TimelineEventInline(ReadOnlyInline):
    model = TimelineEvent
    fields = ("created_at", "kind", "actor", "message", "before", "after")
    readonly_fields = fields
    related = ("actor",)
    verbose_name_plural = _("timeline")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_department_staff(request):
            # Their part of the ticket: the events of their department's tasks.
            queryset = for_own_department(request, queryset, "task__department_id")
        return queryset


class ContactInline(HiddenFromDepartmentStaffMixin, ReadOnlyInline):
    model = Contact
    fields = ("occurred_at", "channel", "external_id", "body")
    readonly_fields = fields
    related = ("channel", "ticket")  # Contact.__str__ shows the ticket number


class AttachmentInline(HiddenFromDepartmentStaffMixin, ReadOnlyInline):
    model = Attachment
    fields = ("created_at", "download", "content_type", "size", "uploaded_by")
    readonly_fields = fields
    related = ("uploaded_by", "ticket")

    @admin.display(description=_("file"))
    def download(self, attachment):
        # The protected view, not the storage URL: evidence is never public.
        return format_html('<a href="{}">{}</a>', attachment.get_absolute_url(), attachment)


class CompensationInline(HiddenFromDepartmentStaffMixin, ReadOnlyInline):
    model = Compensation
    fields = (
        "created_at",
        "kind",
        "amount",
        "state",
        "requested_by",
        "approver_tier",
        "decided_by",
        "reason",
        "decision_note",
    )
    readonly_fields = fields
    related = ("requested_by", "decided_by", "ticket")
    show_change_link = True  # the compensation page carries Approve / Reject / Withdraw


class CollaborationTaskInline(ReadOnlyInline):
    model = CollaborationTask
    fields = (
        "department",
        "responsibility",
        "state",
        "assignee",
        "respond_due_at",
        "complete_due_at",
        "overdue",
        "result",
        "return_reason",
    )
    readonly_fields = fields
    related = ("department", "assignee", "ticket")
    verbose_name_plural = _("collaboration tasks")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_department_staff(request):
            queryset = for_own_department(request, queryset)
        return queryset

    @admin.display(description=_("overdue"), boolean=True)
    def overdue(self, task):
        return task.is_overdue()


@admin.register(Ticket)
class TicketAdmin(AdminUrlMixin, DepartmentScopedAdminMixin, PhoneSearchMixin, admin.ModelAdmin):
    department_scope = "pk"
    phone_lookup = "customer__phone"
    list_display = (
        "number",
        "subject",
        "customer",
        "channel",
        "category",
        "priority",
        "status",
        "assignee",
        "team",
        "due_at",
        "escalation_level",
    )
    list_filter = ("status", "priority", "channel", CategoryListFilter, "team")
    list_select_related = ("customer", "channel", "category__parent", "assignee", "team")
    search_fields = ("number", "subject", "order_no", "customer__phone")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    # Counting every ticket again next to the filtered count is a second full scan.
    show_full_result_count = False
    autocomplete_fields = ("customer",)
    inlines = (
        CompensationInline,
        CollaborationTaskInline,
        TimelineEventInline,
        ContactInline,
        AttachmentInline,
    )

    add_fieldsets = (
        (None, {"fields": ("customer", "channel", "subject", "body", "order_no", "team")}),
    )
    change_fieldsets = (
        (
            None,
            {"fields": ("number", "status", "customer", "channel", "subject", "body", "order_no")},
        ),
        (
            _("Classification"),
            {"fields": ("category", "amount_level", "impact", "urgency", "priority")},
        ),
        (
            _("Handling"),
            {
                "fields": (
                    "team",
                    "assignee",
                    "promised_followup_at",
                    "escalation_level",
                    "reopen_count",
                    "contact_count",
                    "merged_into",
                )
            },
        ),
        (
            _("Resolution (four elements) and follow-up"),
            {
                "fields": (
                    "resolution_time",
                    "responsible_person",
                    "solution",
                    "evidence_ref",
                    "followup_note",
                ),
            },
        ),
        (
            _("Step timestamps"),
            {
                "classes": ("collapse",),
                "fields": (
                    "created_at",
                    "classified_at",
                    "assigned_at",
                    "first_responded_at",
                    "started_at",
                    "resolved_at",
                    "followed_up_at",
                    "closed_at",
                    "updated_at",
                ),
            },
        ),
        (
            _("SLA deadlines"),
            {
                "classes": ("collapse",),
                "fields": (
                    "first_response_due_at",
                    "resolve_due_at",
                    "close_due_at",
                    "due_at",
                    "version",
                ),
            },
        ),
    )

    def get_queryset(self, request):
        # The change page shows these relations too; one join instead of a query each.
        return (
            super()
            .get_queryset(request)
            .select_related(
                "customer", "channel", "category__parent", "assignee", "team", "merged_into"
            )
        )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.change_fieldsets

    def get_search_fields(self, request):
        if is_department_staff(request):
            # No looking tickets up by a customer's phone number.
            return [f for f in self.search_fields if "phone" not in f]
        return super().get_search_fields(request)

    def get_search_results(self, request, queryset, search_term):
        if is_department_staff(request):
            return admin.ModelAdmin.get_search_results(self, request, queryset, search_term)
        return super().get_search_results(request, queryset, search_term)

    def get_readonly_fields(self, request, obj=None):
        # Nothing on an existing ticket is edited in place: lifecycle data changes only
        # through the transition views, and the received text is part of the record.
        if obj is None:
            return ()
        return helpers.flatten_fieldsets(self.change_fieldsets)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "channel":
            kwargs["queryset"] = Channel.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # tickets are records; duplicates are merged, not deleted

    def save_model(self, request, obj, form, change):
        # Never reached with data to write: the change form has no editable field and
        # additions go through add_view → services.ticket_create. Refuse rather than
        # let a direct save slip past the services.
        if not change:
            raise PermissionDenied

    # --- adding: through the intake service ---

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        fieldsets = self.get_fieldsets(request)
        TicketForm = self.get_form(
            request, None, change=False, fields=helpers.flatten_fieldsets(fieldsets)
        )
        status = 200
        if request.method == "POST":
            form = TicketForm(request.POST, request.FILES)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    ticket = services.ticket_create(
                        customer=data["customer"],
                        channel=data["channel"],
                        subject=data["subject"],
                        body=data["body"],
                        order_no=data.get("order_no") or "",
                        team=data.get("team"),
                        actor=request.user,
                    )
                except ValidationError as exc:
                    add_service_errors(form, exc)
                else:
                    return self._ticket_added(request, ticket)
            status = 400
        else:
            form = TicketForm(initial=self.get_changeform_initial_data(request))
        adminform = helpers.AdminForm(form, list(fieldsets), {}, (), model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Add %s") % self.opts.verbose_name,
            "subtitle": None,
            "adminform": adminform,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + adminform.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            # Saving opens the new ticket, which is where the next step (classify) starts.
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        response = self.render_change_form(request, context, add=True, form_url=form_url)
        response.status_code = status
        return response

    def _ticket_added(self, request, ticket):
        self.log_addition(request, ticket, [{"added": {}}])
        self.message_user(
            request,
            gettext("Ticket %(number)s was received.") % {"number": ticket.number},
            messages.SUCCESS,
        )
        if "_addanother" in request.POST:
            return HttpResponseRedirect(self._admin_url("add"))
        return HttpResponseRedirect(self._admin_url("change", ticket.pk))

    # --- the change page: read-only, with the lifecycle as buttons ---

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if change and obj is not None:
            context.update(
                title=gettext("View %s") % self.opts.verbose_name,
                show_save=False,
                show_save_and_continue=False,
                show_save_and_add_another=False,
                transition_actions=[
                    {
                        "name": name,
                        "label": ACTION_LABELS[name],
                        "url": self._admin_url("transition", obj.pk, name),
                    }
                    for name in self.ticket_actions(request, obj)
                ],
            )
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def ticket_actions(self, request, ticket) -> list[str]:
        """The lifecycle actions this user may run on the ticket now (the buttons)."""
        if not self.has_change_permission(request, ticket):
            return []
        names = selectors.available_actions(request.user, ticket)
        if (
            ticket.is_open
            and ticket.escalation_level < services.MAX_ESCALATION_LEVEL
            and policies.action_refusal(request.user, ticket, "escalate") is None
        ):
            names.append("escalate")
        return names

    def get_urls(self):
        return [
            path(
                "<path:object_id>/transition/<str:name>/",
                self.admin_site.admin_view(self.transition_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_transition",
            ),
            *super().get_urls(),
        ]

    def transition_view(self, request, object_id, name):
        """Render one lifecycle form and run it through its service on POST."""
        form_class = TRANSITION_FORMS.get(name)
        if form_class is None:
            raise Http404(f"No lifecycle action {name!r}")
        ticket = self.get_object(request, unquote(object_id))
        if ticket is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, ticket):
            raise PermissionDenied
        label = ACTION_LABELS[name]

        status = 200
        if request.method == "POST":
            form = form_class(request.POST, request.FILES, ticket=ticket, actor=request.user)
            status = 400
            if form.is_valid():
                try:
                    form.run()
                except ValidationError as exc:
                    add_service_errors(form, exc)
                except PermissionDenied as exc:
                    status = 403
                    self.message_user(
                        request, str(exc) or gettext("You may not do this."), messages.ERROR
                    )
                except services.Conflict as exc:
                    status = 409
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    return self._transition_done(request, ticket, label)
            # Show the refusal next to the ticket as it is now, not as it was loaded.
            ticket = self.get_object(request, unquote(object_id))
        else:
            form = form_class(ticket=ticket, actor=request.user)

        fieldsets = [(None, {"fields": list(form.fields)})]
        adminform = helpers.AdminForm(form, fieldsets, {}, (), model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("%(action)s ticket %(number)s")
            % {"action": label, "number": ticket.number},
            "subtitle": ticket.subject,
            "opts": self.opts,
            "ticket": ticket,
            "action_name": name,
            "action_label": label,
            "action_available": name in self.ticket_actions(request, ticket),
            "adminform": adminform,
            "errors": helpers.AdminErrorList(form, []),
            "media": self.media + adminform.media,
            "change_url": self._admin_url("change", ticket.pk),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/complaints/ticket/transition_form.html", context, status=status
        )

    def _transition_done(self, request, ticket, label):
        ticket.refresh_from_db()
        message = gettext("%(action)s: ticket %(number)s is now %(status)s.") % {
            "action": label,
            "number": ticket.number,
            "status": ticket.get_status_display(),
        }
        self.log_change(request, ticket, message)
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(self._admin_url("change", ticket.pk))


@admin.register(Contact)
class ContactAdmin(HiddenFromDepartmentStaffMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("ticket", "channel", "external_id", "occurred_at", "short_body")
    list_filter = ("channel",)
    list_select_related = ("ticket", "channel")
    search_fields = ("ticket__number", "external_id")
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    @admin.display(description=_("content"))
    def short_body(self, contact):
        return Truncator(contact.body).chars(60)


@admin.register(Attachment)
class AttachmentAdmin(HiddenFromDepartmentStaffMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("original_name", "ticket", "content_type", "size", "uploaded_by", "created_at")
    list_filter = ("content_type",)
    list_select_related = ("ticket", "uploaded_by")
    search_fields = ("ticket__number", "original_name")
    show_full_result_count = False
    fields = ("ticket", "download", "content_type", "size", "uploaded_by", "created_at")
    readonly_fields = fields

    @admin.display(description=_("file"))
    def download(self, attachment):
        return format_html('<a href="{}">{}</a>', attachment.get_absolute_url(), attachment)


@admin.register(TimelineEvent)
class TimelineEventAdmin(DepartmentScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # The audit trail: nobody adds, edits or deletes an event here, superusers included.
    actions = None
    list_display = ("created_at", "ticket", "kind", "actor", "short_message")
    list_filter = ("kind",)
    list_select_related = ("ticket", "actor")
    search_fields = ("ticket__number",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False

    @admin.display(description=_("message"))
    def short_message(self, event):
        return Truncator(event.message).chars(80)

    def scope_for_department(self, request, queryset):
        # As on the ticket page: only the events of their department's tasks.
        return for_own_department(request, queryset, "task__department_id")


@admin.register(TicketSequence)
class TicketSequenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Counters behind ticket numbers: editing one would hand out a number twice.
    list_display = ("day", "last")
    ordering = ("-day",)


# --- compensation -------------------------------------------------------------------


def limits_order_error(limits: dict[int, Decimal]) -> str | None:
    """Why these per-tier limits are inconsistent (a higher tier below a lower one), or None."""
    tiers = sorted(limits)
    for low, high in zip(tiers, tiers[1:], strict=False):
        if limits[low] > limits[high]:
            return gettext(
                "Limits must not decrease from tier 1 to tier 3: %(low)s (%(low_amount)s) "
                "is above %(high)s (%(high_amount)s)."
            ) % {
                "low": Tier(low).label,
                "low_amount": services.yuan(limits[low]),
                "high": Tier(high).label,
                "high_amount": services.yuan(limits[high]),
            }
    return None


class CompensationLimitForm(forms.ModelForm):
    # The changelist's formset checks the order across all rows at once instead.
    check_order = True

    class Meta:
        model = CompensationLimit
        fields = ("tier", "amount")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "tier" in self.fields and not self.instance.pk:
            # Only a missing tier can be added; the three rows are never deleted.
            taken = set(CompensationLimit.objects.values_list("tier", flat=True))
            self.fields["tier"].choices = [
                choice for choice in self.fields["tier"].choices if choice[0] not in taken
            ]

    def clean_amount(self):
        amount = self.cleaned_data.get("amount")
        if amount is not None and amount > services.MAX_COMPENSATION_AMOUNT:
            raise ValidationError(
                _("No single ticket is compensated above %(max)s."),
                params={"max": services.yuan(services.MAX_COMPENSATION_AMOUNT)},
            )
        return amount

    def clean(self):
        cleaned_data = super().clean()
        tier = cleaned_data.get("tier", self.instance.tier)
        amount = cleaned_data.get("amount")
        if self.check_order and tier is not None and amount is not None:
            limits = dict(
                CompensationLimit.objects.exclude(pk=self.instance.pk).values_list("tier", "amount")
            )
            limits[tier] = amount
            error = limits_order_error(limits)
            if error:
                self.add_error("amount", error)
        return cleaned_data


class CompensationLimitChangelistForm(CompensationLimitForm):
    check_order = False


class CompensationLimitFormSet(forms.BaseModelFormSet):
    """The changelist edits all tiers at once: check the new amounts together."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return
        limits = dict(CompensationLimit.objects.values_list("tier", "amount"))
        for form in self.forms:
            if form.instance.pk and form.cleaned_data.get("amount") is not None:
                limits[form.instance.tier] = form.cleaned_data["amount"]
        error = limits_order_error(limits)
        if error:
            raise ValidationError(error)


@admin.register(CompensationLimit)
class CompensationLimitAdmin(admin.ModelAdmin):
    """The authority of each tier on one ticket; services read it on every grant."""

    form = CompensationLimitForm
    list_display = ("tier", "amount", "updated_at")
    list_display_links = ("tier",)
    list_editable = ("amount",)
    actions = None
    ordering = ("tier",)

    def get_readonly_fields(self, request, obj=None):
        return ("tier", "updated_at") if obj else ("updated_at",)

    def get_changelist_form(self, request, **kwargs):
        kwargs.setdefault("form", CompensationLimitChangelistForm)
        return super().get_changelist_form(request, **kwargs)

    def get_changelist_formset(self, request, **kwargs):
        kwargs.setdefault("formset", CompensationLimitFormSet)
        return super().get_changelist_formset(request, **kwargs)

    def has_add_permission(self, request):
        # Only to restore a missing tier: there is exactly one row per tier.
        return super().has_add_permission(request) and CompensationLimit.objects.count() < len(
            Tier.values
        )

    def has_delete_permission(self, request, obj=None):
        return False


# Decisions on a compensation request: (button label, label of its text field or None).
DECISIONS = {
    "approve": (_("Approve"), _("Note (optional)")),
    "reject": (_("Reject"), _("Reason")),
    "withdraw": (_("Withdraw"), None),
}


class CompensationDecisionForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, decision: str, **kwargs):
        super().__init__(*args, **kwargs)
        label = DECISIONS[decision][1]
        if label is None:
            del self.fields["reason"]
        else:
            self.fields["reason"].label = label
            # Required-ness is the service's rule (a rejection needs a reason).


class CompensationStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return CompensationState.choices

    def queryset(self, request, queryset):
        if self.value() in CompensationState.values:
            return queryset.filter(state=self.value())
        return queryset


@admin.register(Compensation)
class CompensationAdmin(
    AdminUrlMixin, HiddenFromDepartmentStaffMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """Money is written by the services only; requests are decided with the buttons."""

    actions = None
    list_display = (
        "created_at",
        "ticket_number",
        "kind",
        "amount",
        "state",
        "requested_by",
        "approver_tier",
        "decided_by",
    )
    list_filter = (CompensationStateFilter, "kind", "approver_tier")
    list_select_related = ("ticket", "requested_by", "decided_by")
    search_fields = ("ticket__number",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    fields = (
        "ticket_number",
        "kind",
        "amount",
        "reason",
        "state",
        "requested_by",
        "approver_tier",
        "created_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "ticket_total",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("ticket", "requested_by", "decided_by")

    @admin.display(description=_("ticket"), ordering="ticket__number")
    def ticket_number(self, compensation):
        return ticket_link(compensation.ticket)

    @admin.display(description=_("paid on the ticket"))
    def ticket_total(self, compensation):
        return services.yuan(services.compensation_total(compensation.ticket))

    def decisions(self, request, compensation) -> list[str]:
        """The buttons this user may press on this compensation now."""
        if compensation.state != CompensationState.REQUESTED:
            return []
        allowed = []
        if policies.decision_refusal(request.user, compensation) is None:
            allowed += ["approve", "reject"]
        if compensation.requested_by_id == request.user.pk or allowed:
            allowed.append("withdraw")
        return allowed

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["decision_actions"] = [
                {
                    "name": name,
                    "label": DECISIONS[name][0],
                    "url": self._admin_url("decide", obj.pk, name),
                }
                for name in self.decisions(request, obj)
            ]
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/<str:decision>/",
                self.admin_site.admin_view(self.decision_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_decide",
            ),
            *super().get_urls(),
        ]

    def decision_view(self, request, object_id, decision):
        """Confirm one decision and run it through its service on POST."""
        if decision not in DECISIONS:
            raise Http404(f"No decision {decision!r}")
        compensation = self.get_object(request, unquote(object_id))
        if compensation is None:
            raise Http404("No such compensation")
        if not self.has_view_permission(request, compensation):
            raise PermissionDenied
        label = DECISIONS[decision][0]
        status = 200
        if request.method == "POST":
            form = CompensationDecisionForm(request.POST, decision=decision)
            status = 400
            if form.is_valid():
                reason = form.cleaned_data.get("reason", "")
                try:
                    if decision == "approve":
                        services.compensation_approve(
                            compensation=compensation.pk, actor=request.user, note=reason
                        )
                    elif decision == "reject":
                        services.compensation_reject(
                            compensation=compensation.pk, actor=request.user, reason=reason
                        )
                    else:
                        services.compensation_cancel(
                            compensation=compensation.pk, actor=request.user
                        )
                except ValidationError as exc:
                    add_service_errors(form, exc)
                    self.message_user(request, " ".join(exc.messages), messages.ERROR)
                except PermissionDenied as exc:
                    status = 403
                    self.message_user(
                        request, str(exc) or gettext("You may not do this."), messages.ERROR
                    )
                except services.Conflict as exc:
                    status = 409
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    return self._decided(request, compensation, label)
            compensation = self.get_object(request, unquote(object_id))
        else:
            form = CompensationDecisionForm(decision=decision)

        fieldsets = [(None, {"fields": list(form.fields)})]
        adminform = helpers.AdminForm(form, fieldsets, {}, (), model_admin=self)
        refusal = None
        if decision not in self.decisions(request, compensation):
            refusal = (
                policies.decision_refusal(request.user, compensation)
                if compensation.state == CompensationState.REQUESTED
                else gettext("This request was already decided: %(state)s.")
                % {"state": compensation.get_state_display()}
            )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("%(action)s: %(amount)s on %(number)s")
            % {
                "action": label,
                "amount": services.yuan(compensation.amount),
                "number": compensation.ticket.number,
            },
            "opts": self.opts,
            "compensation": compensation,
            "ticket_total": services.yuan(services.compensation_total(compensation.ticket)),
            "ticket_url": reverse("admin:complaints_ticket_change", args=[compensation.ticket_id]),
            "decision_name": decision,
            "decision_label": label,
            "refusal": refusal,
            "adminform": adminform,
            "errors": helpers.AdminErrorList(form, []),
            "media": self.media + adminform.media,
            "change_url": self._admin_url("change", compensation.pk),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/complaints/compensation/decision_form.html", context, status=status
        )

    def _decided(self, request, compensation, label):
        compensation.refresh_from_db()
        message = gettext("%(action)s: %(amount)s on %(number)s is now %(state)s.") % {
            "action": label,
            "amount": services.yuan(compensation.amount),
            "number": compensation.ticket.number,
            "state": compensation.get_state_display(),
        }
        self.log_change(request, compensation, message)
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(self._admin_url("change", compensation.pk))


# --- collaboration tasks --------------------------------------------------------------


class OverdueFilter(admin.SimpleListFilter):
    """Active tasks past the deadline that matters now (respond while open, else complete)."""

    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue"))]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        now = timezone.now()
        return queryset.filter(
            Q(state=TaskState.OPEN, respond_due_at__lt=now)
            | Q(state=TaskState.CLAIMED, complete_due_at__lt=now)
        )


@admin.register(CollaborationTask)
class CollaborationTaskAdmin(DepartmentScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Tasks move only through the services (claim, complete, return… on the task board)."""

    actions = None
    list_display = (
        "ticket_number",
        "department",
        "responsibility",
        "state",
        "assignee",
        "respond_due_at",
        "complete_due_at",
        "overdue",
    )
    # The ticket column is a link to the ticket itself; the task opens from its line.
    list_display_links = ("responsibility",)
    list_filter = ("department", "state", OverdueFilter)
    list_select_related = ("ticket", "department", "assignee")
    search_fields = ("ticket__number", "responsibility")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    fields = (
        "ticket_number",
        "department",
        "responsibility",
        "instruction",
        "state",
        "created_by",
        "created_at",
        "assignee",
        "claimed_at",
        "respond_due_at",
        "complete_due_at",
        "overdue",
        "completed_at",
        "result",
        "return_reason",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("ticket", "department", "assignee", "created_by")
        )

    def scope_for_department(self, request, queryset):
        # As on the task board: their own department's tasks only.
        return for_own_department(request, queryset)

    @admin.display(description=_("ticket"), ordering="ticket__number")
    def ticket_number(self, task):
        return ticket_link(task.ticket)

    @admin.display(description=_("overdue"), boolean=True)
    def overdue(self, task):
        return task.is_overdue()


# --- notifications --------------------------------------------------------------------


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    actions = None
    list_display = ("created_at", "recipient", "ticket", "message", "read_at")
    list_filter = (("read_at", admin.EmptyFieldListFilter),)
    list_select_related = ("recipient", "ticket")
    search_fields = ("recipient__username", "ticket__number", "message")
    ordering = ("-created_at", "-id")
    show_full_result_count = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_department_staff(request):
            queryset = queryset.filter(recipient=request.user)
        return queryset

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None and is_department_staff(request):
            raise Http404("No such notification")
        return obj
