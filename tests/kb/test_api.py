"""GET /api/v1/kb/search/: staff only, paginated, ranked, never a 500."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

URL = "/api/v1/kb/search/"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_as():
    def _as(user):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _as


@pytest.fixture
def many_articles(make_article, kb_reference):
    for i in range(25):
        make_article(f"快递问题 {i}", f"第 {i} 条：包裹延误时先核实物流轨迹。")
    make_article("快递延误标题", "标题命中应排在最前。")


def test_search_is_paginated_and_ranked(api_as, agent, many_articles):
    response = api_as(agent).get(URL, {"q": "快递 延误", "page_size": 10})
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 26 and len(data["results"]) == 10
    first = data["results"][0]
    assert first["title"] == "快递延误标题"
    assert set(first) == {"id", "title", "snippet", "score", "url"}
    assert first["url"] == f"/kb/{first['id']}/"
    assert data["results"][0]["score"] >= data["results"][1]["score"]
    assert data["previous"] is None and "page=2" in data["next"]
    page3 = api_as(agent).get(URL, {"q": "快递 延误", "page_size": 10, "page": 3}).json()
    assert len(page3["results"]) == 6 and page3["next"] is None


def test_ticket_scope(api_as, agent, ticket, kb_reference):
    data = api_as(agent).get(URL, {"q": "快递", "scope": "tickets"}).json()
    assert [r["title"].split()[0] for r in data["results"]] == [ticket.number]


@pytest.mark.parametrize(
    "params",
    [{}, {"q": ""}, {"q": "快" * 201}, {"q": "x", "page": 0}, {"q": "x", "page_size": 500}],
)
def test_bad_input_is_a_400(api_as, agent, params, kb_reference):
    assert api_as(agent).get(URL, params).status_code == 400


def test_staff_only(api_as, logistics, outsider, kb_reference):
    assert APIClient().get(URL, {"q": "快递"}).status_code == 401
    assert api_as(logistics).get(URL, {"q": "快递"}).status_code == 403
    assert api_as(outsider).get(URL, {"q": "快递"}).status_code == 403


@pytest.mark.parametrize("q", ["'", "&|!", "(((", "\\", "%", "“未闭合", "a:*", "\x00"])
def test_odd_queries_are_not_500(api_as, agent, many_articles, q):
    assert api_as(agent).get(URL, {"q": q}).status_code in (200, 400)
