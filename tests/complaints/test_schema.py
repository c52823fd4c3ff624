"""The OpenAPI document of the staff API: served, complete, valid and warning-free."""

import pytest
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from complaints.api import TRANSITIONS

pytestmark = pytest.mark.django_db

TICKET_PATHS = {
    "/api/v1/auth/token/": "post",
    "/api/v1/tickets/": "get",
    "/api/v1/tickets/{number}/": "get",
    "/api/v1/tickets/{number}/transitions/{name}/": "post",
    "/api/v1/tickets/{number}/replies/": "post",
}


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_lists_every_staff_endpoint(schema):
    for url, method in TICKET_PATHS.items():
        assert method in schema["paths"].get(url, {}), url


def test_schema_documents_every_transition_payload(schema):
    operation = schema["paths"]["/api/v1/tickets/{number}/transitions/{name}/"]["post"]
    (name_param,) = [p for p in operation["parameters"] if p["name"] == "name"]
    assert set(name_param["schema"]["enum"]) == set(TRANSITIONS)
    components = schema["components"]["schemas"]
    variants = {
        ref["$ref"].rsplit("/", 1)[1] for ref in components["TransitionInputRequest"]["oneOf"]
    }
    assert variants == {f"{t.input.__name__}Request" for t in TRANSITIONS.values()}
    assert set(components["ClassifyInputRequest"]["properties"]) == {
        "version",
        "category",
        "amount_level",
        "impact",
        "urgency",
    }
    assert set(components["ResolveInputRequest"]["properties"]) == {
        "version",
        "solution",
        "responsible_person",
        "resolution_time",
        "evidence_ref",
    }
    assert (
        components["FirstResponseInputRequest"]["properties"]["promised_followup_at"]["format"]
        == "date-time"
    )
    for code in ("200", "400", "403", "404", "409"):
        assert code in operation["responses"]


def test_schema_documents_list_filters_and_token_auth(schema):
    operation = schema["paths"]["/api/v1/tickets/"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert {"status", "category", "priority", "channel", "assignee", "sla", "q", "page"} <= set(
        params
    )
    assert params["category"]["type"] == "integer"
    assert set(params["sla"]["enum"]) == {"ok", "due_soon", "breached"}
    assert {"tokenAuth": []} in operation["security"]
    token = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert token["responses"]["200"]["content"]["application/json"]["schema"]["properties"] == {
        "token": {"type": "string"}
    }


def test_staff_api_schema_is_valid_and_generates_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("complaints.api_urls"))])
    document = generator.get_schema(request=None, public=True)
    validate_schema(document)
    assert not GENERATOR_STATS, (
        "drf-spectacular warned about the staff API; run manage.py spectacular"
    )


def test_docs_page_is_served(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
