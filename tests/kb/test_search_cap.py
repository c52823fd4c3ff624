"""Bounded search for common words: capped count, title matches kept in the ranked pool.

Run on both back ends. The cap is patched small so a handful of articles exceed it.
On PostgreSQL the unranked pool is the first matches in table order (the oldest here),
on SQLite the newest: the title match is created in the middle so that neither back end
finds it without the title pass.
"""

import re

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from kb import search, selectors
from tests.factories import make_ticket


@pytest.fixture
def small_cap(monkeypatch):
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    monkeypatch.setattr(search, "FALLBACK_CANDIDATES", 4)  # SQLite: COUNT_CAP + 1


@pytest.fixture
def common_word(make_article, kb_reference):
    """Nine articles mention 快递; only the fifth has it in its title."""
    for i in range(4):
        make_article(f"常见问题 {i}", f"第 {i} 条：快递包裹延误时先核实物流轨迹。")
    title = make_article("快递丢件处理", "先核实轨迹，再登记丢件。")
    for i in range(4, 8):
        make_article(f"常见问题 {i}", f"第 {i} 条：快递包裹延误时先核实物流轨迹。")
    return title


def test_count_is_capped_and_the_title_match_still_ranks_first(small_cap, common_word):
    page = selectors.search_articles("快递")
    assert page.total == 3 and page.total_capped
    assert page.hits[0].obj == common_word
    assert page.num_pages == 1 and not page.has_next


def test_no_cap_up_to_the_limit(small_cap, common_word):
    page = selectors.search_articles("丢件")
    assert page.total == 1 and not page.total_capped
    assert [hit.obj for hit in page.hits] == [common_word]


def test_without_the_cap_the_same_article_ranks_first(common_word):
    page = selectors.search_articles("快递")
    assert page.total == 9 and not page.total_capped
    assert page.hits[0].obj == common_word


def test_a_page_past_the_pool_is_empty_but_counted(small_cap, common_word):
    page = selectors.search_articles("快递", page=9, per_page=2)
    assert page.hits == [] and page.total == 3 and page.total_capped


def _total_line(html):
    return re.search(r'data-testid="kb-total">([^<]*)<', html).group(1)


def test_page_shows_n_plus(login, agent, small_cap, common_word):
    client = login(agent)
    html = client.get(reverse("kb:index"), {"q": "快递"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = html.content.decode()
    assert _total_line(html).startswith("3+ ") and "快递丢件处理" in html
    html = client.get(reverse("kb:index"), {"q": "丢件"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert _total_line(html.content.decode()) == "1 条结果"


def test_api_flags_the_capped_count(agent, small_cap, common_word):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    token, _created = Token.objects.get_or_create(user=agent)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    data = client.get("/api/v1/kb/search/", {"q": "快递"}).json()
    assert data["count"] == 3 and data["count_capped"] is True
    assert data["results"][0]["title"] == "快递丢件处理"
    data = client.get("/api/v1/kb/search/", {"q": "丢件"}).json()
    assert data["count"] == 1 and data["count_capped"] is False


def test_ticket_search_is_capped_too(small_cap, kb_reference):
    for _ in range(5):
        make_ticket()
    page = selectors.search_tickets("快递")
    # No title pass for tickets: the pool is the first COUNT_CAP + 1 matches.
    assert page.total == 3 and page.total_capped and len(page.hits) == 4


def test_phrase_with_latin_letters_ignores_case(make_article, kb_reference):
    make_article("笔记本屏幕", "ThinkPad X1 屏幕闪烁时先更新驱动。")
    assert [h.obj.title for h in selectors.search_articles('"thinkpad x1"').hits] == ["笔记本屏幕"]
    assert [h.obj.title for h in selectors.search_articles('"屏幕闪烁"').hits] == ["笔记本屏幕"]
