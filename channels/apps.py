from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    # A local app: never install the PyPI package "channels" (Django Channels).
    name = "channels"
    label = "channels"
    verbose_name = _("Channels")

    def ready(self):
        from . import selectors
        from .models import Channel

        selectors.channels_cache.watch(Channel)
