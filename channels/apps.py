from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    # A local app: never install the PyPI package "channels" (Django Channels).
    name = "channels"
    label = "channels"
    verbose_name = _("Channels")
