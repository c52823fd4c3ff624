"""SLA policies (versioned), per-ticket stage clocks.

A policy is what an admin edits; every change that matters publishes an immutable
`SlaPolicyVersion`. Clocks point at the version current when they started, so
editing a policy never moves the deadlines of tickets already running.
"""

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from complaints.models import Category, Priority

from .calendars import BUSINESS_HOURS, TWENTY_FOUR_SEVEN, BusinessCalendar


class Stage(models.TextChoices):
    # Initial assessment (初判) counts as met once the ticket is classified and
    # assigned (Ticket.assigned_at): from then on someone owns a graded ticket.
    FIRST_RESPONSE = "first_response", _("First response")
    ASSESSMENT = "assessment", _("Initial assessment")
    SOLUTION = "solution", _("Solution")
    CLOSURE = "closure", _("Closure")


STAGE_ORDER = [Stage.FIRST_RESPONSE, Stage.ASSESSMENT, Stage.SOLUTION, Stage.CLOSURE]


class CalendarKind(models.TextChoices):
    ALWAYS = TWENTY_FOUR_SEVEN, _("24×7")
    BUSINESS = BUSINESS_HOURS, _("Business hours on Chinese working days")


def _minutes(label, default):
    return models.PositiveIntegerField(
        label, default=default, validators=[MinValueValidator(1), MaxValueValidator(525600)]
    )


def _percent(label, default):
    return models.PositiveSmallIntegerField(
        label, default=default, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )


class PolicyTerms(models.Model):
    """The terms a policy sets; shared by the editable policy and its frozen versions."""

    first_response_minutes = _minutes(_("first response target (minutes)"), 4 * 60)
    assessment_minutes = _minutes(_("initial assessment target (minutes)"), 24 * 60)
    solution_minutes = _minutes(_("solution target (minutes)"), 72 * 60)
    closure_minutes = _minutes(_("closure target (minutes)"), 5 * 24 * 60)
    warn_1_percent = _percent(_("warning 1 at (percent of the target)"), 50)
    warn_2_percent = _percent(_("warning 2 at (percent of the target)"), 75)
    warn_3_percent = _percent(_("warning 3 at (percent of the target)"), 90)
    calendar = models.CharField(
        _("calendar"), max_length=20, choices=CalendarKind.choices, default=CalendarKind.ALWAYS
    )
    work_start = models.TimeField(_("working day starts"), default=dt.time(9, 0))
    work_end = models.TimeField(_("working day ends"), default=dt.time(18, 0))
    chinese_holidays = models.BooleanField(
        _("observe Chinese public holidays and adjusted working days"), default=True
    )
    # Collaboration tasks opened on the ticket: claim within / complete within. Empty
    # means the department's own times (Department.task_response/completion_hours).
    task_response_hours = models.PositiveSmallIntegerField(
        _("department task response (hours)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(720)],
        help_text=_(
            "A collaboration task must be claimed within this time. Empty: the "
            "department's own response time."
        ),
    )
    task_completion_hours = models.PositiveSmallIntegerField(
        _("department task completion (hours)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(2160)],
        help_text=_(
            "A collaboration task must be completed within this time. Empty: the "
            "department's own completion time."
        ),
    )

    TERM_FIELDS = (
        "first_response_minutes",
        "assessment_minutes",
        "solution_minutes",
        "closure_minutes",
        "warn_1_percent",
        "warn_2_percent",
        "warn_3_percent",
        "calendar",
        "work_start",
        "work_end",
        "chinese_holidays",
        "task_response_hours",
        "task_completion_hours",
    )

    class Meta:
        abstract = True

    def clean(self):
        super().clean()
        errors = {}
        w1, w2, w3 = self.warn_1_percent, self.warn_2_percent, self.warn_3_percent
        if None not in (w1, w2, w3) and not (0 < w1 < w2 < w3 < 100):
            errors["warn_3_percent"] = _("Warnings must rise: 0 < warning 1 < 2 < 3 < 100.")
        if (
            self.calendar == CalendarKind.BUSINESS
            and self.work_start
            and self.work_end
            and self.work_start >= self.work_end
        ):
            errors["work_end"] = _("The working day must end after it starts.")
        respond, complete = self.task_response_hours, self.task_completion_hours
        if respond and complete and complete < respond:
            errors["task_completion_hours"] = _(
                "A task cannot be due for completion before its response deadline."
            )
        if errors:
            raise ValidationError(errors)

    def target(self, stage: str) -> dt.timedelta:
        return dt.timedelta(minutes=getattr(self, f"{stage}_minutes"))

    def thresholds(self) -> tuple[int, int, int]:
        return (self.warn_1_percent, self.warn_2_percent, self.warn_3_percent)

    def business_calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            kind=self.calendar,
            work_start=self.work_start,
            work_end=self.work_end,
            chinese_holidays=self.chinese_holidays,
        )

    def terms(self) -> dict:
        return {name: getattr(self, name) for name in self.TERM_FIELDS}


class SlaPolicy(PolicyTerms):
    """Targets for one priority, optionally narrowed to a category or a channel."""

    name = models.CharField(_("name"), max_length=100)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices)
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text=_("Empty: every category. A root category covers its subcategories."),
    )
    channel = models.ForeignKey(
        "channels.Channel",
        verbose_name=_("channel"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text=_("Empty: every channel."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    current_version = models.ForeignKey(
        "SlaPolicyVersion",
        verbose_name=_("current version"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self) -> str:
        return self.name


class SlaPolicyVersion(PolicyTerms):
    """A frozen copy of a policy's terms; clocks keep the version they started with."""

    policy = models.ForeignKey(
        SlaPolicy, verbose_name=_("policy"), on_delete=models.PROTECT, related_name="versions"
    )
    number = models.PositiveIntegerField(_("version"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["policy", "-number"]
        verbose_name = _("SLA policy version")
        verbose_name_plural = _("SLA policy versions")
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="uniq_sla_policy_version")
        ]

    def __str__(self) -> str:
        return f"{self.policy} v{self.number}"


class WarningLevel(models.IntegerChoices):
    NONE = 0, _("None")
    FIRST = 1, _("Warning 1")
    SECOND = 2, _("Warning 2")
    THIRD = 3, _("Warning 3")
    BREACH = 4, _("Breached")


class Clock(models.Model):
    """One stage's deadline on one ticket. Written only under the ticket's row lock."""

    ticket = models.ForeignKey(
        "complaints.Ticket", on_delete=models.CASCADE, related_name="sla_clocks"
    )
    stage = models.CharField(_("stage"), max_length=20, choices=Stage.choices)
    policy_version = models.ForeignKey(
        SlaPolicyVersion,
        verbose_name=_("policy version"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="clocks",
    )
    target_minutes = models.PositiveIntegerField(_("target (minutes)"))
    started_at = models.DateTimeField(_("started at"))
    due_at = models.DateTimeField(_("due at"), db_index=True)
    met_at = models.DateTimeField(_("met at"), null=True, blank=True)
    breached_at = models.DateTimeField(_("breached at"), null=True, blank=True)
    paused_at = models.DateTimeField(_("paused since"), null=True, blank=True)
    # Working time spent paused (waiting for the customer); the due time moved by it.
    paused_seconds = models.PositiveIntegerField(_("paused (seconds)"), default=0)
    warned_level = models.PositiveSmallIntegerField(
        _("highest warning sent"), choices=WarningLevel.choices, default=WarningLevel.NONE
    )
    # When the sweep must look at this clock next (next warning or the breach);
    # empty once nothing more can happen (met, paused, breached, ticket gone).
    next_check_at = models.DateTimeField(_("next check"), null=True, blank=True)

    class Meta:
        ordering = ["ticket", "id"]
        verbose_name = _("SLA clock")
        verbose_name_plural = _("SLA clocks")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "stage"], name="uniq_sla_clock_stage")
        ]
        indexes = [
            models.Index(
                fields=["next_check_at"],
                condition=Q(next_check_at__isnull=False),
                name="sla_clock_next_check",
            )
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.stage}"

    @property
    def is_running(self) -> bool:
        return self.met_at is None and self.paused_at is None

    def is_late(self, now=None) -> bool:
        if self.met_at is not None:
            return self.met_at > self.due_at
        return self.paused_at is None and self.due_at < (now or timezone.now())


# --- risk signals ----------------------------------------------------------------------


class RiskKind(models.TextChoices):
    REPEAT_CONTACT = "repeat_contact", _("Customer contacted again within 24 h")
    FIRST_RESPONSE_OVERDUE = "first_response_overdue", _("First response overdue")
    SOLUTION_OVERDUE = "solution_overdue", _("Solution or closure overdue")
    LOW_SATISFACTION = "low_satisfaction", _("Low satisfaction score")
    MEDIA_WORDS = "media_words", _("Media or regulator mentioned")
    REPEAT_COMPLAINT = "repeat_complaint", _("Repeat complaint within 30 days")
    COMPENSATION_ABOVE_CEILING = "compensation_ceiling", _("Compensation request above the ceiling")
    TASK_UNCLAIMED = "task_unclaimed", _("Collaboration task unclaimed past its deadline")
    REASSIGNED = "reassigned", _("Passed around: assigned 3+ times")
    MANY_DEPARTMENTS = "many_departments", _("Three or more departments involved")
    VIP = "vip", _("VIP customer")
    CATEGORY_SPIKE = "category_spike", _("Category volume spike")


class Severity(models.IntegerChoices):
    LOW = 1, _("Low")
    MEDIUM = 2, _("Medium")
    HIGH = 3, _("High")


DEFAULT_MEDIA_WORDS = "媒体\n曝光\n记者\n消协\n12315\n黑猫\n律师\n起诉\n投诉到"


class RiskSettings(models.Model):
    """Thresholds and word lists of the risk signals (one row, edited in the admin)."""

    repeat_contact_hours = models.PositiveSmallIntegerField(
        _("contact again within (hours)"), default=24, validators=[MinValueValidator(1)]
    )
    repeat_complaint_days = models.PositiveSmallIntegerField(
        _("repeat complaint within (days)"), default=30, validators=[MinValueValidator(1)]
    )
    media_words = models.TextField(
        _("media and regulator words"),
        default=DEFAULT_MEDIA_WORDS,
        help_text=_("One word or phrase per line (commas work too)."),
    )
    compensation_ceiling = models.DecimalField(
        _("compensation request ceiling (CNY)"),
        max_digits=10,
        decimal_places=2,
        default=100,
        validators=[MinValueValidator(0)],
        help_text=_("A request for more than this raises an alert."),
    )
    assignment_count = models.PositiveSmallIntegerField(
        _("assignments before an alert"),
        default=3,
        validators=[MinValueValidator(2)],
        help_text=_(
            "A ticket assigned this many times (the first included) is being passed around."
        ),
    )
    department_count = models.PositiveSmallIntegerField(
        _("departments before an alert"), default=3, validators=[MinValueValidator(2)]
    )
    vip_min_level = models.PositiveSmallIntegerField(
        _("VIP from level"), default=1, validators=[MinValueValidator(1)]
    )
    spike_factor = models.DecimalField(
        _("spike factor"),
        max_digits=5,
        decimal_places=2,
        default=3,
        validators=[MinValueValidator(1)],
        help_text=_("Today's count above this many times the trailing daily average is a spike."),
    )
    spike_min_count = models.PositiveSmallIntegerField(
        _("spike minimum tickets today"), default=5, validators=[MinValueValidator(1)]
    )
    spike_trailing_days = models.PositiveSmallIntegerField(
        _("spike trailing days"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
    )
    satisfaction_below = models.PositiveSmallIntegerField(
        _("satisfaction alert below"), default=6, validators=[MaxValueValidator(10)]
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("risk settings")
        verbose_name_plural = _("risk settings")

    def __str__(self) -> str:
        return str(_("Risk settings"))

    @classmethod
    def load(cls) -> "RiskSettings":
        """The saved settings, or the defaults when an admin has not saved any yet."""
        return cls.objects.order_by("pk").first() or cls()

    def words(self) -> list[str]:
        raw = self.media_words.replace(",", "\n").replace("，", "\n")
        return [w.strip() for w in raw.splitlines() if w.strip()]


class RiskAlert(models.Model):
    """One risk signal on one ticket; each kind fires once per ticket."""

    ticket = models.ForeignKey(
        "complaints.Ticket", on_delete=models.CASCADE, related_name="risk_alerts"
    )
    customer = models.ForeignKey(
        "complaints.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    kind = models.CharField(_("kind"), max_length=30, choices=RiskKind.choices)
    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices)
    message = models.CharField(_("message"), max_length=300)
    created_at = models.DateTimeField(_("raised at"), default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acknowledged by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("risk alert")
        verbose_name_plural = _("risk alerts")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "kind"], name="uniq_risk_alert_ticket_kind")
        ]
        indexes = [models.Index(fields=["acknowledged_at", "-created_at"], name="risk_board")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"
