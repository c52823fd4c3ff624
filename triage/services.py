"""Writes of smart triage: apply routing rules and urgency words to a ticket (at intake and
on demand), accept a category suggestion, set an agent's availability, train the model.

Each application lands on the ticket's timeline in the same transaction ("Rule “安全
事件” set priority P1 critical"). Rules set category and grading only on tickets not yet
classified (afterwards classification is the agents' call), and assign only unassigned
tickets. When the rules leave a ticket fully graded (category and the three axes) it is
classified; when a rule names a skill group, an on-duty member is picked
(`triage.assignment`) and the ticket assigned, as the assign service would: the
ASSIGNED timeline event is what the SLA's 推诿 (passed around) signal counts.
"""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from complaints import policies
from complaints import services as complaint_services
from complaints.models import EventKind, Level, Priority, Status, Ticket, TimelineEvent
from sla import risks
from sla import services as sla_services
from sla.models import RiskAlert

from . import classifier, engine
from .assignment import pick_agent
from .models import (
    AgentAvailability,
    CategorySuggestion,
    IntakeFacts,
    SuggestionOutcome,
    TicketUrgency,
    TicketWatcher,
)


@dataclass
class TriageReport:
    """What one application did: a line per fired rule, the urgency, the pick."""

    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    urgency: engine.Urgency | None = None
    classified: bool = False
    assignee: object | None = None

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.urgency or self.classified or self.assignee)


def parse_amount(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({"order_amount": [_("Enter an amount in CNY.")]}) from exc
    if amount < 0 or amount > Decimal("100000000"):
        raise ValidationError({"order_amount": [_("Enter an amount in CNY.")]})
    return amount


# --- applying rules --------------------------------------------------------------------------


def triage_at_intake(ticket: Ticket, *, order_amount=None) -> TriageReport:
    """Called by the intake (inside its transaction) for every new ticket."""
    if order_amount is not None:
        IntakeFacts.objects.create(ticket=ticket, order_amount=order_amount)
    facts = engine.Facts.for_ticket(ticket, order_amount=order_amount)
    rules, terms = engine.cached_rules_and_terms()  # no query while fresh: intake is hot
    return _apply(ticket, facts, actor=None, rules=rules, terms=terms)


@transaction.atomic
def triage_apply(*, ticket: Ticket | str, actor) -> TriageReport:
    """The ticket page's "apply routing rules" button: the same rules, now."""
    ticket = complaint_services._lock(ticket)
    refusal = policies.action_refusal(actor, ticket, "classify")
    if refusal:
        raise PermissionDenied(refusal)
    if not ticket.is_open:
        raise complaint_services.Conflict(_("Rules apply only to open tickets."))
    amount = IntakeFacts.objects.filter(ticket=ticket).values_list("order_amount", flat=True)
    facts = engine.Facts.for_ticket(ticket, order_amount=amount.first())
    report = _apply(
        ticket, facts, actor=actor, rules=engine.load_rules(), terms=engine.load_terms()
    )
    if not report.changed:
        complaint_services._record(
            ticket, actor, EventKind.NOTE, _("Routing rules applied: nothing to change.")
        )
    return report


def _apply(ticket: Ticket, facts, *, actor, rules, terms) -> TriageReport:
    report = TriageReport()
    unclassified = ticket.status == Status.RECEIVED
    before = {"priority": ticket.priority, "category": ticket.category_id}
    explicit_priority = None
    skill_group = None

    urgency = engine.detect_urgency(terms, facts.text)
    if urgency is not None and _urgency_is_new(ticket, urgency):
        report.urgency = urgency
        _record_urgency(ticket, urgency, actor, unclassified)

    for match in engine.matching_rules(rules, facts):
        rule = match.rule
        lines, data = [], {"rule": rule.name}
        if match.keyword:
            data["keyword"] = match.keyword
        if unclassified:
            category = rule.set_category
            if category is not None and category.pk != ticket.category_id:
                ticket.category = category
                lines.append(_("category %(name)s") % {"name": category.full_name})
                data["category"] = category.full_name
            for attr, label in (
                ("amount_level", _("amount involved")),
                ("impact", _("impact")),
                ("urgency", _("urgency")),
            ):
                value = getattr(rule, f"set_{attr}")
                if value is not None and value != getattr(ticket, attr):
                    setattr(ticket, attr, value)
                    lines.append(
                        f"{label} {ticket._get_FIELD_display(Ticket._meta.get_field(attr))}"
                    )
                    data[attr] = value
            if rule.set_priority is not None:
                explicit_priority = min(explicit_priority or 9, rule.set_priority)
                if rule.set_priority != ticket.priority:
                    ticket.priority = rule.set_priority
                    lines.append(_("priority %(p)s") % {"p": Priority(rule.set_priority).label})
                    data["priority"] = rule.set_priority
        elif rule.set_category or rule.set_priority or rule.set_urgency:
            report.skipped.append(
                _("%(rule)s: already classified, category and grading left as they are.")
                % {"rule": rule.name}
            )
        if ticket.assignee_id is None:
            team = rule.assign_team or (rule.assign_skill_group and rule.assign_skill_group.team)
            if team is not None and team.pk != ticket.team_id:
                ticket.team = team
                lines.append(_("team %(team)s") % {"team": team.name})
                data["team"] = team.name
            if rule.assign_skill_group is not None:
                skill_group = rule.assign_skill_group
        if rule.add_watcher is not None:
            _watcher, created = TicketWatcher.objects.get_or_create(
                ticket=ticket, user=rule.add_watcher, defaults={"rule": rule}
            )
            if created:
                name = rule.add_watcher.get_full_name() or rule.add_watcher.get_username()
                lines.append(_("watcher %(user)s") % {"user": name})
                data["watcher"] = rule.add_watcher.get_username()
                complaint_services._notify(
                    [rule.add_watcher],
                    ticket=ticket,
                    message=_("%(number)s: you were added as a watcher by rule %(rule)s.")
                    % {"number": ticket.number, "rule": rule.name},
                    url=complaint_services._ticket_url(ticket),
                )
        # Each kind fires once per ticket (sla.risks): say so only when it is new.
        if (
            rule.raise_risk
            and not RiskAlert.objects.filter(ticket=ticket, kind=rule.raise_risk).exists()
        ):
            risks.raise_alert(
                ticket,
                rule.raise_risk,
                rule.risk_message or _("Routing rule %(rule)s.") % {"rule": rule.name},
            )
            lines.append(_("risk alert"))
            data["risk"] = rule.raise_risk
        if lines:
            message = _("Rule “%(rule)s” set %(changes)s.") % {
                "rule": rule.name,
                "changes": ", ".join(str(line) for line in lines),
            }
            if match.keyword:
                message += " " + _("(matched %(word)s)") % {"word": match.keyword}
            report.applied.append(message)
            complaint_services._record(ticket, actor, EventKind.NOTE, message, after=data)

    if unclassified and not ticket.missing_classification():
        graded = complaint_services.grade_priority(
            amount_level=ticket.amount_level, impact=ticket.impact, urgency=ticket.urgency
        )
        ticket.priority = min(graded, explicit_priority or graded)
        ticket.classify()
        ticket.classified_at = timezone.now()
        sla_services.on_ticket_classified(ticket)  # SLA hook: policy, risk signals
        report.classified = True
    elif ticket.priority != before["priority"] or ticket.category_id != before["category"]:
        sla_services.ticket_retarget_clocks(ticket)

    if skill_group is not None and ticket.assignee_id is None:
        if ticket.status == Status.CLASSIFIED:
            pick = pick_agent(skill_group)
            if pick.user is not None:
                ticket.assignee = pick.user
                ticket.assign()
                ticket.assigned_at = timezone.now()
                report.assignee = pick.user
            else:
                report.skipped.append(
                    _("%(group)s: nobody free to take the ticket (%(why)s).")
                    % {"group": skill_group.name, "why": pick.reason}
                )
        else:
            report.skipped.append(
                _(
                    "%(group)s: the ticket is assigned once it is classified; apply the rules again then."
                )
                % {"group": skill_group.name}
            )

    if report.changed:
        complaint_services._save(ticket)
    if report.classified:
        complaint_services._record(
            ticket,
            actor,
            EventKind.CLASSIFIED,
            _("%(category)s, priority %(priority)s (routing rules)")
            % {"category": ticket.category.full_name, "priority": ticket.get_priority_display()},
            after={"category": ticket.category.full_name, "priority": ticket.priority},
        )
    if report.assignee is not None:
        user = report.assignee
        complaint_services._record(
            ticket,
            actor,
            EventKind.ASSIGNED,
            _("Assigned to %(user)s by skill group %(group)s")
            % {"user": user.get_full_name() or user.get_username(), "group": skill_group.name},
            after={"assignee": user.get_username(), "team": skill_group.team.name},
        )
        complaint_services._notify(
            [user],
            ticket=ticket,
            message=_("%(number)s was assigned to you (%(group)s).")
            % {"number": ticket.number, "group": skill_group.name},
            url=complaint_services._ticket_url(ticket),
        )
    for line in report.skipped:
        complaint_services._record(ticket, actor, EventKind.NOTE, line)
    return report


def _urgency_is_new(ticket: Ticket, urgency: engine.Urgency) -> bool:
    """Whether the words found differ from the last finding (applying again adds no note)."""
    known = TicketUrgency.objects.filter(ticket=ticket).values_list("matches", flat=True).first()
    return known != urgency.matches


def _record_urgency(ticket: Ticket, urgency: engine.Urgency, actor, unclassified: bool) -> None:
    TicketUrgency.objects.update_or_create(
        ticket=ticket,
        defaults={
            "level": urgency.level,
            "matches": urgency.matches,
            "detected_at": timezone.now(),
        },
    )
    data = {"matched": urgency.explain()}
    if unclassified and (ticket.urgency or 0) < urgency.level:
        ticket.urgency = urgency.level
        data["urgency"] = urgency.level
        if urgency.level == Level.HIGH and ticket.priority != Priority.P1:
            ticket.priority = Priority.P1  # as classification grades high urgency
            data["priority"] = Priority.P1
    complaint_services._record(
        ticket,
        actor,
        EventKind.NOTE,
        _("Urgent: %(why)s") % {"why": urgency.explain()},
        after=data,
    )


# --- the learned suggestion --------------------------------------------------------------------


def suggestion_show(*, ticket: Ticket, user) -> CategorySuggestion | None:
    """The ticket's suggestion, made (and recorded as shown) the first time it is shown.

    Only tickets still to be classified get one: afterwards the agents have decided.
    """
    existing = (
        CategorySuggestion.objects.select_related("category__parent").filter(ticket=ticket).first()
    )
    if existing is not None or ticket.status != Status.RECEIVED:
        return existing
    tokens = ticket.search_tokens.strip() or classifier.tokens_of(
        f"{ticket.subject}\n{ticket.body}"
    )
    prediction = classifier.predict(tokens)
    if prediction is None:
        return None
    suggestion, _created = CategorySuggestion.objects.get_or_create(
        ticket=ticket,
        defaults={
            "model_id": prediction.model_id,
            "category": prediction.category,
            "confidence": round(prediction.confidence, 4),
            "shown_to": user if user.is_authenticated else None,
        },
    )
    return suggestion


@transaction.atomic
def suggestion_accept(
    *,
    ticket: Ticket | str,
    actor,
    amount_level: int | None,
    impact: int | None,
    urgency: int | None,
    expected_version: int | None = None,
) -> Ticket:
    """One-click accept: the normal classify service with the suggested category."""
    number = ticket.number if isinstance(ticket, Ticket) else ticket
    suggestion = (
        CategorySuggestion.objects.select_for_update(of=("self",))
        .select_related("category__parent")
        .filter(ticket__number=number)
        .first()
    )
    if suggestion is None:
        raise ValidationError(_("There is no suggestion for this ticket."))
    if suggestion.outcome != SuggestionOutcome.SHOWN:
        raise complaint_services.Conflict(_("This suggestion was already decided."))
    classified = complaint_services.ticket_classify(
        ticket=number,
        actor=actor,
        category=suggestion.category,
        amount_level=amount_level,
        impact=impact,
        urgency=urgency,
        expected_version=expected_version,
    )
    suggestion.outcome = SuggestionOutcome.ACCEPTED
    suggestion.final_category = suggestion.category
    suggestion.decided_by = actor
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["outcome", "final_category", "decided_by", "decided_at"])
    return classified


def suggestion_outcomes_refresh() -> dict[str, int]:
    """Close the books on suggestions whose ticket was classified by hand meanwhile:
    the same category (agreed) or another (overridden), and by whom (the actor of the
    ticket's latest classification). Safe to repeat: decided rows are left alone."""
    latest_classifier = (
        TimelineEvent.objects.filter(ticket_id=OuterRef("ticket_id"), kind=EventKind.CLASSIFIED)
        .order_by("-created_at", "-id")
        .values("actor_id")[:1]
    )
    pending = (
        CategorySuggestion.objects.filter(
            outcome=SuggestionOutcome.SHOWN, ticket__category__isnull=False
        )
        .exclude(ticket__status=Status.RECEIVED)
        .annotate(classified_by=Subquery(latest_classifier))
    )
    now = timezone.now()
    counts = {"agreed": 0, "overridden": 0}
    for pk, suggested, final, actor_id in pending.values_list(
        "pk", "category_id", "ticket__category_id", "classified_by"
    ):
        outcome = SuggestionOutcome.AGREED if suggested == final else SuggestionOutcome.OVERRIDDEN
        CategorySuggestion.objects.filter(pk=pk, outcome=SuggestionOutcome.SHOWN).update(
            outcome=outcome, decided_at=now, final_category_id=final, decided_by_id=actor_id
        )
        counts[outcome] += 1
    return counts


def train() -> classifier.TrainingResult:
    """Retrain the category model on resolved tickets (the django-q2 schedule and
    `manage.py triage_train`), after recording how the last suggestions were decided."""
    suggestion_outcomes_refresh()
    return classifier.train_and_store()


# --- availability ---------------------------------------------------------------------------


@transaction.atomic
def availability_set(*, user, status: str) -> AgentAvailability:
    if status not in AgentAvailability.Status.values:
        raise ValidationError({"status": [_("Choose on duty or away.")]})
    if policies.tier_of(user) not in (1, 2):
        raise PermissionDenied(_("Availability is for agents and team leads."))
    row, _created = AgentAvailability.objects.select_for_update().get_or_create(user=user)
    if row.status != status:
        row.status = status
        row.changed_at = timezone.now()
        row.save(update_fields=["status", "changed_at"])
    return row
