"""Complaint domain: staff, customers, categories, tickets and their timeline.

Tickets change state only through `complaints.services`; the FSM field is
protected so nothing can assign `status` directly.
"""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.hashable import make_hashable
from django.utils.translation import gettext_lazy as _
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition

from channels.models import Channel

_DISPLAY_LABELS: dict = {}


class ChoiceLabelsMixin:
    """`get_FOO_display()` from a per-field {value: label} dict built once.

    Django rebuilds `dict(make_hashable(field.flatchoices))` on every call, hashing each
    lazy label, which translates all of them: a 200-event timeline spent ~40% of its
    render time in gettext. Labels stay lazy here, so the active language still applies.
    """

    def _get_FIELD_display(self, field):
        labels = _DISPLAY_LABELS.get(field)
        if labels is None:
            labels = {make_hashable(value): label for value, label in field.flatchoices}
            _DISPLAY_LABELS[field] = labels
        value = getattr(self, field.attname)
        return force_str(labels.get(make_hashable(value), value), strings_only=True)


class Department(models.Model):
    class Kind(models.TextChoices):
        SERVICE = "service", _("Customer-service team")
        COLLABORATING = "collaborating", _("Collaborating department")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # Default deadlines of collaboration tasks opened for this department.
    task_response_hours = models.PositiveSmallIntegerField(
        _("task response time (hours)"),
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(720)],
        help_text=_("A task must be claimed within this time."),
    )
    task_completion_hours = models.PositiveSmallIntegerField(
        _("task completion time (hours)"),
        default=48,
        validators=[MinValueValidator(1), MaxValueValidator(2160)],
        help_text=_("A task must be completed within this time."),
    )

    class Meta:
        ordering = ["kind", "code"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    AGENT = "agent", _("Frontline agent (tier 1)")
    SENIOR = "senior", _("Senior agent / team lead (tier 2)")
    SUPERVISOR = "supervisor", _("Supervisor (tier 3)")
    DEPARTMENT = "department", _("Department staff")
    ADMIN = "admin", _("Administrator")


SERVICE_ROLES = {Role.AGENT, Role.SENIOR, Role.SUPERVISOR, Role.ADMIN}


class StaffProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.AGENT)
    department = models.ForeignKey(
        Department,
        verbose_name=_("team / department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
    )
    is_head = models.BooleanField(
        _("department head"),
        default=False,
        help_text=_("Department heads can reassign their department's tasks."),
    )

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"

    @property
    def tier(self) -> int:
        """Customer-service tier: 1 agent, 2 senior, 3 supervisor/admin, 0 department staff."""
        return {Role.AGENT: 1, Role.SENIOR: 2, Role.SUPERVISOR: 3, Role.ADMIN: 3}.get(self.role, 0)

    @property
    def is_service_staff(self) -> bool:
        return self.role in SERVICE_ROLES


class Customer(models.Model):
    name = models.CharField(_("name"), max_length=100)
    # Normalized to E.164 (+86…) by complaints.phone.normalize_phone.
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    email = models.EmailField(_("e-mail"), blank=True, db_index=True)
    region = models.CharField(_("region"), max_length=60, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    vip_level = models.PositiveSmallIntegerField(_("VIP level"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return self.name

    @property
    def masked_phone(self) -> str:
        digits = self.phone.removeprefix("+86")
        if len(digits) < 7:
            return "****"
        return f"{digits[:3]}****{digits[-4:]}"


class IdentityKind(models.TextChoices):
    WECHAT_OPENID = "wechat_openid", _("WeChat OpenID")
    WECHAT_UNIONID = "wechat_unionid", _("WeChat UnionID")
    APP_USER_ID = "app_user_id", _("App user ID")
    EMAIL = "email", _("E-mail")
    WEIBO_UID = "weibo_uid", _("Weibo UID")
    DOUYIN_UID = "douyin_uid", _("Douyin UID")
    PHONE = "phone", _("Phone")


class CustomerIdentity(ChoiceLabelsMixin, models.Model):
    """A key by which a channel knows the customer; one key belongs to one customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=20, choices=IdentityKind.choices)
    external_key = models.CharField(_("key"), max_length=200)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer identity")
        verbose_name_plural = _("customer identities")
        constraints = [
            models.UniqueConstraint(fields=["kind", "external_key"], name="uniq_identity_kind_key")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.external_key}"


class Category(models.Model):
    """Two-level category tree: a root (产品质量) and optional children (售后服务/安装延误)."""

    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    code = models.SlugField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=60)
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["sort_order", "id"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        if self.parent_id:
            return f"{self.parent.name}/{self.name}"
        return self.name


class Level(models.IntegerChoices):
    LOW = 1, _("Low")
    MEDIUM = 2, _("Medium")
    HIGH = 3, _("High")


class Impact(models.IntegerChoices):
    INDIVIDUAL = 1, _("Individual")
    GROUP = 2, _("Group")
    PUBLIC = 3, _("Public / media / regulator")


class Priority(models.IntegerChoices):
    P1 = 1, _("P1 critical")
    P2 = 2, _("P2 high")
    P3 = 3, _("P3 normal")
    P4 = 4, _("P4 low")


class Status(models.TextChoices):
    RECEIVED = "received", _("Received")
    CLASSIFIED = "classified", _("Classified")
    ASSIGNED = "assigned", _("Assigned")
    IN_PROGRESS = "in_progress", _("In progress")
    RESOLVED = "resolved", _("Resolved")
    FOLLOWED_UP = "followed_up", _("Followed up")
    CLOSED = "closed", _("Closed")
    MERGED = "merged", _("Merged")


OPEN_STATUSES = [
    Status.RECEIVED,
    Status.CLASSIFIED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.RESOLVED,
    Status.FOLLOWED_UP,
]
# States in which work on the ticket is still ahead of the agent.
ACTIVE_STATUSES = [Status.RECEIVED, Status.CLASSIFIED, Status.ASSIGNED, Status.IN_PROGRESS]


class TicketQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def for_queue(self):
        return self.select_related("customer", "category__parent", "channel", "assignee", "team")


class Ticket(ChoiceLabelsMixin, FSMModelMixin, models.Model):
    number = models.CharField(_("number"), max_length=24, unique=True, editable=False)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="tickets"
    )
    channel = models.ForeignKey(
        Channel, verbose_name=_("channel"), on_delete=models.PROTECT, related_name="tickets"
    )
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("description"))
    order_no = models.CharField(_("order number"), max_length=64, blank=True, db_index=True)

    # Classification: category and the three grading axes that yield the priority.
    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.PROTECT, null=True, blank=True
    )
    amount_level = models.PositiveSmallIntegerField(
        _("amount involved"), choices=Level.choices, null=True, blank=True
    )
    impact = models.PositiveSmallIntegerField(
        _("impact"), choices=Impact.choices, null=True, blank=True
    )
    urgency = models.PositiveSmallIntegerField(
        _("urgency"), choices=Level.choices, null=True, blank=True
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.P3
    )

    status = FSMField(
        _("status"), default=Status.RECEIVED, choices=Status.choices, protected=True, max_length=20
    )
    team = models.ForeignKey(
        Department,
        verbose_name=_("team"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        limit_choices_to={"kind": Department.Kind.SERVICE},
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )

    # What the customer was promised in the first response.
    promised_followup_at = models.DateTimeField(_("promised follow-up by"), null=True, blank=True)

    # The four elements a resolution needs: time, responsible person, solution, evidence.
    resolution_time = models.DateTimeField(_("solution carried out at"), null=True, blank=True)
    responsible_person = models.CharField(_("responsible person"), max_length=100, blank=True)
    solution = models.TextField(_("solution"), blank=True)
    evidence_ref = models.CharField(_("evidence reference"), max_length=200, blank=True)

    followup_note = models.TextField(_("follow-up record"), blank=True)

    # Step timestamps.
    created_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    classified_at = models.DateTimeField(_("classified at"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    first_responded_at = models.DateTimeField(_("first responded at"), null=True, blank=True)
    # When the first response actually left for the customer (channels/outbox.py); the
    # first-response SLA clock is met by this, not by the agent writing it.
    first_response_sent_at = models.DateTimeField(
        _("first response sent at"), null=True, blank=True
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    followed_up_at = models.DateTimeField(_("followed up at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # SLA deadlines (the sla app computes them); due_at is the next one that matters.
    first_response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    resolve_due_at = models.DateTimeField(_("solution due"), null=True, blank=True)
    close_due_at = models.DateTimeField(_("closure due"), null=True, blank=True)
    due_at = models.DateTimeField(_("next deadline"), null=True, blank=True)

    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    # Set while the ticket waits for the customer: the SLA clocks are paused (sla app).
    sla_paused_at = models.DateTimeField(_("waiting for the customer since"), null=True, blank=True)
    reopen_count = models.PositiveSmallIntegerField(_("reopen count"), default=0)
    contact_count = models.PositiveIntegerField(_("contacts"), default=1)
    # Bumped by every service write: a form or API call carrying an older version
    # was made on a stale view of the ticket and is refused with a conflict.
    version = models.PositiveIntegerField(_("version"), default=1)
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_tickets",
    )
    # Text search (kb.search): jieba tokens of subject and description, and on
    # PostgreSQL a tsvector a trigger fills from them (migration 0006).
    search_tokens = models.TextField(default="", editable=False)
    search_vector = SearchVectorField(null=True, editable=False)

    # Intake: a new complaint within 30 days of a closed ticket on the same order or
    # category repeats it (the repeat-complaint rate counts these); a customer who
    # contacts again within 24 h gets the ticket flagged.
    repeat_of = models.ForeignKey(
        "self",
        verbose_name=_("repeat of"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="repeats",
    )
    recontact_flagged_at = models.DateTimeField(
        _("contacted again within 24 h at"), null=True, blank=True, db_index=True
    )

    objects = TicketQuerySet.as_manager()

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        indexes = [
            # Queue tabs: "all open" and "my team, unassigned", sorted by priority and due time.
            models.Index(fields=["status", "priority", "due_at"], name="ticket_status_prio_due"),
            models.Index(fields=["team", "status", "priority", "due_at"], name="ticket_team_queue"),
            models.Index(fields=["assignee", "status", "priority", "due_at"], name="ticket_mine"),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_recent"),
            # The staff list API's default order over every ticket (open and closed).
            models.Index(fields=["priority", "due_at", "id"], name="ticket_priority_due"),
            # Open tickets only (~8% of a mature table): the queue's "all open" tab reads
            # them in sort order and counts them from this small index.
            models.Index(
                fields=["priority", "due_at", "id"],
                name="ticket_open_sorted",
                condition=Q(status__in=OPEN_STATUSES),
            ),
            # "Mine" (assignee = me) and "team" (assignee IS NULL) in sort order; status and
            # team ride along so the tab counts are an index-only scan.
            models.Index(
                fields=["assignee", "priority", "due_at", "id"],
                name="ticket_open_assignee",
                condition=Q(status__in=OPEN_STATUSES),
                include=["status", "team"],
            ),
            # "My team, unassigned": work not yet taken, in sort order, with the team to
            # filter on (the team's own tickets and those not routed to a team yet).
            models.Index(
                fields=["priority", "due_at", "id"],
                name="ticket_unassigned_sorted",
                condition=Q(assignee__isnull=True, status__in=ACTIVE_STATUSES),
                include=["team"],
            ),
        ]
        permissions = [("view_all_tickets", "Can view every ticket")]

    def __str__(self) -> str:
        return self.number

    def clean_fields(self, exclude=None):
        # clean_fields() assigns every field; the protected FSM field refuses that.
        exclude = set(exclude or ()) | {"status"}
        super().clean_fields(exclude=exclude)

    # --- derived facts used by the transition conditions and the refusal messages ---

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def missing_classification(self) -> list[str]:
        missing = []
        if self.category_id is None:
            missing.append(str(_("category")))
        for field in ("amount_level", "impact", "urgency"):
            if getattr(self, field) is None:
                missing.append(str(self._meta.get_field(field).verbose_name))
        return missing

    def missing_four_elements(self, *, has_attachment: bool) -> list[str]:
        missing = []
        if self.resolution_time is None:
            missing.append(str(_("time")))
        if not self.responsible_person.strip():
            missing.append(str(_("responsible person")))
        if not self.solution.strip():
            missing.append(str(_("solution")))
        if not (has_attachment or self.evidence_ref.strip()):
            missing.append(str(_("evidence (attachment or reference)")))
        return missing

    def _is_classified(self) -> bool:
        return not self.missing_classification()

    def _has_first_response(self) -> bool:
        return self.first_responded_at is not None

    def _awaits_first_response(self) -> bool:
        return self.first_responded_at is None and self.promised_followup_at is not None

    def _has_assignee(self) -> bool:
        return self.assignee_id is not None

    def _has_solution(self) -> bool:
        # Evidence may be an attachment, which the service checks before calling resolve().
        return bool(
            self.resolution_time and self.responsible_person.strip() and self.solution.strip()
        )

    def _has_followup_record(self) -> bool:
        return bool(self.followup_note.strip())

    # --- transitions: no side effects; services set the data and write the timeline ---

    @transition(
        field=status,
        source=[Status.RECEIVED, Status.CLASSIFIED],
        target=Status.CLASSIFIED,
        conditions=[_is_classified],
    )
    def classify(self):
        pass

    @transition(
        field=status,
        source=[Status.CLASSIFIED, Status.ASSIGNED, Status.IN_PROGRESS],
        target=RETURN_VALUE(Status.ASSIGNED, Status.IN_PROGRESS),
        conditions=[_has_assignee],
    )
    def assign(self):
        # Reassigning a ticket already being worked keeps it in progress.
        return Status.IN_PROGRESS if self.status == Status.IN_PROGRESS else Status.ASSIGNED

    @transition(
        field=status,
        source=Status.ASSIGNED,
        target=Status.ASSIGNED,
        conditions=[_awaits_first_response],
    )
    def first_response(self):
        pass

    @transition(
        field=status,
        source=Status.ASSIGNED,
        target=Status.IN_PROGRESS,
        conditions=[_has_first_response],
    )
    def start(self):
        pass

    @transition(
        field=status, source=Status.IN_PROGRESS, target=Status.RESOLVED, conditions=[_has_solution]
    )
    def resolve(self):
        pass

    @transition(
        field=status,
        source=Status.RESOLVED,
        target=Status.FOLLOWED_UP,
        conditions=[_has_followup_record],
    )
    def follow_up(self):
        pass

    @transition(field=status, source=Status.FOLLOWED_UP, target=Status.CLOSED)
    def close(self):
        pass

    @transition(
        field=status,
        source=[Status.RESOLVED, Status.FOLLOWED_UP, Status.CLOSED],
        target=Status.IN_PROGRESS,
    )
    def reopen(self):
        pass

    @transition(
        field=status,
        source=[Status.RECEIVED, Status.CLASSIFIED, Status.ASSIGNED, Status.IN_PROGRESS],
        target=Status.MERGED,
    )
    def merge(self):
        pass


class TicketSequence(models.Model):
    """Per-day counter behind ticket numbers (TS20261122-000123)."""

    day = models.DateField(_("day"), unique=True)
    last = models.PositiveIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("ticket number sequence")
        verbose_name_plural = _("ticket number sequences")

    def __str__(self) -> str:
        return f"{self.day}: {self.last}"


class Contact(models.Model):
    """One inbound contact from the customer on a ticket (the first one opens it)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="contacts")
    channel = models.ForeignKey(Channel, verbose_name=_("channel"), on_delete=models.PROTECT)
    external_id = models.CharField(_("external id"), max_length=128, blank=True)
    body = models.TextField(_("content"))
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~Q(external_id=""),
                name="uniq_contact_channel_external_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.ticket.number} @ {timezone.localtime(self.occurred_at):%Y-%m-%d %H:%M}"


def attachment_path(instance: "Attachment", filename: str) -> str:
    return f"attachments/{timezone.now():%Y/%m}/{instance.ticket.number}/{filename}"


class Attachment(models.Model):
    """Evidence on a ticket; size and type are validated by services.attachment_add."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="attachments")
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=255)
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveIntegerField(_("size (bytes)"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.original_name

    def get_absolute_url(self) -> str:
        # Files are not public: this view checks who asks (no /media/ URL is served).
        return reverse("workspace:attachment", args=[self.ticket.number, self.pk])


class EventKind(models.TextChoices):
    CREATED = "created", _("Ticket received")
    CONTACT = "contact", _("Customer contacted again")
    CLASSIFIED = "classified", _("Classified")
    ASSIGNED = "assigned", _("Assigned")
    FIRST_RESPONSE = "first_response", _("First response")
    STARTED = "started", _("Handling started")
    RESOLVED = "resolved", _("Resolved")
    FOLLOWED_UP = "followed_up", _("Followed up")
    CLOSED = "closed", _("Closed")
    REOPENED = "reopened", _("Reopened")
    MERGED = "merged", _("Merged into another ticket")
    MERGED_FROM = "merged_from", _("Ticket merged in")
    ESCALATED = "escalated", _("Escalated")
    REPLY = "reply", _("Reply to customer")
    NOTE = "note", _("Internal note")
    ATTACHMENT = "attachment", _("Evidence attached")
    COMPENSATION_GRANTED = "compensation_granted", _("Compensation granted")
    COMPENSATION_REQUESTED = "compensation_requested", _("Compensation requested")
    COMPENSATION_APPROVED = "compensation_approved", _("Compensation approved")
    COMPENSATION_REJECTED = "compensation_rejected", _("Compensation rejected")
    COMPENSATION_CANCELLED = "compensation_cancelled", _("Compensation request withdrawn")
    TASK_OPENED = "task_opened", _("Collaboration task opened")
    TASK_CLAIMED = "task_claimed", _("Task claimed")
    TASK_NOTE = "task_note", _("Task progress")
    TASK_COMPLETED = "task_completed", _("Task completed")
    TASK_RETURNED = "task_returned", _("Task returned")
    TASK_REASSIGNED = "task_reassigned", _("Task reassigned")
    TASK_REOPENED = "task_reopened", _("Task sent again")
    TASK_CANCELLED = "task_cancelled", _("Task cancelled")
    SURVEY_SENT = "survey_sent", _("Satisfaction survey sent")
    SURVEY_ANSWERED = "survey_answered", _("Satisfaction survey answered")
    CALLBACK = "callback", _("Call-back recorded")
    SLA_WARNING = "sla_warning", _("SLA warning")
    SLA_PAUSED = "sla_paused", _("Waiting for the customer")
    SLA_RESUMED = "sla_resumed", _("Customer answered; SLA resumed")
    DELIVERY_FAILED = "delivery_failed", _("Message not delivered")
    SURVEY_REMINDED = "survey_reminded", _("Survey reminder sent")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Timeline events are append-only")

    def delete(self):
        raise TypeError("Timeline events are append-only")


class TimelineEvent(ChoiceLabelsMixin, models.Model):
    """Append-only record of one action on a ticket: who, when, what, before/after."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
    )
    kind = models.CharField(_("kind"), max_length=30, choices=EventKind.choices)
    # Set on events of a collaboration task, so its progress can be listed on its own.
    task = models.ForeignKey(
        "CollaborationTask",
        verbose_name=_("task"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
    )
    message = models.TextField(_("message"), blank=True)
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("timeline event")
        verbose_name_plural = _("timeline events")
        indexes = [models.Index(fields=["ticket", "created_at"], name="event_ticket_time")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind} {timezone.localtime(self.created_at):%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        # The audit trail must not be rewritten: only inserts are allowed.
        if self.pk is not None and not self._state.adding:
            raise TypeError("Timeline events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Timeline events are append-only")


# --- compensation ----------------------------------------------------------------


class CompensationKind(models.TextChoices):
    COUPON = "coupon", _("Coupon")
    REFUND = "refund", _("Refund")
    CASH = "cash", _("Cash")
    GIFT = "gift", _("Gift")
    OTHER = "other", _("Other")


class CompensationState(models.TextChoices):
    GRANTED = "granted", _("Granted")
    REQUESTED = "requested", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Withdrawn")


# States whose amount counts towards a ticket's total (what the customer gets).
PAID_COMPENSATION_STATES = (CompensationState.GRANTED, CompensationState.APPROVED)


class Tier(models.IntegerChoices):
    AGENT = 1, _("Tier 1 — frontline agent")
    SENIOR = 2, _("Tier 2 — senior agent / team lead")
    SUPERVISOR = 3, _("Tier 3 — supervisor")


class CompensationLimit(models.Model):
    """How much one tier may grant on one ticket in total, on its own authority."""

    tier = models.PositiveSmallIntegerField(_("tier"), choices=Tier.choices, unique=True)
    amount = models.DecimalField(
        _("limit per ticket (CNY)"),
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(0)],
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["tier"]
        verbose_name = _("compensation limit")
        verbose_name_plural = _("compensation limits")

    def __str__(self) -> str:
        return f"{self.get_tier_display()}: ¥{self.amount}"


class Compensation(ChoiceLabelsMixin, models.Model):
    """Money or goods given to a customer on a ticket; created only by services."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="compensations")
    kind = models.CharField(_("kind"), max_length=20, choices=CompensationKind.choices)
    amount = models.DecimalField(_("amount (CNY)"), max_digits=10, decimal_places=2)
    reason = models.TextField(_("reason"))
    state = models.CharField(
        _("state"), max_length=20, choices=CompensationState.choices, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("granted / requested by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    # For a request: the lowest tier whose limit covers the ticket's new total.
    approver_tier = models.PositiveSmallIntegerField(
        _("approval needed from"), choices=Tier.choices, null=True, blank=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("compensation")
        verbose_name_plural = _("compensations")
        indexes = [
            models.Index(fields=["state", "approver_tier", "created_at"], name="comp_queue"),
            # The dashboard's rollups: compensation on the tickets received in a range was
            # created in or after it.
            models.Index(fields=["created_at"], name="comp_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="compensation_amount_positive")
        ]

    def __str__(self) -> str:
        return f"{self.ticket.number} {self.get_kind_display()} ¥{self.amount} ({self.get_state_display()})"

    @property
    def is_paid(self) -> bool:
        return self.state in PAID_COMPENSATION_STATES


# --- collaboration tasks -----------------------------------------------------------


class TaskState(models.TextChoices):
    OPEN = "open", _("Unclaimed")
    CLAIMED = "claimed", _("In progress")
    DONE = "done", _("Completed")
    RETURNED = "returned", _("Returned to the agent")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_TASK_STATES = (TaskState.OPEN, TaskState.CLAIMED)


class CollaborationTask(ChoiceLabelsMixin, models.Model):
    """One department's owned, timed step on a ticket (多部门会诊: one per department)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="tasks")
    department = models.ForeignKey(
        Department, verbose_name=_("department"), on_delete=models.PROTECT, related_name="tasks"
    )
    responsibility = models.CharField(_("responsibility"), max_length=200)
    instruction = models.TextField(_("instruction"))
    state = models.CharField(
        _("state"), max_length=20, choices=TaskState.choices, default=TaskState.OPEN
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("opened by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("claimed by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="claimed_tasks",
    )
    respond_due_at = models.DateTimeField(_("respond by"))
    complete_due_at = models.DateTimeField(_("complete by"))
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    result = models.TextField(_("result"), blank=True)
    return_reason = models.TextField(_("return reason"), blank=True)
    created_at = models.DateTimeField(_("opened at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("collaboration task")
        verbose_name_plural = _("collaboration tasks")
        indexes = [
            models.Index(fields=["department", "state", "respond_due_at"], name="task_board"),
            models.Index(fields=["assignee", "state"], name="task_assignee"),
            # The board's "done" tab, newest first: finished tasks are most of the table.
            models.Index(
                fields=["department", "-updated_at", "-id"],
                name="task_done_recent",
                condition=Q(state__in=["done", "returned"]),
            ),
            # The dashboard's rollups: tasks on the tickets received in a range were
            # opened in or after it.
            models.Index(fields=["created_at"], name="task_created"),
        ]

    def __str__(self) -> str:
        return f"{self.department} · {self.responsibility}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_TASK_STATES

    @property
    def due_at(self):
        """The deadline that matters now: respond while unclaimed, complete once claimed."""
        return self.respond_due_at if self.state == TaskState.OPEN else self.complete_due_at

    def is_overdue(self, now=None) -> bool:
        if not self.is_active:
            return False
        return self.due_at < (now or timezone.now())


class Notification(models.Model):
    """An in-app message for one user (approval decided, task completed or returned…)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    message = models.CharField(_("message"), max_length=300)
    url = models.CharField(_("link"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return self.message


# --- closing the loop: surveys and call-backs -----------------------------------------


class Survey(models.Model):
    """The satisfaction survey sent when a ticket is resolved (one per resolution).

    The customer reaches it through a signed, single-use link that expires.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="surveys")
    token = models.CharField(_("token"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("sent at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    # The one reminder the customer gets while the survey is unanswered (outbox).
    reminded_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    # Five dimensions, 1–5.
    efficiency = models.PositiveSmallIntegerField(_("efficiency"), null=True, blank=True)
    attitude = models.PositiveSmallIntegerField(_("attitude"), null=True, blank=True)
    clarity = models.PositiveSmallIntegerField(_("clarity"), null=True, blank=True)
    resolution = models.PositiveSmallIntegerField(_("resolution"), null=True, blank=True)
    empathy = models.PositiveSmallIntegerField(_("empathy"), null=True, blank=True)
    # Overall 0–10 (NPS: 9–10 promoters, 0–6 detractors).
    overall = models.PositiveSmallIntegerField(_("overall (0–10)"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)

    DIMENSIONS = ("efficiency", "attitude", "clarity", "resolution", "empathy")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("satisfaction survey")
        verbose_name_plural = _("satisfaction surveys")
        indexes = [models.Index(fields=["answered_at"], name="survey_answered")]
        constraints = [
            models.CheckConstraint(
                condition=Q(overall__isnull=True) | Q(overall__lte=10), name="survey_overall_0_10"
            )
        ]

    def __str__(self) -> str:
        return f"{self.ticket.number} ({self.overall if self.overall is not None else '—'})"

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None


class CallbackState(models.TextChoices):
    PENDING = "pending", _("Due")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class CallbackOutcome(models.TextChoices):
    REACHED = "reached", _("Reached the customer")
    NO_ANSWER = "no_answer", _("No answer")
    DECLINED = "declined", _("Customer declined to talk")


class FollowUpCall(models.Model):
    """A call-back the agent owes the customer: after resolution (day 3 and day 7), or to
    deliver a message on a channel that is answered by phone (`message`, day 0)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="callbacks")
    day = models.PositiveSmallIntegerField(_("day after resolution"))
    due_at = models.DateTimeField(_("due"), db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("agent"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="callbacks",
    )
    state = models.CharField(
        _("state"), max_length=20, choices=CallbackState.choices, default=CallbackState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    outcome = models.CharField(
        _("outcome"), max_length=20, choices=CallbackOutcome.choices, blank=True
    )
    note = models.TextField(_("note"), blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    recorded_at = models.DateTimeField(_("recorded at"), null=True, blank=True)
    # Set when the call delivers an outbound message (store and hotline channels).
    message = models.ForeignKey(
        "channels.OutboundMessage",
        verbose_name=_("message to deliver"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="callbacks",
    )

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("call-back")
        verbose_name_plural = _("call-backs")
        indexes = [models.Index(fields=["assignee", "state", "due_at"], name="callback_due")]

    def __str__(self) -> str:
        return f"{self.ticket.number} day {self.day}"
