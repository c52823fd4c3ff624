"""Risk-alert API for team leads and supervisors (DRF). Thin: parse, call the services."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, pagination
from rest_framework.response import Response
from rest_framework.views import APIView

from complaints import policies
from complaints.api import ERROR_RESPONSES, ID_PARAMETER, INVALID_PAGE, StaffApi
from complaints.serializers import ErrorOutput

from . import risks
from .filters import RiskAlertFilter
from .models import RiskAlert
from .serializers import RiskAlertOutput

FORBIDDEN = OpenApiResponse(
    ErrorOutput, description=gettext_lazy("Risk alerts are for team leads and supervisors.")
)


def _require_lead(user) -> None:
    if policies.tier_of(user) < 2:
        raise PermissionDenied(_("Risk alerts are for team leads and supervisors."))


class RiskPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class RiskAlertListApi(StaffApi, generics.ListAPIView):
    pagination_class = RiskPagination
    serializer_class = RiskAlertOutput
    filterset_class = RiskAlertFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return RiskAlert.objects.none()
        _require_lead(self.request.user)
        return risks.visible_alerts(self.request.user).order_by("-created_at", "-id")

    @extend_schema(
        tags=["risks"],
        summary="Risk alerts",
        description=(
            "The twelve risk signals raised on tickets, newest first. Team leads see their "
            "team's tickets and those without a team; supervisors see all. Everyone else "
            "gets 403."
        ),
        responses={
            200: RiskAlertOutput(many=True),
            400: ERROR_RESPONSES[400],
            401: ERROR_RESPONSES[401],
            403: FORBIDDEN,
            404: INVALID_PAGE,
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RiskAlertAcknowledgeApi(StaffApi, APIView):
    @extend_schema(
        tags=["risks"],
        summary="Acknowledge a risk alert",
        description=(
            "Say you have seen the alert and taken it on; it leaves the open list. "
            "409 when someone acknowledged it first."
        ),
        parameters=[ID_PARAMETER],
        request=None,
        responses={
            200: RiskAlertOutput,
            401: ERROR_RESPONSES[401],
            403: FORBIDDEN,
            404: OpenApiResponse(
                ErrorOutput, description=gettext_lazy("No such alert visible to you.")
            ),
            409: OpenApiResponse(
                ErrorOutput, description=gettext_lazy("Someone already acknowledged it.")
            ),
        },
    )
    def post(self, request, id: str):
        _require_lead(request.user)
        if not risks.visible_alerts(request.user).filter(pk=int(id)).exists():
            raise Http404
        alert = risks.acknowledge(alert=int(id), actor=request.user)
        alert = RiskAlert.objects.select_related("ticket", "acknowledged_by").get(pk=alert.pk)
        return Response(RiskAlertOutput(alert).data)
