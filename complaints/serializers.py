"""Serializers of the staff REST API.

Input serializers only parse: they turn JSON into the Python values the service
functions take (objects looked up by id/username/code, aware datetimes) and
refuse malformed input. Whether the values make sense for the ticket (a leaf
category, a promise in the future, the four elements) is decided by
`complaints.services`, so the rule is the same for the pages, the API and the
admin. Output serializers shape tickets and their timeline for reading.
"""

import datetime as dt

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from channels.models import Adapter, MessageKind, MessageState
from sla.serializers import ClockOutput, RiskAlertOutput

from . import policies, selectors
from .models import (
    Attachment,
    Category,
    CollaborationTask,
    Compensation,
    CompensationKind,
    Contact,
    Department,
    Impact,
    Level,
    Ticket,
    TimelineEvent,
)

# Ids and versions are 32-bit-safe positive integers on every backend; larger
# numbers are junk and are refused before they reach a query.
MAX_INT = 2**31 - 1


# --- parsing helpers -------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime that must carry its UTC offset.

    A naive time is ambiguous for an API client in another zone, and the customer
    is told the promised deadline, so it is refused rather than guessed.
    """

    default_error_messages = {
        "naive": _("Include the UTC offset, e.g. 2026-11-23T18:00:00+08:00."),
        "overflow": _("Datetime value out of range."),
    }

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        try:
            # Storing converts to UTC; a value that cannot be must not reach the database.
            value.astimezone(dt.UTC)
        except OverflowError:
            self.fail("overflow")
        return super().enforce_timezone(value)


@extend_schema_field(
    {
        "type": "integer",
        "minimum": Level.LOW,
        "maximum": Level.HIGH,
        "description": "1 low, 2 medium, 3 high",
    }
)
class GradeField(serializers.ChoiceField):
    """A grade of amount involved or urgency (1 low … 3 high).

    Documented as a range rather than an enum: two fields sharing one enum make
    drf-spectacular warn about the component's name.
    """

    def __init__(self, **kwargs):
        super().__init__(choices=Level.choices, **kwargs)


class LookupField(serializers.SlugRelatedField):
    """An object named by a short text key (a username, a team code).

    The key is checked as text first: PostgreSQL refuses NUL bytes and lone
    surrogates with an error rather than "no match", which would be a 500.
    """

    max_key_length = 150

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > self.max_key_length or "\x00" in data:
            self.fail("invalid")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("invalid")
        return super().to_internal_value(data)


def _version_field():
    return serializers.IntegerField(
        required=False,
        default=None,
        allow_null=True,
        min_value=1,
        max_value=MAX_INT,
        help_text=_(
            "The ticket version the client last saw; if someone changed the ticket since, "
            "the request is refused with 409."
        ),
    )


def _text_field(max_length=None, help_text=""):
    return serializers.CharField(
        required=False, default="", allow_blank=True, max_length=max_length, help_text=help_text
    )


# --- transition inputs -----------------------------------------------------------


class TransitionInput(serializers.Serializer):
    version = _version_field()


class ClassifyInput(TransitionInput):
    category = serializers.PrimaryKeyRelatedField(
        queryset=Category.objects.select_related("parent"),
        pk_field=serializers.IntegerField(min_value=1, max_value=MAX_INT),
        required=False,
        default=None,
        allow_null=True,
        help_text=_("Category id (a leaf of the category tree)."),
        error_messages={"does_not_exist": _("No category with id {pk_value}.")},
    )
    amount_level = GradeField(required=False, default=None, allow_null=True)
    impact = serializers.ChoiceField(
        choices=Impact.choices, required=False, default=None, allow_null=True
    )
    urgency = GradeField(required=False, default=None, allow_null=True)


class AssignInput(TransitionInput):
    assignee = LookupField(
        slug_field="username",
        queryset=get_user_model().objects.select_related("profile"),
        required=False,
        default=None,
        allow_null=True,
        help_text=_("Username of the agent who handles the ticket."),
        error_messages={"does_not_exist": _("No user named “{value}”.")},
    )
    team = LookupField(
        slug_field="code",
        queryset=Department.objects.filter(kind=Department.Kind.SERVICE),
        required=False,
        default=None,
        allow_null=True,
        help_text=_(
            "Code of the customer-service team; defaults to the ticket's or the assignee's."
        ),
        error_messages={"does_not_exist": _("No customer-service team with code “{value}”.")},
    )


class FirstResponseInput(TransitionInput):
    message = _text_field(
        help_text=_(
            "The message to the customer; it must contain the ticket number and the status link."
        )
    )
    promised_followup_at = AwareDateTimeField(
        required=False,
        default=None,
        allow_null=True,
        help_text=_("When the customer will hear back (ISO 8601 with UTC offset)."),
    )


class StartInput(TransitionInput):
    pass


class ResolveInput(TransitionInput):
    solution = _text_field(help_text=_("What was done for the customer."))
    responsible_person = _text_field(
        max_length=Ticket._meta.get_field("responsible_person").max_length,
        help_text=_("Who carried the solution out."),
    )
    resolution_time = AwareDateTimeField(
        required=False,
        default=None,
        allow_null=True,
        help_text=_("When the solution was carried out (ISO 8601 with UTC offset)."),
    )
    evidence_ref = _text_field(
        max_length=Ticket._meta.get_field("evidence_ref").max_length,
        help_text=_(
            "Evidence reference (waybill, call recording id…); optional if an attachment exists."
        ),
    )


class FollowUpInput(TransitionInput):
    note = _text_field(
        help_text=_(
            "What the customer said in the call-back; may be empty once they answered the survey."
        )
    )


class CloseInput(TransitionInput):
    pass


class ReopenInput(TransitionInput):
    reason = _text_field(help_text=_("Why the ticket is reopened."))


class MergeInput(TransitionInput):
    into = _text_field(
        max_length=Ticket._meta.get_field("number").max_length,
        help_text=_("Number of the ticket of the same customer that carries on."),
    )


class EscalateInput(TransitionInput):
    reason = _text_field(help_text=_("Why the ticket is escalated."))


class ReplyInput(serializers.Serializer):
    body = _text_field(help_text=_("The reply to the customer, or the internal note."))
    internal = serializers.BooleanField(
        required=False, default=False, help_text=_("An internal note for colleagues, not sent.")
    )


# --- outputs ---------------------------------------------------------------------


class UserOutput(serializers.Serializer):
    username = serializers.CharField()
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.get_username()


class CustomerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    masked_phone = serializers.CharField()
    vip_level = serializers.IntegerField()


class ChannelOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class CategoryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    full_name = serializers.CharField()


class TeamOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class TicketListOutput(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display")
    priority_display = serializers.CharField(source="get_priority_display")
    customer = CustomerOutput()
    channel = ChannelOutput()
    category = CategoryOutput(allow_null=True)
    assignee = UserOutput(allow_null=True)
    team = TeamOutput(allow_null=True)

    class Meta:
        model = Ticket
        fields = [
            "number",
            "status",
            "status_display",
            "priority",
            "priority_display",
            "subject",
            "order_no",
            "customer",
            "channel",
            "category",
            "assignee",
            "team",
            "due_at",
            "escalation_level",
            "reopen_count",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = fields


class TimelineEventOutput(serializers.ModelSerializer):
    kind_display = serializers.CharField(source="get_kind_display")
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    before = serializers.JSONField()
    after = serializers.JSONField()

    class Meta:
        model = TimelineEvent
        fields = ["id", "kind", "kind_display", "message", "actor", "before", "after", "created_at"]
        read_only_fields = fields


class ContactOutput(serializers.ModelSerializer):
    channel = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Contact
        fields = ["id", "channel", "external_id", "body", "occurred_at", "created_at"]
        read_only_fields = fields


class AttachmentOutput(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "name", "content_type", "size", "url", "created_at"]
        read_only_fields = fields

    def get_url(self, attachment) -> str:
        request = self.context.get("request")
        url = attachment.get_absolute_url()
        return request.build_absolute_uri(url) if request else url


class OutboundMessageOutput(serializers.Serializer):
    """A message the portal sent (or is sending) the customer, with its delivery state."""

    message_id = serializers.UUIDField()
    event = serializers.IntegerField(source="event_id", allow_null=True)
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    adapter = serializers.ChoiceField(choices=Adapter.choices)
    state = serializers.ChoiceField(choices=MessageState.choices)
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)


class TicketDetailOutput(TicketListOutput):
    amount_level = GradeField(allow_null=True, read_only=True)
    urgency = GradeField(allow_null=True, read_only=True)
    merged_into = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    available_actions = serializers.SerializerMethodField()
    events = TimelineEventOutput(many=True)
    contacts = ContactOutput(many=True)
    attachments = AttachmentOutput(many=True)
    outbound_messages = OutboundMessageOutput(many=True)
    # SLA: the four stage clocks and the open risk alerts (prefetched by the API view).
    sla_clocks = ClockOutput(many=True, read_only=True)
    risk_alerts = RiskAlertOutput(
        many=True,
        read_only=True,
        source="open_risk_alerts",
        help_text=_("Risk signals raised on the ticket and not yet acknowledged."),
    )

    class Meta(TicketListOutput.Meta):
        fields = [
            *TicketListOutput.Meta.fields,
            "body",
            "amount_level",
            "impact",
            "urgency",
            "promised_followup_at",
            # The four elements of a resolution.
            "resolution_time",
            "responsible_person",
            "solution",
            "evidence_ref",
            "followup_note",
            # Step timestamps.
            "classified_at",
            "assigned_at",
            "first_responded_at",
            "first_response_sent_at",
            "started_at",
            "resolved_at",
            "followed_up_at",
            "closed_at",
            # Deadlines.
            "first_response_due_at",
            "resolve_due_at",
            "close_due_at",
            "contact_count",
            "merged_into",
            "available_actions",
            "events",
            "contacts",
            "attachments",
            "outbound_messages",
            "sla_clocks",
            "risk_alerts",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {"type": "array", "items": {"type": "string", "enum": list(policies.LIFECYCLE_ACTIONS)}}
    )
    def get_available_actions(self, ticket) -> list[str]:
        return selectors.available_actions(self.context["request"].user, ticket)


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField()


class RefusalOutput(ErrorOutput):
    """A 403; above a compensation cap it also says who can approve."""

    code = serializers.CharField(
        required=False, help_text=_("`cap_exceeded` when the amount is above your authority.")
    )
    approver_tier = serializers.IntegerField(
        required=False,
        help_text=_("With `cap_exceeded`: the lowest tier that can approve it (2 or 3)."),
    )


# --- compensation ------------------------------------------------------------------

_KIND_VALUES = ", ".join(CompensationKind.values)
MAX_AMOUNT_TEXT = 40


@extend_schema_field(
    {
        "oneOf": [{"type": "string", "example": "10.00"}, {"type": "number", "example": 10}],
        "description": 'CNY, more than zero, at most two decimals, e.g. 10 or "9.90".',
    }
)
class AmountField(serializers.Field):
    """An amount as a JSON number or string, passed on as text.

    Whether it is a valid amount (positive, two decimals, plausible) is decided by
    `services.parse_amount`, the same rule as on the pages; this field only refuses
    what is not a scalar (booleans, lists, objects, null).
    """

    default_error_messages = {"invalid": _("Enter an amount in yuan, e.g. 10 or 9.90.")}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            self.fail("invalid")
        text = str(data) if not isinstance(data, str) else data
        if len(text) > MAX_AMOUNT_TEXT:
            self.fail("invalid")
        return text

    def to_representation(self, value):
        return str(value)


class CompensationInput(serializers.Serializer):
    kind = serializers.CharField(
        max_length=40, help_text=_("One of: %(kinds)s.") % {"kinds": _KIND_VALUES}
    )
    amount = AmountField()
    reason = _text_field(help_text=_("Why the customer is compensated (up to 1,000 characters)."))
    request = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_(
            "Ask for approval instead of granting: needed when the ticket's total would go "
            "above your authority."
        ),
    )


class CompensationDecisionInput(serializers.Serializer):
    note = _text_field(help_text=_("Optional note for the requester."))


class CompensationRejectInput(serializers.Serializer):
    reason = _text_field(help_text=_("Why the request is rejected (required)."))


@extend_schema_field(
    {
        "type": "string",
        "description": "One of: " + _KIND_VALUES + ".",
    }
)
class CompensationKindField(serializers.CharField):
    """Documented without an enum: a second `kind` enum would rename the timeline's."""


class CompensationOutput(serializers.ModelSerializer):
    ticket = serializers.SlugRelatedField(slug_field="number", read_only=True)
    kind = CompensationKindField(read_only=True)
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, read_only=True)
    state_display = serializers.CharField(source="get_state_display", read_only=True)
    approver_tier = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text=_("For a request: the lowest tier that can approve it (2 or 3)."),
    )
    requested_by = UserOutput(read_only=True)
    decided_by = UserOutput(read_only=True, allow_null=True)
    ticket_total = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        read_only=True,
        help_text=_("What the customer gets on this ticket now (granted plus approved)."),
    )

    class Meta:
        model = Compensation
        fields = [
            "id",
            "ticket",
            "kind",
            "kind_display",
            "amount",
            "reason",
            "state",
            "state_display",
            "approver_tier",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_note",
            "created_at",
            "ticket_total",
        ]
        read_only_fields = fields


class TicketCompensationsOutput(serializers.Serializer):
    compensations = CompensationOutput(many=True)
    total = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        help_text=_("What the customer gets on this ticket (granted plus approved)."),
    )


class CompensationQuery(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=Compensation._meta.get_field("state").choices,
        required=False,
        help_text=_(
            "Without it: the requests waiting for your approval. With it: every "
            "compensation in that state (customer-service staff)."
        ),
    )


# --- collaboration tasks -------------------------------------------------------------


class TaskSpecInput(serializers.Serializer):
    department = serializers.CharField(
        max_length=40, help_text=_("Code of the collaborating department, e.g. logistics.")
    )
    responsibility = _text_field(help_text=_("What this department is responsible for."))
    instruction = _text_field(
        help_text=_("What the department should do; defaults to the shared instruction.")
    )
    respond_due_at = AwareDateTimeField(
        required=False,
        default=None,
        allow_null=True,
        help_text=_("Claim by (ISO 8601 with UTC offset); defaults to the department's time."),
    )
    complete_due_at = AwareDateTimeField(
        required=False,
        default=None,
        allow_null=True,
        help_text=_("Complete by (ISO 8601 with UTC offset); defaults to the department's time."),
    )


class TaskOpenInput(serializers.Serializer):
    tasks = TaskSpecInput(
        many=True,
        max_length=10,
        allow_empty=True,
        help_text=_("One entry per department (at most 10)."),
    )
    instruction = _text_field(help_text=_("Shared instruction for entries without their own."))


class TaskTicketOutput(serializers.ModelSerializer):
    class Meta:
        model = Ticket
        fields = ["number", "subject", "status"]
        read_only_fields = fields


class DepartmentOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class TaskOutput(serializers.ModelSerializer):
    ticket = TaskTicketOutput(read_only=True)
    department = DepartmentOutput(read_only=True)
    state_display = serializers.CharField(source="get_state_display", read_only=True)
    assignee = UserOutput(read_only=True, allow_null=True)
    created_by = UserOutput(read_only=True)
    is_overdue = serializers.SerializerMethodField(
        help_text=_("Still active and past the deadline that matters now.")
    )
    events = TimelineEventOutput(many=True, read_only=True)

    class Meta:
        model = CollaborationTask
        fields = [
            "id",
            "ticket",
            "department",
            "responsibility",
            "instruction",
            "state",
            "state_display",
            "assignee",
            "created_by",
            "respond_due_at",
            "complete_due_at",
            "is_overdue",
            "claimed_at",
            "completed_at",
            "result",
            "return_reason",
            "created_at",
            "events",
        ]
        read_only_fields = fields

    def get_is_overdue(self, task) -> bool:
        return task.is_overdue(self.context.get("now"))


class TaskListOutput(serializers.Serializer):
    tasks = TaskOutput(many=True)


class BoardCountsOutput(serializers.Serializer):
    unclaimed = serializers.IntegerField()
    mine = serializers.IntegerField()
    department = serializers.IntegerField()
    done = serializers.IntegerField()


class TaskBoardOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    counts = BoardCountsOutput(help_text=_("Badge counts of every tab."))
    results = TaskOutput(many=True)


class TaskBoardQuery(serializers.Serializer):
    tab = serializers.ChoiceField(
        choices=[(tab, tab) for tab in selectors.BOARD_TABS],
        required=False,
        default="unclaimed",
        help_text=_(
            "unclaimed (to claim), mine (claimed by you), department (claimed in the "
            "department), done (completed or returned)."
        ),
    )


class TaskCompleteInput(serializers.Serializer):
    result = _text_field(help_text=_("The result, for the agent and the customer."))


class TaskReasonInput(serializers.Serializer):
    reason = _text_field(help_text=_("Why (required)."))


class TaskNoteInput(serializers.Serializer):
    body = _text_field(help_text=_("What has been done so far."))


class TaskReassignInput(serializers.Serializer):
    assignee = LookupField(
        slug_field="username",
        queryset=get_user_model().objects.select_related("profile"),
        help_text=_("Username of a member of the task's department."),
        error_messages={"does_not_exist": _("No user named “{value}”.")},
    )


class TaskResendInput(serializers.Serializer):
    instruction = _text_field(help_text=_("Updated instruction; defaults to the previous one."))


# --- what department staff see of a ticket --------------------------------------------


class DepartmentCustomerOutput(serializers.Serializer):
    name = serializers.CharField()
    masked_phone = serializers.CharField()


class DepartmentTicketOutput(serializers.ModelSerializer):
    """The part of a ticket a collaborating department needs for its tasks."""

    status_display = serializers.CharField(source="get_status_display")
    priority_display = serializers.CharField(source="get_priority_display")
    customer = DepartmentCustomerOutput()
    category = CategoryOutput(allow_null=True)
    tasks = TaskOutput(many=True, source="department_tasks")

    class Meta:
        model = Ticket
        fields = [
            "number",
            "status",
            "status_display",
            "priority",
            "priority_display",
            "subject",
            "body",
            "order_no",
            "customer",
            "category",
            "created_at",
            "tasks",
        ]
        read_only_fields = fields
