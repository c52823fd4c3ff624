from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from complaints.admin import HiddenFromDepartmentStaffMixin

from . import outbox, services
from .models import AttachmentLink, Channel, IdentityConflict, OutboundMessage, RegisterImport


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "is_active", "delivery", "key", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name", "key")
    # The secret is never a field here: it is shown once, in a message, when it is set.
    fields = (
        "code",
        "name",
        "kind",
        "is_active",
        "adapter",
        "callback_url",
        "key",
        "secret_rotated_at",
        "created_at",
    )
    readonly_fields = ("key", "secret_rotated_at", "created_at")
    actions = ("rotate_secret",)

    @admin.display(description=_("delivery"))
    def delivery(self, obj):
        return obj.get_adapter_display() if obj.adapter else f"({obj.delivery_adapter})"

    def get_readonly_fields(self, request, obj=None):
        # The code names the channel in the intake API and on every ticket's timeline;
        # a different code is a different channel. Deactivate a channel instead.
        if obj is not None:
            return ("code", *self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            self._show_secret(request, obj.code, obj.key, obj.secret)

    @admin.action(description=_("Rotate the secret (shown once)"), permissions=["change"])
    def rotate_secret(self, request, queryset):
        for channel in queryset:
            credentials = services.channel_rotate_secret(channel=channel)
            self._show_secret(request, credentials.code, credentials.key, credentials.secret)

    def _show_secret(self, request, code, key, secret):
        self.message_user(
            request,
            gettext(
                "Channel %(code)s: key %(key)s, secret %(secret)s. Copy the secret now: "
                "it will not be shown again."
            )
            % {"code": code, "key": key, "secret": secret},
            messages.WARNING,
        )


class RecordAdmin(admin.ModelAdmin):
    """View-only: these rows are written by the intake services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IdentityConflict)
class IdentityConflictAdmin(RecordAdmin):
    list_display = ("created_at", "kind", "external_key", "customer", "other_customer", "channel")
    list_filter = ("kind", "channel")
    list_select_related = ("customer", "other_customer", "channel")
    search_fields = ("external_key",)


@admin.register(AttachmentLink)
class AttachmentLinkAdmin(RecordAdmin):
    list_display = ("created_at", "ticket", "url")
    list_select_related = ("ticket",)
    search_fields = ("ticket__number", "url")


@admin.register(RegisterImport)
class RegisterImportAdmin(RecordAdmin):
    list_display = (
        "created_at",
        "uploaded_by",
        "file_name",
        "state",
        "row_count",
        "error_count",
        "imported_rows",
        "new_tickets",
        "joined_tickets",
    )
    list_filter = ("state",)
    list_select_related = ("uploaded_by",)


@admin.register(OutboundMessage)
class OutboundMessageAdmin(HiddenFromDepartmentStaffMixin, RecordAdmin):
    """The outbox: every message owed to a customer; dead letters are retried from here."""

    list_display = (
        "created_at",
        "ticket",
        "kind",
        "channel",
        "adapter",
        "recipient",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
    )
    list_filter = ("state", "kind", "adapter", "channel")
    list_select_related = ("ticket", "channel")
    search_fields = ("ticket__number", "recipient", "=message_id")
    date_hierarchy = "created_at"
    actions = ("retry_now",)

    def has_retry_permission(self, request):
        return request.user.is_active and request.user.is_staff

    @admin.action(description=_("Retry now"), permissions=["retry"])
    def retry_now(self, request, queryset):
        done = 0
        for message in queryset:
            try:
                outbox.message_retry(message=message, actor=request.user)
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                self.message_user(
                    request,
                    f"{message.ticket.number} {message.get_kind_display()}: "
                    + " ".join(getattr(exc, "messages", [str(exc)])),
                    messages.ERROR,
                )
        if done:
            self.message_user(
                request,
                gettext("%(n)d message(s) queued for delivery again.") % {"n": done},
                messages.SUCCESS,
            )
