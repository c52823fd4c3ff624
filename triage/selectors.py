"""Reads of smart triage: the dry run, the ticket panel and the suggestion report."""

from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints.models import Impact, Level, Priority, Status

from . import classifier, engine
from .models import AgentAvailability, CategorySuggestion, RoutingRule, SuggestionOutcome


def rule_actions(rule: RoutingRule) -> list[str]:
    """What a rule does, in words (dry run and admin list)."""
    actions = []
    if rule.set_category_id:
        actions.append(_("category %(name)s") % {"name": rule.set_category.full_name})
    if rule.set_amount_level:
        actions.append(f"{_('amount involved')} {Level(rule.set_amount_level).label}")
    if rule.set_impact:
        actions.append(f"{_('impact')} {Impact(rule.set_impact).label}")
    if rule.set_urgency:
        actions.append(f"{_('urgency')} {Level(rule.set_urgency).label}")
    if rule.set_priority:
        actions.append(_("priority %(p)s") % {"p": Priority(rule.set_priority).label})
    if rule.assign_team_id:
        actions.append(_("team %(team)s") % {"team": rule.assign_team.name})
    if rule.assign_skill_group_id:
        actions.append(_("assign within %(group)s") % {"group": rule.assign_skill_group.name})
    if rule.add_watcher_id:
        user = rule.add_watcher
        actions.append(_("watcher %(user)s") % {"user": user.get_full_name() or user.username})
    if rule.raise_risk:
        actions.append(_("risk alert: %(kind)s") % {"kind": rule.get_raise_risk_display()})
    return actions


def dry_run(*, text: str, channel=None, category=None, vip_level=0, order_amount=None, hour=None):
    """Which rules would fire for a pasted complaint, the urgency, and the suggestion."""
    category_ids = set()
    if category is not None:
        category_ids.add(category.pk)
        if category.parent_id:
            category_ids.add(category.parent_id)
    facts = engine.Facts.for_text(
        text,
        channel_id=channel.pk if channel else None,
        category_ids=frozenset(category_ids),
        vip_level=vip_level or 0,
        order_amount=order_amount,
        hour=timezone.localtime().hour if hour is None else hour,
    )
    rules = engine.load_rules()
    fired = engine.matching_rules(rules, facts)
    fired_ids = {m.rule.pk for m in fired}
    stop = next((m.rule.pk for m in fired if m.rule.stop_processing), None)
    rows = []
    for compiled in rules:
        rule = compiled.rule
        ok, keyword = compiled.matches(facts)
        rows.append(
            {
                "rule": rule,
                "fires": rule.pk in fired_ids,
                "matches": ok,
                "keyword": keyword,
                "actions": rule_actions(rule),
                "stops": rule.pk == stop,
            }
        )
    prediction = classifier.predict(classifier.tokens_of(text))
    return {
        "rows": rows,
        "fired": [r for r in rows if r["fires"]],
        "urgency": engine.detect_urgency(engine.load_terms(), text),
        "prediction": prediction,
        "tokens": sorted(facts.tokens),
    }


def suggestion_stats() -> dict:
    """How agents decided the suggestions: accepted with one click, classified the same
    by hand, or overridden (including decisions not yet recorded by the nightly run)."""
    classified = Q(ticket__category__isnull=False) & ~Q(ticket__status=Status.RECEIVED)
    shown = Q(outcome=SuggestionOutcome.SHOWN)
    same = Q(ticket__category_id=F("category_id"))
    counts = CategorySuggestion.objects.aggregate(
        total=Count("id"),
        accepted=Count("id", filter=Q(outcome=SuggestionOutcome.ACCEPTED)),
        agreed=Count(
            "id", filter=Q(outcome=SuggestionOutcome.AGREED) | (shown & classified & same)
        ),
        overridden=Count(
            "id", filter=Q(outcome=SuggestionOutcome.OVERRIDDEN) | (shown & classified & ~same)
        ),
    )
    decided = counts["accepted"] + counts["agreed"] + counts["overridden"]
    counts["pending"] = counts["total"] - decided
    counts["decided"] = decided
    counts["accept_rate"] = (counts["accepted"] + counts["agreed"]) / decided if decided else None
    counts["override_rate"] = counts["overridden"] / decided if decided else None
    return counts


def suggestion_stats_by_agent() -> list[dict]:
    """Recorded decisions per agent (one-click accepts at once; hand classifications
    from the nightly run), most decisions first."""
    rows = (
        CategorySuggestion.objects.filter(decided_by__isnull=False)
        .values("decided_by__username", "decided_by__first_name")
        .annotate(
            accepted=Count("id", filter=Q(outcome=SuggestionOutcome.ACCEPTED)),
            agreed=Count("id", filter=Q(outcome=SuggestionOutcome.AGREED)),
            overridden=Count("id", filter=Q(outcome=SuggestionOutcome.OVERRIDDEN)),
            decided=Count("id"),
        )
        .order_by("-decided", "decided_by__username")[:50]
    )
    result = []
    for row in rows:
        kept = row["accepted"] + row["agreed"]
        result.append(
            {
                "name": row["decided_by__first_name"] or row["decided_by__username"],
                **{k: row[k] for k in ("accepted", "agreed", "overridden", "decided")},
                "accept_rate": kept / row["decided"],
            }
        )
    return result


def availability_of(user) -> AgentAvailability | None:
    return AgentAvailability.objects.filter(user=user).first()
