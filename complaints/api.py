"""Staff REST API (DRF). Views are thin: they parse input and call services."""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.db.models import F, Prefetch, prefetch_related_objects
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, generics, pagination, parsers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from . import policies, selectors, services
from .filters import TicketFilter
from .models import Contact, Ticket, TimelineEvent
from .serializers import (
    AssignInput,
    ClassifyInput,
    CloseInput,
    ErrorOutput,
    EscalateInput,
    FirstResponseInput,
    FollowUpInput,
    MergeInput,
    ReopenInput,
    ReplyInput,
    ResolveInput,
    StartInput,
    TicketDetailOutput,
    TicketListOutput,
    TimelineEventOutput,
)

# PostgreSQL SQLSTATEs of a lost race: deadlock, serialization failure, lock not available.
_RACE_SQLSTATES = {"40P01", "40001", "55P03"}


def exception_handler(exc, context):
    """Map service exceptions onto the error codes of DESIGN.md §6."""
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}
        else:
            detail = {"detail": " ".join(str(m) for m in exc.messages)}
        set_rollback()
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, services.Conflict):
        set_rollback()
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if (
        isinstance(exc, OperationalError)
        and getattr(exc.__cause__, "sqlstate", None) in _RACE_SQLSTATES
    ):
        # Two requests locked the same rows in opposite orders and the database
        # picked this one to fail: nothing was written, the client may retry.
        set_rollback()
        return Response(
            {"detail": _("Someone else changed this ticket at the same moment; try again.")},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, RequestDataTooBig):
        # Django's limit (DATA_UPLOAD_MAX_MEMORY_SIZE) tripped while DRF read the body.
        return Response(
            {"detail": _("The request body is too large.")},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, TooManyFieldsSent):
        return Response({"detail": _("Too many fields.")}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return drf_exception_handler(exc, context)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a deeply nested document with 400.

    `[[[[…]]]]` makes the decoder raise RecursionError, which is not a
    ValueError and would surface as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError(
                _("JSON parse error - the document is nested too deeply.")
            ) from exc


class StaffApi:
    """Authentication and parsing shared by the staff API views."""

    # Token first, so an anonymous request gets 401 with `WWW-Authenticate: Token`
    # (DRF answers 403 when the first authenticator has no challenge to offer).
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    parser_classes = [JSONParser, parsers.FormParser, parsers.MultiPartParser]


NUMBER_PARAMETER = OpenApiParameter(
    "number",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description=gettext_lazy("Ticket number, e.g. TS20261122-000123."),
)
ERROR_RESPONSES = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description=gettext_lazy(
            'Bad input: `{"field": ["message", …]}`, or `{"detail": "message"}` when the '
            "refusal names several missing items (e.g. the four elements of a resolution)."
        ),
    ),
    401: OpenApiResponse(ErrorOutput, description=gettext_lazy("Not authenticated.")),
    403: OpenApiResponse(
        ErrorOutput, description=gettext_lazy("Not allowed for this user (role, team, owner).")
    ),
    404: OpenApiResponse(
        ErrorOutput, description=gettext_lazy("No such ticket, or not visible to this user.")
    ),
    409: OpenApiResponse(
        ErrorOutput,
        description=gettext_lazy(
            "The ticket is not in a state for this step, or it changed since `version`."
        ),
    ),
}


# --- authentication --------------------------------------------------------------


class TokenObtainApi(ObtainAuthToken):
    """Exchange a username and password for the user's API token."""

    parser_classes = StaffApi.parser_classes

    # Password guessing is throttled per client address (rate: settings "token").
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    @extend_schema(
        tags=["auth"],
        summary="Obtain an API token",
        description=(
            "Send `{username, password}`; use the returned token as "
            "`Authorization: Token <token>`. Session authentication works too."
        ),
        auth=[],
        responses={
            200: OpenApiResponse(
                {"type": "object", "properties": {"token": {"type": "string"}}},
                description=gettext_lazy("The user's token."),
            ),
            400: ERROR_RESPONSES[400],
            429: OpenApiResponse(ErrorOutput, description=gettext_lazy("Too many attempts.")),
        },
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


# --- tickets ---------------------------------------------------------------------


def _visible_tickets(user):
    """Tickets the user may list: service staff see all; others reach tickets only
    through collaboration tasks, which the list does not show."""
    if not policies.is_service_staff(user):
        return Ticket.objects.none()
    return Ticket.objects.for_queue().order_by("priority", F("due_at").asc(nulls_last=True), "id")


def _ticket_detail_response(request, number: str):
    ticket, _can_act = selectors.ticket_for_user(request.user, number)
    prefetch_related_objects(
        [ticket],
        Prefetch("events", queryset=TimelineEvent.objects.select_related("actor")),
        Prefetch("contacts", queryset=Contact.objects.select_related("channel")),
        "attachments",
    )
    data = TicketDetailOutput(ticket, context={"request": request}).data
    return Response(data)


class TicketPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class TicketListApi(StaffApi, generics.ListAPIView):
    pagination_class = TicketPagination
    serializer_class = TicketListOutput
    filterset_class = TicketFilter

    def get_queryset(self):
        return _visible_tickets(self.request.user)

    @extend_schema(
        tags=["tickets"],
        summary="List tickets",
        description=(
            "Tickets sorted by priority, then the next deadline. Service staff only; "
            "department staff get an empty list."
        ),
        responses={
            200: TicketListOutput(many=True),
            400: ERROR_RESPONSES[400],
            401: ERROR_RESPONSES[401],
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TicketDetailApi(StaffApi, APIView):
    @extend_schema(
        tags=["tickets"],
        summary="Ticket detail",
        description="The ticket, its timeline, contacts, evidence and the actions you may run now.",
        parameters=[NUMBER_PARAMETER],
        responses={200: TicketDetailOutput, 401: ERROR_RESPONSES[401], 404: ERROR_RESPONSES[404]},
    )
    def get(self, request, number: str):
        return _ticket_detail_response(request, number)


@dataclass(frozen=True)
class Transition:
    input: type
    run: Callable
    summary: str


# name → its input serializer and the service it runs. Each input's fields are the
# service's keyword arguments, plus `version` (passed on as `expected_version`).
TRANSITIONS = {
    "classify": Transition(
        ClassifyInput, services.ticket_classify, "Category and the three grading axes."
    ),
    "assign": Transition(AssignInput, services.ticket_assign, "Hand the ticket to an agent."),
    "first_response": Transition(
        FirstResponseInput,
        services.ticket_first_response,
        "Tell the customer the follow-up deadline and how to check the status.",
    ),
    "start": Transition(
        StartInput, services.ticket_start, "Start handling (after the first response)."
    ),
    "resolve": Transition(
        ResolveInput,
        services.ticket_resolve,
        "Resolve with the four elements: time, responsible person, solution, evidence.",
    ),
    "follow_up": Transition(
        FollowUpInput, services.ticket_follow_up, "Record the call-back or survey answer."
    ),
    "close": Transition(CloseInput, services.ticket_close, "Close a followed-up ticket."),
    "reopen": Transition(ReopenInput, services.ticket_reopen, "Reopen, with the reason."),
    "merge": Transition(
        MergeInput, services.ticket_merge, "Merge into another ticket of the same customer."
    ),
    "escalate": Transition(
        EscalateInput, services.ticket_escalate, "Raise the escalation level, with the reason."
    ),
}

_TRANSITION_DOC = "\n".join(
    f"- `{name}` ({t.input.__name__}): {t.summary}" for name, t in TRANSITIONS.items()
)


class TicketTransitionApi(StaffApi, APIView):
    @extend_schema(
        tags=["tickets"],
        summary="Run a lifecycle transition",
        description=(
            "Runs one step of the closed loop. The request body depends on `name`:\n\n"
            f"{_TRANSITION_DOC}\n\n"
            "Every body also takes an optional `version`: if the ticket changed since, "
            "the request is refused with 409. Responds with the updated ticket."
        ),
        parameters=[
            NUMBER_PARAMETER,
            OpenApiParameter(
                "name",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=list(TRANSITIONS),
                description=gettext_lazy("The transition to run."),
            ),
        ],
        request=PolymorphicProxySerializer(
            component_name="TransitionInput",
            serializers=[t.input for t in TRANSITIONS.values()],
            resource_type_field_name=None,
        ),
        examples=[
            OpenApiExample(
                "classify",
                request_only=True,
                value={"category": 2, "amount_level": 1, "impact": 1, "urgency": 2, "version": 1},
            ),
            OpenApiExample("assign", request_only=True, value={"assignee": "agent", "version": 2}),
            OpenApiExample(
                "first_response",
                request_only=True,
                value={
                    "message": "您好，工单号 TS20261122-000123 已受理，明天 18:00 前回复；"
                    "可在 https://closeloop.example/status/ 查询进度。",
                    "promised_followup_at": "2026-11-23T18:00:00+08:00",
                },
            ),
            OpenApiExample(
                "resolve",
                request_only=True,
                value={
                    "solution": "补发商品并赠送优惠券",
                    "responsible_person": "物流部 刘师傅",
                    "resolution_time": "2026-11-23T10:00:00+08:00",
                    "evidence_ref": "快递单号 SF123456",
                },
            ),
            OpenApiExample("follow_up", request_only=True, value={"note": "回访客户，表示满意"}),
            OpenApiExample("reopen", request_only=True, value={"reason": "客户反馈问题仍在"}),
            OpenApiExample("merge", request_only=True, value={"into": "TS20261122-000100"}),
            OpenApiExample("escalate", request_only=True, value={"reason": "客户要求投诉至 12315"}),
        ],
        responses={200: TicketDetailOutput, **ERROR_RESPONSES},
    )
    def post(self, request, number: str, name: str):
        ticket, _can_act = selectors.ticket_for_user(request.user, number)
        transition = TRANSITIONS.get(name)
        if transition is None:
            raise exceptions.NotFound(_("No transition named “%(name)s”.") % {"name": name})
        serializer = transition.input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        expected_version = data.pop("version", None)
        transition.run(ticket=ticket, actor=request.user, expected_version=expected_version, **data)
        return _ticket_detail_response(request, number)


class TicketReplyApi(StaffApi, APIView):
    @extend_schema(
        tags=["tickets"],
        summary="Reply to the customer or add an internal note",
        parameters=[NUMBER_PARAMETER],
        request=ReplyInput,
        responses={201: TimelineEventOutput, **ERROR_RESPONSES},
    )
    def post(self, request, number: str):
        ticket, _can_act = selectors.ticket_for_user(request.user, number)
        serializer = ReplyInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = services.ticket_reply(
            ticket=ticket, actor=request.user, **serializer.validated_data
        )
        return Response(TimelineEventOutput(event).data, status=status.HTTP_201_CREATED)
