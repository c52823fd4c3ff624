"""Cache invalidation only: a change to what the rules are made of makes every process
reload them (triage.engine.cached_rules_and_terms). No business rule lives here."""

from . import engine


def connect() -> None:
    from complaints.models import Category
    from sla.models import RiskSettings

    from .models import RoutingRule, SkillGroup, UrgencyTerm

    engine.rules_cache.watch(
        RoutingRule,
        SkillGroup,
        UrgencyTerm,
        Category,
        RiskSettings,
        m2m=(RoutingRule.channels.through, RoutingRule.categories.through),
    )
