"""Knowledge search for customer-service staff: GET /api/v1/kb/search/?q=."""

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from complaints import policies
from complaints.api import ERROR_RESPONSES, StaffApi
from complaints.serializers import ErrorOutput

from . import search, selectors


class SearchQueryInput(serializers.Serializer):
    q = serializers.CharField(
        max_length=search.MAX_QUERY_LENGTH,
        help_text=gettext_lazy(
            'Words in Chinese (simplified or traditional), English or numbers; "quoted '
            'phrases" must appear as written. Every word must match (or a synonym of it).'
        ),
    )
    scope = serializers.ChoiceField(
        choices=[("articles", "articles"), ("tickets", "tickets")],
        default="articles",
        help_text=gettext_lazy("Search published knowledge articles or tickets."),
    )
    page = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=50, default=20)


class SearchHitOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    snippet = serializers.CharField(
        help_text=gettext_lazy("HTML-escaped text around the match, words in <mark>.")
    )
    score = serializers.FloatField()
    url = serializers.CharField()


class SearchPageOutput(serializers.Serializer):
    count = serializers.IntegerField(
        help_text=gettext_lazy("Number of matches, counted up to 1,000 (see count_capped).")
    )
    count_capped = serializers.BooleanField(
        help_text=gettext_lazy(
            'True when more than 1,000 match: count is then 1,000 (shown as "1,000+") and '
            "the ranking considers the first 1,000 matches plus up to 1,000 whose title "
            "matches."
        )
    )
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = SearchHitOutput(many=True)


def _hit_data(hit: search.Hit, scope: str) -> dict:
    obj = hit.obj
    if scope == "tickets":
        return {
            "id": obj.pk,
            "title": f"{obj.number} {obj.subject}",
            "snippet": str(hit.snippet),
            "score": round(hit.score, 6),
            "url": reverse("workspace:ticket", args=[obj.number]),
        }
    return {
        "id": obj.pk,
        "title": obj.title,
        "snippet": str(hit.snippet),
        "score": round(hit.score, 6),
        "url": reverse("kb:article", args=[obj.pk]),
    }


class KbSearchApi(StaffApi, APIView):
    @extend_schema(
        tags=["knowledge base"],
        summary="Search the knowledge base (or tickets) in Chinese",
        parameters=[SearchQueryInput],
        responses={
            200: SearchPageOutput,
            400: ERROR_RESPONSES[400],
            401: ERROR_RESPONSES[401],
            403: OpenApiResponse(
                ErrorOutput, description=gettext_lazy("Only customer-service staff.")
            ),
        },
    )
    def get(self, request):
        if not policies.is_service_staff(request.user):
            raise PermissionDenied(_("The knowledge base is for customer-service staff."))
        params = SearchQueryInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        find = selectors.search_tickets if data["scope"] == "tickets" else selectors.search_articles
        page = find(data["q"], page=data["page"], per_page=data["page_size"])
        url = request.build_absolute_uri()
        previous = None
        if page.page > 1:
            previous = (
                replace_query_param(url, "page", page.page - 1)
                if page.page > 2
                else remove_query_param(url, "page")
            )
        return Response(
            {
                "count": page.total,
                "count_capped": page.total_capped,
                "next": replace_query_param(url, "page", page.page + 1) if page.has_next else None,
                "previous": previous,
                "results": [_hit_data(hit, data["scope"]) for hit in page.hits],
            }
        )
