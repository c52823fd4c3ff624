from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import services
from .models import Channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "is_active", "key", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name", "key")
    # The secret is never a field here: it is shown once, in a message, when it is set.
    fields = ("code", "name", "kind", "is_active", "key", "secret_rotated_at", "created_at")
    readonly_fields = ("key", "secret_rotated_at", "created_at")
    actions = ("rotate_secret",)

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
