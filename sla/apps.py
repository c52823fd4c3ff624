from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = _("SLA")

    def ready(self):
        from . import risks, services
        from .models import RiskSettings, SlaPolicy, SlaPolicyVersion

        services.policies_cache.watch(SlaPolicy, SlaPolicyVersion)
        risks.settings_cache.watch(RiskSettings)
