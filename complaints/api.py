"""Staff REST API (DRF). Views are thin: they parse input and call services."""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import (
    DecimalField,
    F,
    OuterRef,
    Prefetch,
    Subquery,
    Sum,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.defaults import page_not_found
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import (
    exceptions,
    generics,
    pagination,
    parsers,
    permissions,
    serializers,
    status,
)
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from sla.models import RiskAlert

from . import policies, selectors, services
from .filters import TicketFilter
from .models import PAID_COMPENSATION_STATES, Compensation, Contact, Ticket, TimelineEvent
from .serializers import (
    AssignInput,
    ClassifyInput,
    CloseInput,
    CompensationDecisionInput,
    CompensationInput,
    CompensationOutput,
    CompensationQuery,
    CompensationRejectInput,
    DepartmentTicketOutput,
    ErrorOutput,
    EscalateInput,
    FirstResponseInput,
    FollowUpInput,
    MergeInput,
    RefusalOutput,
    ReopenInput,
    ReplyInput,
    ResolveInput,
    StartInput,
    TaskBoardOutput,
    TaskBoardQuery,
    TaskCompleteInput,
    TaskListOutput,
    TaskNoteInput,
    TaskOpenInput,
    TaskOutput,
    TaskReasonInput,
    TaskReassignInput,
    TaskResendInput,
    TaskSpecInput,
    TicketCompensationsOutput,
    TicketDetailOutput,
    TicketListOutput,
    TimelineEventOutput,
)

# PostgreSQL SQLSTATEs of a lost race: deadlock, serialization failure, lock not available.
_RACE_SQLSTATES = {"40P01", "40001", "55P03"}


def not_found(request, exception=None):
    """404 for any URL: JSON under /api/ (a client parses it), the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return page_not_found(request, exception)


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
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is unreachable (restart, fail-over, lost connection): say
        # "later" (503), not "broken" (500). The open transaction is rolled back; a
        # retry is safe because the writes a client retries are idempotent (intake
        # on external_id) or refused as a conflict (transitions check the state).
        set_rollback()
        return Response(
            {"detail": _("The service is unavailable for a moment; send the request again.")},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, RequestDataTooBig):
        # Django's limit (DATA_UPLOAD_MAX_MEMORY_SIZE) tripped while DRF read the body.
        return Response(
            {"detail": _("The request body is too large.")},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, TooManyFieldsSent):
        return Response({"detail": _("Too many fields.")}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, services.CapExceeded):
        # Above the user's authority: say who can approve, so a client can offer
        # to send it as a request (`"request": true`).
        set_rollback()
        return Response(
            {"detail": str(exc), "code": "cap_exceeded", "approver_tier": exc.approver_tier},
            status=status.HTTP_403_FORBIDDEN,
        )
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
# A paginated list answers 404 `{"detail": "Invalid page."}` past its last page.
INVALID_PAGE = OpenApiResponse(ErrorOutput, description=gettext_lazy("No such page."))

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
    """Tickets the user may list: service staff see all; department staff the tickets
    their department has collaboration tasks on; anyone else none."""
    if policies.is_service_staff(user):
        qs = Ticket.objects.for_queue()
    elif policies.is_department_staff(user):
        qs = Ticket.objects.for_queue().filter(
            pk__in=selectors.department_tickets(user).values("pk")
        )
    else:
        return Ticket.objects.none()
    return qs.order_by("priority", F("due_at").asc(nulls_last=True), "id")


def _refuse_unless_service_staff(can_act: bool, refusal: Callable[[], str | None]) -> None:
    """Department staff may read a ticket of their task but not work it (403)."""
    if not can_act:
        raise DjangoPermissionDenied(refusal() or _("Only customer-service staff can do this."))


def _task_context(request) -> dict:
    return {"request": request, "now": timezone.now()}


def _task_events():
    return Prefetch("events", queryset=TimelineEvent.objects.select_related("actor"))


def _tasks_data(request, tasks) -> list:
    prefetch_related_objects(tasks, _task_events())
    return TaskOutput(tasks, many=True, context=_task_context(request)).data


def _department_ticket_response(request, ticket: Ticket) -> Response:
    """What department staff see of a ticket: the problem, the customer's name and
    masked phone, and their own department's tasks; no contacts, no timeline."""
    ticket.department_tasks = selectors.ticket_tasks(ticket, request.user)
    prefetch_related_objects(ticket.department_tasks, _task_events())
    data = DepartmentTicketOutput(ticket, context=_task_context(request)).data
    return Response(data)


def _ticket_detail_response(request, number: str):
    ticket, can_act = selectors.ticket_for_user(request.user, number)
    if not can_act:
        return _department_ticket_response(request, ticket)
    prefetch_related_objects(
        [ticket],
        Prefetch("events", queryset=TimelineEvent.objects.select_related("actor")),
        Prefetch("contacts", queryset=Contact.objects.select_related("channel")),
        "attachments",
        "outbound_messages",
        "sla_clocks",  # SLA: the four stage clocks
        Prefetch(  # SLA: open risk alerts
            "risk_alerts",
            queryset=RiskAlert.objects.filter(acknowledged_at__isnull=True).select_related(
                "acknowledged_by"
            ),
            to_attr="open_risk_alerts",
        ),
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
            "Tickets sorted by priority, then the next deadline. Customer-service staff see "
            "every ticket; department staff only the tickets their department has "
            "collaboration tasks on."
        ),
        responses={
            200: TicketListOutput(many=True),
            400: ERROR_RESPONSES[400],
            401: ERROR_RESPONSES[401],
            404: INVALID_PAGE,
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TicketDetailApi(StaffApi, APIView):
    @extend_schema(
        tags=["tickets"],
        summary="Ticket detail",
        description=(
            "For customer-service staff: the ticket, its timeline, contacts, evidence and the "
            "actions you may run now. For department staff (tickets their department has "
            "tasks on): the problem, the customer's name and masked phone, and their "
            "department's tasks with their progress."
        ),
        parameters=[NUMBER_PARAMETER],
        responses={
            200: PolymorphicProxySerializer(
                component_name="TicketView",
                serializers=[TicketDetailOutput, DepartmentTicketOutput],
                resource_type_field_name=None,
            ),
            401: ERROR_RESPONSES[401],
            404: ERROR_RESPONSES[404],
        },
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
        ticket, can_act = selectors.ticket_for_user(request.user, number)
        _refuse_unless_service_staff(
            can_act, lambda: policies.action_refusal(request.user, ticket, name)
        )
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
        ticket, can_act = selectors.ticket_for_user(request.user, number)
        _refuse_unless_service_staff(
            can_act, lambda: policies.action_refusal(request.user, ticket, "reply")
        )
        serializer = ReplyInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = services.ticket_reply(
            ticket=ticket, actor=request.user, **serializer.validated_data
        )
        return Response(TimelineEventOutput(event).data, status=status.HTTP_201_CREATED)


# --- compensation ------------------------------------------------------------------

ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)

COMPENSATION_ERRORS = {
    **ERROR_RESPONSES,
    403: OpenApiResponse(
        RefusalOutput,
        description=gettext_lazy(
            "Not allowed for this user (role, team, own request), or above the user's "
            'authority: then `{"code": "cap_exceeded", "approver_tier": 2}`; send the same '
            'body with `"request": true` to ask for approval.'
        ),
    ),
    404: OpenApiResponse(
        ErrorOutput,
        description=gettext_lazy("No such compensation or ticket, or not visible to this user."),
    ),
    409: OpenApiResponse(
        ErrorOutput,
        description=gettext_lazy(
            "The request was already decided or withdrawn, or its ticket is closed."
        ),
    ),
}


def _with_ticket_totals(queryset):
    """Annotate each row with its ticket's paid total (one subquery, no N+1)."""
    paid = (
        Compensation.objects.filter(
            ticket=OuterRef("ticket_id"), state__in=PAID_COMPENSATION_STATES
        )
        .order_by()
        .values("ticket")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    money = DecimalField(max_digits=12, decimal_places=2)
    return queryset.annotate(
        ticket_total=Coalesce(
            Subquery(paid, output_field=money), Value(Decimal("0.00")), output_field=money
        )
    )


def _compensation_response(pk: int, status_code=status.HTTP_200_OK) -> Response:
    compensation = _with_ticket_totals(
        Compensation.objects.select_related("ticket", "requested_by", "decided_by")
    ).get(pk=pk)
    return Response(CompensationOutput(compensation).data, status=status_code)


def _compensation_for_user(user, pk: str) -> Compensation:
    """A compensation the user may read (customer-service staff); 404 otherwise."""
    compensation = selectors.compensations_for_user(user).filter(pk=int(pk)).first()
    if compensation is None:
        raise Http404("No such compensation")
    return compensation


class TicketCompensationsApi(StaffApi, APIView):
    @extend_schema(
        tags=["compensations"],
        summary="List a ticket's compensation",
        description="Every grant and request on the ticket, oldest first, and the paid total.",
        parameters=[NUMBER_PARAMETER],
        responses={
            200: TicketCompensationsOutput,
            401: ERROR_RESPONSES[401],
            403: ERROR_RESPONSES[403],
            404: ERROR_RESPONSES[404],
        },
    )
    def get(self, request, number: str):
        ticket, can_act = selectors.ticket_for_user(request.user, number)
        _refuse_unless_service_staff(
            can_act, lambda: policies.compensation_refusal(request.user, ticket)
        )
        rows, total = selectors.ticket_compensations(ticket)
        for row in rows:
            row.ticket = ticket
            row.ticket_total = total
        data = TicketCompensationsOutput({"compensations": rows, "total": total}).data
        return Response(data)

    @extend_schema(
        tags=["compensations"],
        summary="Grant or request compensation",
        description=(
            "Grants at once when the ticket's total stays within your authority (defaults: "
            "tier 1 ¥10, tier 2 ¥100 per ticket, in total). Above it the grant is refused "
            'with 403 `code: cap_exceeded`; send `"request": true` to route it to the lowest '
            "tier that can approve it. Closed or merged tickets refuse compensation (400)."
        ),
        parameters=[NUMBER_PARAMETER],
        request=CompensationInput,
        examples=[
            OpenApiExample(
                "grant",
                request_only=True,
                value={"kind": "coupon", "amount": "10.00", "reason": "物流延误致歉"},
            ),
            OpenApiExample(
                "request",
                request_only=True,
                value={
                    "kind": "refund",
                    "amount": 50,
                    "reason": "商品破损部分退款",
                    "request": True,
                },
            ),
        ],
        responses={201: CompensationOutput, **COMPENSATION_ERRORS},
    )
    def post(self, request, number: str):
        ticket, can_act = selectors.ticket_for_user(request.user, number)
        _refuse_unless_service_staff(
            can_act, lambda: policies.compensation_refusal(request.user, ticket)
        )
        serializer = CompensationInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        compensation = services.compensation_grant(
            ticket=ticket, actor=request.user, **serializer.validated_data
        )
        return _compensation_response(compensation.pk, status.HTTP_201_CREATED)


class CompensationPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class CompensationListApi(StaffApi, generics.ListAPIView):
    pagination_class = CompensationPagination
    serializer_class = CompensationOutput
    filter_backends = []

    def get_queryset(self):
        user = self.request.user
        query = CompensationQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        state = query.validated_data.get("state")
        if state:
            queryset = selectors.compensations_for_user(user).filter(state=state)
        else:
            queryset = selectors.pending_approvals(user)
        return _with_ticket_totals(queryset.select_related("ticket", "requested_by", "decided_by"))

    @extend_schema(
        tags=["compensations"],
        summary="Approvals queue",
        description=(
            "Without `state`: the requests you may decide, oldest first (team leads: their "
            "team's requests up to ¥100; supervisors: all), never your own. With `state`: "
            "every compensation in that state, newest first (customer-service staff; others "
            "get an empty list)."
        ),
        parameters=[CompensationQuery],
        responses={
            200: CompensationOutput(many=True),
            400: ERROR_RESPONSES[400],
            401: ERROR_RESPONSES[401],
            404: INVALID_PAGE,
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CompensationApproveApi(StaffApi, APIView):
    @extend_schema(
        tags=["compensations"],
        summary="Approve a compensation request",
        description=(
            "Team leads approve their team's requests routed to tier 2; supervisors any. "
            "Nobody approves their own request. The requester is notified."
        ),
        parameters=[ID_PARAMETER],
        request=CompensationDecisionInput,
        responses={200: CompensationOutput, **COMPENSATION_ERRORS},
    )
    def post(self, request, id: str):
        compensation = _compensation_for_user(request.user, id)
        serializer = CompensationDecisionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.compensation_approve(
            compensation=compensation, actor=request.user, **serializer.validated_data
        )
        return _compensation_response(compensation.pk)


class CompensationRejectApi(StaffApi, APIView):
    @extend_schema(
        tags=["compensations"],
        summary="Reject a compensation request",
        description="Rejects with a reason (required); the requester is notified.",
        parameters=[ID_PARAMETER],
        request=CompensationRejectInput,
        responses={200: CompensationOutput, **COMPENSATION_ERRORS},
    )
    def post(self, request, id: str):
        compensation = _compensation_for_user(request.user, id)
        serializer = CompensationRejectInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.compensation_reject(
            compensation=compensation, actor=request.user, **serializer.validated_data
        )
        return _compensation_response(compensation.pk)


class CompensationCancelApi(StaffApi, APIView):
    @extend_schema(
        tags=["compensations"],
        summary="Withdraw a compensation request",
        description="The requester (or an approver who could decide it) withdraws a pending request.",
        parameters=[ID_PARAMETER],
        request=None,
        responses={200: CompensationOutput, **COMPENSATION_ERRORS},
    )
    def post(self, request, id: str):
        compensation = _compensation_for_user(request.user, id)
        services.compensation_cancel(compensation=compensation, actor=request.user)
        return _compensation_response(compensation.pk)


# --- collaboration tasks -------------------------------------------------------------

TASK_ERRORS = {
    **ERROR_RESPONSES,
    404: OpenApiResponse(
        ErrorOutput,
        description=gettext_lazy(
            "No such task, or not visible to this user (other departments' tasks)."
        ),
    ),
    409: OpenApiResponse(
        ErrorOutput,
        description=gettext_lazy(
            "The task is not in a state for this action (e.g. a colleague claimed it first)."
        ),
    ),
}


def _task_response(request, pk: int, status_code=status.HTTP_200_OK) -> Response:
    task = selectors.visible_tasks(request.user).get(pk=pk)
    return Response(_tasks_data(request, [task])[0], status=status_code)


class TicketTasksApi(StaffApi, APIView):
    @extend_schema(
        tags=["tasks"],
        summary="List a ticket's collaboration tasks",
        description=(
            "Oldest first, with their progress. Department staff see only their department's tasks."
        ),
        parameters=[NUMBER_PARAMETER],
        responses={200: TaskListOutput, 401: ERROR_RESPONSES[401], 404: ERROR_RESPONSES[404]},
    )
    def get(self, request, number: str):
        ticket, _can_act = selectors.ticket_for_user(request.user, number)
        tasks = selectors.ticket_tasks(ticket, request.user)
        return Response({"tasks": _tasks_data(request, tasks)})

    @extend_schema(
        tags=["tasks"],
        summary="Open collaboration tasks",
        description=(
            "Opens one task per department (多部门会诊). Send either several at once, "
            '`{"tasks": [{"department": "logistics", "responsibility": …}, …], '
            '"instruction": "shared"}`, or one task flat, `{"department": "tech", '
            '"responsibility": …, "instruction": …}`. Deadlines default to the department\'s '
            "response and completion times. Refusals of one entry are keyed `tasks[i]` "
            "(`tasks[0]` for the flat form). Closed or merged tickets refuse tasks (400)."
        ),
        parameters=[NUMBER_PARAMETER],
        request=PolymorphicProxySerializer(
            component_name="TaskOpen",
            serializers=[TaskOpenInput, TaskSpecInput],
            resource_type_field_name=None,
        ),
        examples=[
            OpenApiExample(
                "several departments",
                request_only=True,
                value={
                    "tasks": [
                        {"department": "logistics", "responsibility": "核实物流轨迹"},
                        {"department": "installation", "responsibility": "上门安装"},
                    ],
                    "instruction": "客户反映快递三天未到，请核实并安排",
                },
            ),
            OpenApiExample(
                "one department",
                request_only=True,
                value={
                    "department": "tech",
                    "responsibility": "排查 App 登录异常",
                    "instruction": "客户无法登录，请排查账户状态",
                    "respond_due_at": "2026-11-23T10:00:00+08:00",
                },
            ),
        ],
        responses={
            201: TaskListOutput,
            **{code: ERROR_RESPONSES[code] for code in (400, 401, 403, 404)},
        },
    )
    def post(self, request, number: str):
        ticket, can_act = selectors.ticket_for_user(request.user, number)
        _refuse_unless_service_staff(
            can_act, lambda: policies.task_open_refusal(request.user, ticket)
        )
        data = request.data
        if isinstance(data, dict) and "tasks" in data:
            if "department" in data:
                raise exceptions.ValidationError(
                    {"department": [_("Send either a list of tasks or one task, not both.")]}
                )
            serializer = TaskOpenInput(data=data)
            serializer.is_valid(raise_exception=True)
            entries = serializer.validated_data["tasks"]
            shared = serializer.validated_data["instruction"]
        else:
            serializer = TaskSpecInput(data=data)
            serializer.is_valid(raise_exception=True)
            entries, shared = [serializer.validated_data], ""
        specs = [services.TaskSpec(**entry) for entry in entries]
        created = services.task_open(
            ticket=ticket, actor=request.user, specs=specs, instruction=shared
        )
        tasks = list(
            selectors.visible_tasks(request.user)
            .filter(pk__in=[task.pk for task in created])
            .order_by("created_at", "id")
        )
        return Response({"tasks": _tasks_data(request, tasks)}, status=status.HTTP_201_CREATED)


class TaskPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class TaskBoardApi(StaffApi, APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Task board",
        operation_id="v1_tasks_board",
        description=(
            "One tab of the department's board, most urgent first, with the badge counts of "
            "every tab. Department staff see their department's tasks; customer-service "
            "staff see every department's."
        ),
        parameters=[TaskBoardQuery, OpenApiParameter("page", OpenApiTypes.INT)],
        responses={
            200: TaskBoardOutput,
            400: ERROR_RESPONSES[400],
            401: ERROR_RESPONSES[401],
            404: INVALID_PAGE,
        },
    )
    def get(self, request):
        query = TaskBoardQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        tasks = selectors.task_board(request.user, tab=query.validated_data["tab"])
        paginator = TaskPagination()
        page = paginator.paginate_queryset(tasks, request, view=self)
        return Response(
            {
                "count": paginator.page.paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "counts": selectors.board_counts(request.user),
                "results": _tasks_data(request, page),
            }
        )


class TaskDetailApi(StaffApi, APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Collaboration task",
        description="The task, its ticket's number and subject, and its events.",
        parameters=[ID_PARAMETER],
        responses={200: TaskOutput, 401: ERROR_RESPONSES[401], 404: TASK_ERRORS[404]},
    )
    def get(self, request, id: str):
        task = selectors.task_for_user(request.user, id)
        return Response(_tasks_data(request, [task])[0])


class TaskActionApi(StaffApi, APIView):
    """Look the task up (404 if not visible), parse the body, run the service."""

    input_class: type | None = None

    def run(self, task, actor, data):
        raise NotImplementedError

    def post(self, request, id: str):
        task = selectors.task_for_user(request.user, id)
        data = {}
        if self.input_class is not None:
            serializer = self.input_class(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        self.run(task, request.user, data)
        return _task_response(request, task.pk)


def _task_action_schema(summary: str, description: str, request=None, **responses):
    return extend_schema(
        tags=["tasks"],
        summary=summary,
        description=description,
        parameters=[ID_PARAMETER],
        request=request,
        responses={200: TaskOutput, **TASK_ERRORS, **responses},
    )


class TaskClaimApi(TaskActionApi):
    @_task_action_schema(
        "Claim a task",
        "Takes an unclaimed task of your department. Exactly one of several claimers "
        "wins; the others get 409.",
    )
    def post(self, request, id: str):
        return super().post(request, id)

    def run(self, task, actor, data):
        return services.task_claim(task=task, actor=actor)


class TaskCompleteApi(TaskActionApi):
    input_class = TaskCompleteInput

    @_task_action_schema(
        "Complete a task",
        "Finishes the task with its result; the agent is notified.",
        TaskCompleteInput,
    )
    def post(self, request, id: str):
        return super().post(request, id)

    def run(self, task, actor, data):
        return services.task_complete(task=task, actor=actor, **data)


class TaskReturnApi(TaskActionApi):
    input_class = TaskReasonInput

    @_task_action_schema(
        "Return a task to the agent",
        "Hands the task back with a reason (not ours, information missing…); the agent "
        "is notified and may send it again.",
        TaskReasonInput,
    )
    def post(self, request, id: str):
        return super().post(request, id)

    def run(self, task, actor, data):
        return services.task_return(task=task, actor=actor, **data)


class TaskNoteApi(StaffApi, APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Add progress to a task",
        description="A progress note on an open or claimed task; it lands on the timeline.",
        parameters=[ID_PARAMETER],
        request=TaskNoteInput,
        responses={201: TimelineEventOutput, **TASK_ERRORS},
    )
    def post(self, request, id: str):
        task = selectors.task_for_user(request.user, id)
        serializer = TaskNoteInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = services.task_note(task=task, actor=request.user, **serializer.validated_data)
        return Response(TimelineEventOutput(event).data, status=status.HTTP_201_CREATED)


class TaskReassignApi(TaskActionApi):
    input_class = TaskReassignInput

    @_task_action_schema(
        "Reassign a task",
        "A department head gives the task to a member of the department.",
        TaskReassignInput,
    )
    def post(self, request, id: str):
        return super().post(request, id)

    def run(self, task, actor, data):
        return services.task_reassign(task=task, actor=actor, **data)


class TaskCancelApi(TaskActionApi):
    input_class = TaskReasonInput

    @_task_action_schema(
        "Cancel a task",
        "The agent withdraws the request for help, with a reason.",
        TaskReasonInput,
    )
    def post(self, request, id: str):
        return super().post(request, id)

    def run(self, task, actor, data):
        return services.task_cancel(task=task, actor=actor, **data)


class TaskResendApi(TaskActionApi):
    input_class = TaskResendInput

    @_task_action_schema(
        "Send a returned task again",
        "Reopens a returned task for the department with fresh deadlines and, optionally, "
        "an updated instruction.",
        TaskResendInput,
    )
    def post(self, request, id: str):
        return super().post(request, id)

    def run(self, task, actor, data):
        return services.task_resend(task=task, actor=actor, **data)


# --- public self-service status ------------------------------------------------------


class PublicStatusOutput(serializers.Serializer):
    number = serializers.CharField()
    status = serializers.CharField()
    status_display = serializers.CharField()
    next_step = serializers.CharField()
    promised_followup_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField()
    customer = serializers.CharField(help_text=gettext_lazy("Masked, e.g. 王**."))
    phone = serializers.CharField(help_text=gettext_lazy("Masked, e.g. 138****1234."))


class PublicStatusApi(APIView):
    """Self-service status for customers: ticket number + the phone's last four digits."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        tags=["public"],
        summary="Self-service status",
        description=(
            "Public and rate limited per client address. A wrong number and wrong digits "
            "answer the same 404, so nothing can be probed; personal data is masked."
        ),
        auth=[],
        parameters=[
            NUMBER_PARAMETER,
            OpenApiParameter(
                "phone_last4",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=True,
                description=gettext_lazy("Last four digits of the customer's phone."),
            ),
        ],
        responses={
            200: PublicStatusOutput,
            404: OpenApiResponse(ErrorOutput, description=gettext_lazy("No match.")),
            429: OpenApiResponse(ErrorOutput, description=gettext_lazy("Too many attempts.")),
        },
    )
    def get(self, request, number: str):
        from .public_views import StatusRateLimited, status_lookup

        try:
            result = status_lookup(request, number, request.query_params.get("phone_last4", ""))
        except StatusRateLimited:
            return Response(
                {"detail": _("Too many attempts. Please try again in a few minutes.")},
                status=429,
            )
        if result is None:
            return Response(
                {"detail": _("No complaint matches this ticket number and phone.")}, status=404
            )
        return Response(PublicStatusOutput(result).data)
