from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComplaintsConfig(AppConfig):
    name = "complaints"
    verbose_name = _("Complaints")

    def ready(self):
        from . import selectors
        from .models import Category, CompensationLimit, Department

        # Reference tables cached for the ticket page and the queue: reloaded after a save
        # (channels: channels.selectors.channels_cache).
        selectors.compensation_limits_cache.watch(CompensationLimit)
        selectors.departments_cache.watch(Department)
        selectors.categories_cache.watch(Category)
