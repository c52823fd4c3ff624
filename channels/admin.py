from django.contrib import admin

from .models import Channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "is_active", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")
    readonly_fields = ("created_at",)

    def get_readonly_fields(self, request, obj=None):
        # The code names the channel in the intake API and on every ticket's timeline;
        # a different code is a different channel. Deactivate a channel instead.
        if obj is not None:
            return ("code", *self.readonly_fields)
        return self.readonly_fields
