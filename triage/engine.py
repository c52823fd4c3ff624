"""Which routing rules and urgency words fire for a complaint (reads only, no writes).

Rules and words are loaded in a few queries whatever their number (`load_rules`: three;
`load_terms`: two) and matched in memory. Intake does not even pay those: each process
keeps the compiled rules and words (`cached_rules_and_terms`, a `ReferenceCache`) until a
shared generation key in the cache changes — saving a rule, skill group, urgency word, category or the SLA
risk settings bumps it after commit (triage.signals) — or for a minute at most. Keywords are matched on the same jieba words the ticket search indexes
(`kb.search.index_tokens`, stored on the ticket as `search_tokens`), so "书" does not
fire on "说明书" and traditional characters match their simplified keyword.
"""

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone

from channels.models import Channel
from complaints.models import Category, Level
from complaints.refcache import ReferenceCache
from kb.search import index_tokens, normalize, query_words

from .models import RoutingRule, UrgencyReason, UrgencyTerm, group_matches


def split_words(raw: str) -> list[str]:
    raw = (raw or "").replace("，", "\n").replace(",", "\n").replace("、", "\n")
    return [w.strip() for w in raw.splitlines() if w.strip()]


@dataclass(frozen=True)
class Facts:
    """What the rules look at, for a ticket or for a pasted text (dry run)."""

    text: str
    tokens: frozenset[str]
    channel_id: int | None = None
    category_ids: frozenset[int] = frozenset()  # the category and its parent
    vip_level: int = 0
    order_amount: Decimal | None = None
    hour: int = 0  # local hour 0..23

    @classmethod
    def for_text(cls, text: str, **kwargs) -> "Facts":
        return cls(text=text, tokens=frozenset(index_tokens(text)), **kwargs)

    @classmethod
    def for_ticket(cls, ticket, *, order_amount=None, at: dt.datetime | None = None) -> "Facts":
        tokens = ticket.search_tokens.split() if ticket.search_tokens else None
        if tokens is None:
            tokens = index_tokens(f"{ticket.subject}\n{ticket.body}")
        category_ids = set()
        if ticket.category_id:
            category_ids.add(ticket.category_id)
            if ticket.category.parent_id:
                category_ids.add(ticket.category.parent_id)
        return cls(
            text=f"{ticket.subject}\n{ticket.body}",
            tokens=frozenset(tokens),
            channel_id=ticket.channel_id,
            category_ids=frozenset(category_ids),
            vip_level=ticket.customer.vip_level,
            order_amount=order_amount,
            hour=timezone.localtime(at or ticket.created_at).hour,
        )


@dataclass
class CompiledRule:
    rule: RoutingRule
    channel_ids: frozenset[int]
    category_ids: frozenset[int]
    keywords: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    def matched_keyword(self, facts: Facts) -> str | None:
        for keyword, words in self.keywords:
            if words and words <= facts.tokens:
                return keyword
        return None

    def matches(self, facts: Facts) -> tuple[bool, str]:
        """Whether every condition the rule has holds, and the keyword that matched."""
        rule = self.rule
        if self.channel_ids and facts.channel_id not in self.channel_ids:
            return False, ""
        if self.category_ids and not (self.category_ids & facts.category_ids):
            return False, ""
        if rule.vip_min_level is not None and facts.vip_level < rule.vip_min_level:
            return False, ""
        if rule.amount_min is not None or rule.amount_max is not None:
            amount = facts.order_amount
            if amount is None:
                return False, ""
            if rule.amount_min is not None and amount < rule.amount_min:
                return False, ""
            if rule.amount_max is not None and amount > rule.amount_max:
                return False, ""
        if not _in_hours(facts.hour, rule.hour_from, rule.hour_to):
            return False, ""
        keyword = ""
        if self.keywords:
            keyword = self.matched_keyword(facts)
            if keyword is None:
                return False, ""
        return True, keyword


def _in_hours(hour: int, start: int | None, end: int | None) -> bool:
    if start is None and end is None:
        return True
    start = 0 if start is None else start
    end = 24 if end is None else end
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end  # spans midnight, e.g. 22 to 6


def load_rules() -> list[CompiledRule]:
    """Active rules in order, with their channels and categories (three queries)."""
    rules = (
        RoutingRule.objects.filter(is_active=True)
        .select_related("set_category__parent", "assign_team", "assign_skill_group", "add_watcher")
        .prefetch_related(
            Prefetch("channels", queryset=Channel.objects.only("id")),
            Prefetch("categories", queryset=Category.objects.only("id")),
        )
        .order_by("position", "id")
    )
    compiled = []
    for rule in rules:
        keywords = [(k, frozenset(query_words(k))) for k in split_words(rule.keywords)]
        compiled.append(
            CompiledRule(
                rule=rule,
                channel_ids=frozenset(c.pk for c in rule.channels.all()),
                category_ids=frozenset(c.pk for c in rule.categories.all()),
                keywords=keywords,
            )
        )
    return compiled


@dataclass(frozen=True)
class Match:
    rule: RoutingRule
    keyword: str


def matching_rules(rules: list[CompiledRule], facts: Facts) -> list[Match]:
    """Rules that fire, in order; a matching rule with "stop after a match" ends the list."""
    fired = []
    for compiled in rules:
        ok, keyword = compiled.matches(facts)
        if not ok:
            continue
        fired.append(Match(rule=compiled.rule, keyword=keyword))
        if compiled.rule.stop_processing:
            break
    return fired


# --- urgency -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    term: str
    reason: str
    level: int
    pattern: re.Pattern | None = None

    def found_in(self, text: str) -> str | None:
        if self.pattern is not None:
            match = self.pattern.search(text)
            return match.group(0) if match else None
        return self.term if self.term in text else None


def compile_terms(rows, media_words: list[str]) -> list[Term]:
    terms = []
    for row in rows:
        if row.is_pattern:
            try:
                pattern = re.compile(row.term)
            except re.error:
                continue  # the admin form refuses bad patterns; skip any that slipped in
            terms.append(Term(row.term, row.reason, row.level, pattern))
        else:
            terms.append(Term(normalize(row.term), row.reason, row.level))
    known = {t.term for t in terms}
    # The SLA's media/regulator words (risk signal 5) are kept in one place, sla's
    # RiskSettings; here they only add urgency, the risk alert stays sla's job.
    terms.extend(
        Term(normalize(word), UrgencyReason.MEDIA, Level.HIGH)
        for word in media_words
        if normalize(word) not in known
    )
    return terms


def load_terms() -> list[Term]:
    """Active urgency words plus the SLA media words (two queries)."""
    from sla.models import RiskSettings

    rows = UrgencyTerm.objects.filter(is_active=True).order_by("reason", "term")
    return compile_terms(rows, RiskSettings.load().words())


@dataclass(frozen=True)
class Urgency:
    level: int
    matches: list[dict]  # [{"reason": "safety", "term": "起火"}]

    def explain(self) -> str:
        return "; ".join(f"{label} — {'、'.join(terms)}" for label, terms in self.reasons())

    def reasons(self) -> list[tuple[str, list[str]]]:
        return group_matches(self.matches)


def detect_urgency(terms: list[Term], text: str) -> Urgency | None:
    """The highest level any term raises and every term that matched, or None."""
    normalized = normalize(text)
    found_at, level, seen = [], 0, set()
    for term in terms:
        haystack = normalized if term.pattern is None else text
        found = term.found_in(haystack)
        if found is None or (term.reason, found) in seen:
            continue
        seen.add((term.reason, found))
        found_at.append((haystack.find(found), {"reason": term.reason, "term": found}))
        level = max(level, term.level)
    if not found_at:
        return None
    # In the order the customer wrote them.
    matches = [match for _position, match in sorted(found_at, key=lambda p: p[0])]
    return Urgency(level=level, matches=matches)


# --- the per-process cache used by intake ---------------------------------------------------


def _load_rules_and_terms() -> tuple[list[CompiledRule], list[Term]]:
    return load_rules(), load_terms()


# Saving a rule, skill group, urgency word, category or the SLA risk settings
# invalidates it (triage.signals).
rules_cache = ReferenceCache("triage-rules", _load_rules_and_terms, max_age=60)


def invalidate() -> None:
    rules_cache.invalidate()


def cached_rules_and_terms() -> tuple[list[CompiledRule], list[Term]]:
    """The compiled rules and urgency words: no query while they are fresh."""
    return rules_cache.get()
