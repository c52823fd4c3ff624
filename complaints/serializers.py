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

from . import policies, selectors
from .models import (
    Attachment,
    Category,
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
    note = _text_field(help_text=_("What the customer said in the call-back or survey."))


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
        url = attachment.file.url
        return request.build_absolute_uri(url) if request else url


class TicketDetailOutput(TicketListOutput):
    amount_level = GradeField(allow_null=True, read_only=True)
    urgency = GradeField(allow_null=True, read_only=True)
    merged_into = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    available_actions = serializers.SerializerMethodField()
    events = TimelineEventOutput(many=True)
    contacts = ContactOutput(many=True)
    attachments = AttachmentOutput(many=True)

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
        ]
        read_only_fields = fields

    @extend_schema_field(
        {"type": "array", "items": {"type": "string", "enum": list(policies.LIFECYCLE_ACTIONS)}}
    )
    def get_available_actions(self, ticket) -> list[str]:
        return selectors.available_actions(self.context["request"].user, ticket)


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField()
