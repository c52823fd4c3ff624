"""Bounded search for common words: capped count, title matches kept in the ranked pool.

Run on both back ends. The cap is patched small so a handful of articles exceed it.
On PostgreSQL the unranked pool is the first matches in table order (the oldest here),
on SQLite the newest: the title match is created in the middle so that neither back end
finds it without the title pass.
"""

import re

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from kb import search, selectors
from tests.factories import make_ticket


@pytest.fixture
def small_cap(monkeypatch):
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    monkeypatch.setattr(search, "RANK_WINDOW", 2)  # PostgreSQL: ranks 2 of the first 4
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


def test_pages_stop_at_the_ranked_pool(small_cap, common_word):
    pages = [selectors.search_articles("快递", page=n, per_page=1) for n in (1, 2, 3)]
    assert [p.num_pages for p in pages] == [3, 3, 3]
    assert all(len(p.hits) == 1 for p in pages) and not pages[2].has_next
    assert len({p.hits[0].obj.pk for p in pages}) == 3


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
    assert page.total == 3 and page.total_capped
    # No title pass for tickets: the pool is the first RANK_WINDOW matches on
    # PostgreSQL, the newest FALLBACK_CANDIDATES on SQLite.
    assert len(page.hits) == (2 if connection.vendor == "postgresql" else 4)


def test_phrase_with_latin_letters_ignores_case(make_article, kb_reference):
    make_article("笔记本屏幕", "ThinkPad X1 屏幕闪烁时先更新驱动。")
    assert [h.obj.title for h in selectors.search_articles('"thinkpad x1"').hits] == ["笔记本屏幕"]
    assert [h.obj.title for h in selectors.search_articles('"屏幕闪烁"').hits] == ["笔记本屏幕"]


@pytest.fixture
def phrase_articles(make_article, kb_reference):
    """Nine articles hold 包裹 and 丢失; two (the 2nd and the last) hold "包裹丢失"."""
    made = []
    for i in range(9):
        text = "包裹丢失后先核实轨迹。" if i in (1, 8) else "丢失的包裹先核实轨迹。"
        made.append(make_article(f"说明 {i}", f"第 {i} 条：{text}"))
    return made[1], made[8]


def test_a_common_phrase_is_checked_on_the_window(small_cap, phrase_articles):
    page = selectors.search_articles('"包裹丢失"', per_page=1)
    assert len(page.hits) == 1 and page.hits[0].obj in phrase_articles
    if connection.vendor == "postgresql":
        # Checked on the first 4 word matches only: 1 found, more may exist.
        assert page.total == 1 and page.total_capped
    else:  # the fallback checks the phrase on every match
        assert page.total == 2 and not page.total_capped


def test_a_phrase_missing_from_the_window_is_still_found(small_cap, phrase_articles):
    page = selectors.search_articles('"包裹丢失"')
    assert {hit.obj for hit in page.hits} == set(phrase_articles)
    assert page.total == 2 and not page.total_capped


def test_phrase_counts_without_the_cap(phrase_articles):
    page = selectors.search_articles('"包裹丢失"')
    assert page.total == 2 and not page.total_capped
    assert selectors.search_articles("包裹 丢失").total == 9
