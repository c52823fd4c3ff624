"""Cache invalidation only: a change to what the rules are made of makes every process
reload them (triage.engine.cached_rules_and_terms). No business rule lives here."""

from django.db.models.signals import m2m_changed, post_delete, post_save

from . import engine


def _invalidate(sender, **kwargs):
    engine.invalidate()


def connect() -> None:
    from complaints.models import Category
    from sla.models import RiskSettings

    from .models import RoutingRule, SkillGroup, UrgencyTerm

    for model in (RoutingRule, SkillGroup, UrgencyTerm, Category, RiskSettings):
        post_save.connect(_invalidate, sender=model, dispatch_uid=f"triage-{model.__name__}-save")
        post_delete.connect(
            _invalidate, sender=model, dispatch_uid=f"triage-{model.__name__}-delete"
        )
    for through in (RoutingRule.channels.through, RoutingRule.categories.through):
        m2m_changed.connect(_invalidate, sender=through, dispatch_uid=f"triage-{through.__name__}")
