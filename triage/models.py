"""Smart triage: routing rules, skill groups and agent availability, urgency words, and
the learned category suggestion with its accept/override record.

Rules and words are edited in the admin; `triage.services` applies them at intake and
on demand, and writes what it did onto the ticket's timeline.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from complaints.models import Category, Department, Impact, Level, Priority
from sla.models import RiskKind


class SkillGroup(models.Model):
    """Agents of one team who handle some categories (their skills)."""

    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_OPEN = "least_open", _("Fewest open tickets")

    name = models.CharField(_("name"), max_length=60, unique=True)
    team = models.ForeignKey(
        Department,
        verbose_name=_("team"),
        on_delete=models.PROTECT,
        related_name="skill_groups",
        limit_choices_to={"kind": Department.Kind.SERVICE},
    )
    categories = models.ManyToManyField(
        Category,
        verbose_name=_("skills (categories)"),
        blank=True,
        related_name="skill_groups",
        help_text=_("Categories this group handles; informational for rules that name the group."),
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("members"),
        blank=True,
        related_name="skill_groups",
    )
    strategy = models.CharField(
        _("strategy"), max_length=20, choices=Strategy.choices, default=Strategy.ROUND_ROBIN
    )
    max_open_per_agent = models.PositiveSmallIntegerField(
        _("open tickets per agent at most"),
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(500)],
        help_text=_("An agent at this many open tickets gets no more from this group."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("skill group")
        verbose_name_plural = _("skill groups")

    def __str__(self) -> str:
        return self.name


class AgentAvailability(models.Model):
    """Whether an agent takes new tickets now; its row is the lock assignment takes."""

    class Status(models.TextChoices):
        ON_DUTY = "on_duty", _("On duty")
        AWAY = "away", _("Away")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("agent"),
        on_delete=models.CASCADE,
        related_name="availability",
    )
    status = models.CharField(
        _("availability"), max_length=10, choices=Status.choices, default=Status.ON_DUTY
    )
    # Round robin takes the on-duty agent who was given a ticket longest ago.
    last_assigned_at = models.DateTimeField(_("last given a ticket at"), null=True, blank=True)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("agent availability")
        verbose_name_plural = _("agent availability")

    def __str__(self) -> str:
        return f"{self.user.get_username()}: {self.get_status_display()}"


class RoutingRule(models.Model):
    """Conditions (all that are filled in must hold) and actions, applied in order."""

    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(
        _("order"), default=100, help_text=_("Rules run from the lowest number up.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    stop_processing = models.BooleanField(
        _("stop after a match"),
        default=True,
        help_text=_(
            "When this rule matches, later rules are not tried (first match). "
            "Untick to let later rules add their actions too (all matches)."
        ),
    )

    # --- conditions ---------------------------------------------------------------------
    channels = models.ManyToManyField(
        "channels.Channel",
        verbose_name=_("channels"),
        blank=True,
        help_text=_("Any of these channels (none: every channel)."),
    )
    categories = models.ManyToManyField(
        Category,
        verbose_name=_("categories"),
        blank=True,
        related_name="+",
        help_text=_("The ticket's category (or its parent) is one of these (none: any)."),
    )
    keywords = models.TextField(
        _("keywords"),
        blank=True,
        help_text=_(
            "One per line (commas work too); any of them in the subject or description. "
            "Matched on jieba words, like search: 书 does not match 说明书."
        ),
    )
    vip_min_level = models.PositiveSmallIntegerField(
        _("customer VIP level at least"), null=True, blank=True
    )
    amount_min = models.DecimalField(
        _("order amount at least (CNY)"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    amount_max = models.DecimalField(
        _("order amount at most (CNY)"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    hour_from = models.PositiveSmallIntegerField(
        _("from hour"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(23)],
        help_text=_("Local time (Asia/Shanghai), 0–23; 22 to 6 spans midnight."),
    )
    hour_to = models.PositiveSmallIntegerField(
        _("until hour (exclusive)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(24)],
    )

    # --- actions ------------------------------------------------------------------------
    set_category = models.ForeignKey(
        Category,
        verbose_name=_("set category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("A leaf category; applied to tickets not yet classified."),
    )
    set_amount_level = models.PositiveSmallIntegerField(
        _("set amount involved"), choices=Level.choices, null=True, blank=True
    )
    set_impact = models.PositiveSmallIntegerField(
        _("set impact"), choices=Impact.choices, null=True, blank=True
    )
    set_urgency = models.PositiveSmallIntegerField(
        _("set urgency"), choices=Level.choices, null=True, blank=True
    )
    set_priority = models.PositiveSmallIntegerField(
        _("set priority"),
        choices=Priority.choices,
        null=True,
        blank=True,
        help_text=_("Until the ticket is classified; classification grades it again."),
    )
    assign_team = models.ForeignKey(
        Department,
        verbose_name=_("route to team"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"kind": Department.Kind.SERVICE},
    )
    assign_skill_group = models.ForeignKey(
        SkillGroup,
        verbose_name=_("assign within skill group"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Picks an on-duty member by the group's strategy once the ticket is graded."),
    )
    add_watcher = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("add watcher"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    raise_risk = models.CharField(
        _("raise risk alert"), max_length=30, choices=RiskKind.choices, blank=True
    )
    risk_message = models.CharField(_("risk alert message"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")

    def __str__(self) -> str:
        return self.name


class TicketWatcher(models.Model):
    """A user told about a ticket they do not work (added by a rule)."""

    ticket = models.ForeignKey(
        "complaints.Ticket", on_delete=models.CASCADE, related_name="watchers"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("watcher"), on_delete=models.CASCADE
    )
    rule = models.ForeignKey(
        RoutingRule, verbose_name=_("rule"), on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(_("added at"), default=timezone.now)

    class Meta:
        verbose_name = _("ticket watcher")
        verbose_name_plural = _("ticket watchers")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "user"], name="uniq_ticket_watcher")
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.user.get_username()}"


class UrgencyReason(models.TextChoices):
    SAFETY = "safety", _("Safety")
    MEDIA = "media", _("Media / public exposure")
    REGULATOR = "regulator", _("Regulator")
    LEGAL = "legal", _("Legal threat")
    EMOTION = "emotion", _("Strong emotion")


# The order reasons are told in: what endangers people first.
REASON_ORDER = ["safety", "legal", "regulator", "media", "emotion"]


def group_matches(matches: list[dict]) -> list[tuple[str, list[str]]]:
    """[{"reason", "term"}, ...] → [(reason label, [terms])], most serious reason first."""
    labels = dict(UrgencyReason.choices)
    grouped: dict[str, list[str]] = {}
    for match in matches:
        grouped.setdefault(match.get("reason"), []).append(match.get("term"))
    ordered = sorted(
        grouped, key=lambda r: REASON_ORDER.index(r) if r in REASON_ORDER else len(REASON_ORDER)
    )
    return [(str(labels.get(r, r)), grouped[r]) for r in ordered]


class UrgencyTerm(models.Model):
    """A word or pattern that makes a complaint urgent, and why.

    The SLA's media and regulator words (sla RiskSettings) count too, as "media":
    they are kept there, once, not copied here.
    """

    term = models.CharField(_("word or pattern"), max_length=100)
    is_pattern = models.BooleanField(
        _("regular expression"), default=False, help_text=_("Match the term as a regex.")
    )
    reason = models.CharField(_("reason"), max_length=20, choices=UrgencyReason.choices)
    level = models.PositiveSmallIntegerField(
        _("raises urgency to"), choices=Level.choices, default=Level.HIGH
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["reason", "term"]
        verbose_name = _("urgency word")
        verbose_name_plural = _("urgency words")
        constraints = [models.UniqueConstraint(fields=["term", "reason"], name="uniq_urgency_term")]

    def __str__(self) -> str:
        return self.term


class TicketUrgency(models.Model):
    """Why the ticket was found urgent: [{"reason": "safety", "term": "起火"}, ...]."""

    ticket = models.OneToOneField(
        "complaints.Ticket", on_delete=models.CASCADE, related_name="urgency_finding"
    )
    level = models.PositiveSmallIntegerField(_("urgency"), choices=Level.choices)
    matches = models.JSONField(_("matched"), default=list)
    detected_at = models.DateTimeField(_("detected at"), default=timezone.now)

    class Meta:
        verbose_name = _("urgency finding")
        verbose_name_plural = _("urgency findings")

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.get_level_display()}"

    def reasons(self) -> list[tuple[str, list[str]]]:
        """(reason label, matched words), for "urgent: 安全 — matched 起火"."""
        return group_matches(self.matches)


class CategoryModel(models.Model):
    """One trained category classifier (joblib bytes in the database: every web node
    reads the same model without a shared disk). The newest row is the one in use."""

    created_at = models.DateTimeField(_("trained at"), default=timezone.now)
    samples = models.PositiveIntegerField(_("training tickets"))
    classes = models.PositiveSmallIntegerField(_("categories"))
    holdout_accuracy = models.FloatField(_("held-out accuracy"), null=True, blank=True)
    library = models.CharField(_("library"), max_length=60, blank=True)
    payload = models.BinaryField(_("model"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("category model")
        verbose_name_plural = _("category models")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} ({self.samples})"


class SuggestionOutcome(models.TextChoices):
    SHOWN = "shown", _("Shown, not decided yet")
    ACCEPTED = "accepted", _("Accepted")
    AGREED = "agreed", _("Classified the same by hand")
    OVERRIDDEN = "overridden", _("Overridden")


class CategorySuggestion(models.Model):
    """The category suggested for a ticket the first time an agent saw it, and what the
    agents finally chose."""

    ticket = models.OneToOneField(
        "complaints.Ticket", on_delete=models.CASCADE, related_name="category_suggestion"
    )
    model = models.ForeignKey(
        CategoryModel, verbose_name=_("model"), on_delete=models.SET_NULL, null=True, blank=True
    )
    category = models.ForeignKey(
        Category, verbose_name=_("suggested"), on_delete=models.CASCADE, related_name="+"
    )
    confidence = models.FloatField(_("confidence"))
    shown_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("first shown to"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    shown_at = models.DateTimeField(_("shown at"), default=timezone.now)
    outcome = models.CharField(
        _("outcome"),
        max_length=12,
        choices=SuggestionOutcome.choices,
        default=SuggestionOutcome.SHOWN,
        db_index=True,
    )
    final_category = models.ForeignKey(
        Category,
        verbose_name=_("chosen"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        ordering = ["-shown_at", "-id"]
        verbose_name = _("category suggestion")
        verbose_name_plural = _("category suggestions")

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.category_id} ({self.confidence:.2f})"


class IntakeFacts(models.Model):
    """Facts a channel sent that the ticket has no column for (the order amount), kept so
    rules applied later on demand see what intake saw."""

    ticket = models.OneToOneField(
        "complaints.Ticket", on_delete=models.CASCADE, related_name="intake_facts"
    )
    order_amount = models.DecimalField(
        _("order amount (CNY)"), max_digits=12, decimal_places=2, null=True, blank=True
    )

    class Meta:
        verbose_name = _("intake facts")
        verbose_name_plural = _("intake facts")

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.order_amount}"
