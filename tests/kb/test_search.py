"""Chinese search: segmentation, ranking, traditional queries, synonyms, phrases.

These run on both back ends (SQLite fallback by default; PostgreSQL with DATABASE_URL);
tests marked `postgres` check what only the tsvector path has.
"""

import pytest
from django.db import connection

from complaints.models import Ticket
from kb import search, selectors
from kb.models import Article, ArticleStatus, SynonymGroup
from tests.factories import make_ticket


def titles(page):
    return [hit.obj.title for hit in page.hits]


@pytest.fixture
def articles(make_article, kb_reference):
    return {
        "delay": make_article(
            "快递延误处理流程",
            "包裹超过三天未送达时，先在物流系统核实轨迹，再联系承运商加急派送。",
            tags="物流 延误",
        ),
        "refund": make_article(
            "退款到账时间说明",
            "退款审核通过后，原路退回一般需要 1-3 个工作日，信用卡最长 7 个工作日。",
            tags="退款",
        ),
        "laptop": make_article(
            "笔记本电脑屏幕故障",
            "ThinkPad X1 屏幕闪烁：请先更新显卡驱动，仍有问题安排上门检测。",
            tags="电脑 维修",
        ),
        "hotel": make_article(
            "酒店隔音差的投诉",
            "客人反映房间隔音差、晚上噪音大时，前台应安排换房并致歉。",
            tags="酒店",
        ),
        "draft": make_article(
            "延误赔偿草稿", "尚未发布的快递延误赔偿方案。", status=ArticleStatus.DRAFT
        ),
    }


class TestSegmentation:
    def test_words_apart_in_the_text_are_found_where_substring_search_fails(self, articles):
        query = "物流 派送"
        # A substring search (what django-helpdesk does) finds nothing for the query…
        assert not Article.objects.filter(body__icontains=query).exists()
        # …the segmented search finds the article holding both words.
        assert titles(selectors.search_articles(query)) == ["快递延误处理流程"]

    def test_a_sentence_query_is_split_into_words(self, articles):
        assert titles(selectors.search_articles("退款多久能到账")) == ["退款到账时间说明"]

    def test_every_word_must_match(self, articles):
        assert titles(selectors.search_articles("退款 酒店")) == []

    def test_drafts_are_not_found(self, articles):
        assert "延误赔偿草稿" not in titles(selectors.search_articles("延误"))

    def test_title_match_ranks_above_body_match(self, make_article, kb_reference):
        make_article("常见问题汇总", "其中一条：发票可以在订单页面申请开具。")
        make_article("发票开具指南", "在订单页面点击申请开具即可。", tags="财务")
        page = selectors.search_articles("发票")
        assert titles(page) == ["发票开具指南", "常见问题汇总"]
        assert page.hits[0].score > page.hits[1].score

    def test_tag_match_ranks_above_body_match(self, make_article, kb_reference):
        make_article("门店营业时间", "部分门店支持以旧换新服务。")
        make_article("门店活动说明", "活动期间营业到晚上十点。", tags="以旧换新")
        assert titles(selectors.search_articles("以旧换新")) == ["门店活动说明", "门店营业时间"]

    def test_mixed_chinese_english_and_numbers(self, articles):
        assert titles(selectors.search_articles("thinkpad 屏幕")) == ["笔记本电脑屏幕故障"]
        assert titles(selectors.search_articles("X1 闪烁")) == ["笔记本电脑屏幕故障"]
        assert titles(selectors.search_articles("7 个工作日 信用卡")) == ["退款到账时间说明"]

    def test_snippet_highlights_the_words_and_escapes_html(self, make_article, kb_reference):
        make_article("脚本测试", "正文 <script>alert(1)</script> 说明如何处理快递丢件。")
        hit = selectors.search_articles("快递 丢件").hits[0]
        assert "<mark>快递</mark>" in hit.snippet
        assert "<script>" not in hit.snippet


class TestTraditionalAndSynonyms:
    def test_traditional_query_finds_simplified_article(self, articles):
        assert titles(selectors.search_articles("快遞延誤")) == ["快递延误处理流程"]
        assert titles(selectors.search_articles("退款到賬")) == ["退款到账时间说明"]

    def test_traditional_article_is_found_by_simplified_query(self, make_article, kb_reference):
        make_article("會員積分兌換規則", "積分可以兌換優惠券。")
        assert titles(selectors.search_articles("积分 兑换")) == ["會員積分兌換規則"]

    def test_synonyms_expand_a_word(self, articles):
        # "配送" appears in no article, but 快递 = 物流 = 配送 is a seeded synonym group.
        assert not Article.objects.filter(body__contains="配送").exists()
        assert titles(selectors.search_articles("配送 延误")) == ["快递延误处理流程"]

    def test_admin_added_synonyms_apply_at_once(self, articles):
        assert titles(selectors.search_articles("宾馆")) == []
        SynonymGroup.objects.create(words="酒店 宾馆 旅馆")
        assert titles(selectors.search_articles("宾馆 隔音")) == ["酒店隔音差的投诉"]

    def test_synonyms_are_or_within_and_across_words(self):
        parsed = search.parse_query("配送 延误", synonyms={"配送": ["快递", "物流", "配送"]})
        assert parsed.groups[0][0] == "配送" and set(parsed.groups[0]) == {"快递", "物流", "配送"}
        assert parsed.groups[1] == ["延误"]


class TestPhrases:
    def test_quoted_phrase_must_be_contiguous(self, make_article, kb_reference):
        make_article("原路退回说明", "退款将原路退回到支付账户。")
        make_article("退回与原路", "商品退回后，退款按原路返还。")
        assert len(selectors.search_articles("原路 退回").hits) == 2
        assert titles(selectors.search_articles('"原路退回"')) == ["原路退回说明"]
        assert titles(selectors.search_articles("“原路退回”")) == ["原路退回说明"]

    def test_phrase_in_traditional_matches(self, make_article, kb_reference):
        make_article("原路退回说明", "退款将原路退回到支付账户。")
        assert titles(selectors.search_articles('"原路退回"')) == ["原路退回说明"]


class TestTickets:
    def test_tickets_are_found_by_their_text(self, ticket, kb_reference):
        other = make_ticket(subject="发票开错了", body="发票抬头写错了，需要重新开具。")
        page = selectors.search_tickets("快递 失望")
        assert [h.obj.number for h in page.hits] == [ticket.number]
        assert [h.obj.number for h in selectors.search_tickets("發票 抬頭").hits] == [other.number]

    def test_backfill_fills_tokens_of_bulk_loaded_tickets(self, ticket, kb_reference):
        from kb.services import reindex_tickets

        Ticket.objects.filter(pk=ticket.pk).update(search_tokens="")
        assert selectors.search_tickets("快递").total == 0
        assert reindex_tickets(only_missing=True) == 1
        assert selectors.search_tickets("快递").total == 1


class TestBadInput:
    @pytest.mark.parametrize("query", ["", "   ", "，。！", '""', "的", "%_\\", "'&|!():*"])
    def test_odd_queries_never_fail(self, articles, query):
        page = selectors.search_articles(query)
        assert page.total >= 0

    def test_very_long_query_is_cut(self, articles):
        assert selectors.search_articles("快递" * 500).total >= 0


@pytest.mark.postgres
class TestPostgres:
    def test_vector_is_filled_by_the_trigger_with_weights(self, articles):
        assert connection.vendor == "postgresql"
        vector = Article.objects.values_list("search_vector", flat=True).get(
            pk=articles["delay"].pk
        )
        assert "'快递':1A" in vector and "'物流'" in vector and "B" in vector

    def test_gin_indexes_exist(self, db):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE indexname IN "
                "('kb_article_search_gin', 'complaints_ticket_search_gin')"
            )
            assert {row[0] for row in cursor.fetchall()} == {
                "kb_article_search_gin",
                "complaints_ticket_search_gin",
            }

    def test_bulk_created_rows_get_vectors(self, kb_reference):
        tokens = search.article_tokens(title="批量导入", tags="", body="快递丢件")
        Article.objects.bulk_create(
            [Article(title="批量导入", body="快递丢件", status=ArticleStatus.PUBLISHED, **tokens)]
        )
        assert titles(selectors.search_articles("丢件")) == ["批量导入"]

    def test_search_query_count_is_constant(self, articles, django_assert_max_num_queries):
        with django_assert_max_num_queries(4):  # synonyms, count, ranked ids, page rows
            selectors.search_articles("快递")
