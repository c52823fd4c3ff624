"""Articles: versions and diffs, review cycle, safe Markdown, feedback, staff pages."""

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from complaints.models import Category
from kb import services
from kb.models import Article, ArticleFeedback, ArticleStatus, CategoryReviewPolicy
from kb.rendering import render_markdown


class TestVersions:
    def test_every_save_is_a_version(self, make_article, admin_user):
        article = make_article("退款规则", "第一版", actor=admin_user)
        article.body = "第二版：7 天内原路退回"
        services.article_save(article=article, actor=admin_user)
        article.refresh_from_db()
        assert article.version == 2
        versions = list(article.versions.order_by("number"))
        assert [v.body for v in versions] == ["第一版", "第二版：7 天内原路退回"]
        assert versions[1].edited_by == admin_user

    def test_saving_keeps_counters_changed_meanwhile(self, make_article, agent):
        article = make_article("退款规则", "正文")
        services.article_record_view(article=article)
        services.article_feedback(article=article, actor=agent, helpful=True)
        article.body = "新正文"  # this instance still holds view_count 0
        services.article_save(article=article, actor=None)
        article.refresh_from_db()
        assert (article.view_count, article.helpful_count) == (1, 1)

    def test_bad_article_is_refused(self, db):
        with pytest.raises(ValidationError) as exc:
            services.article_create(actor=None, title=" ", body="")
        assert set(exc.value.message_dict) == {"title", "body"}
        assert not Article.objects.exists()

    def test_admin_shows_a_diff_between_versions(self, client, make_article, admin_user):
        article = make_article("退款规则", "第一行\n退款 3 天到账", actor=admin_user)
        article.body = "第一行\n退款 7 天到账"
        services.article_save(article=article, actor=admin_user)
        latest = article.versions.get(number=2)
        client.force_login(admin_user)
        html = client.get(reverse("admin:kb_articleversion_change", args=[latest.pk])).content
        html = html.decode()
        assert "-退款 3 天到账" in html and "+退款 7 天到账" in html

    def test_admin_edit_goes_through_the_service(self, client, admin_user, reference_data):
        client.force_login(admin_user)
        response = client.post(
            reverse("admin:kb_article_add"),
            {
                "title": "安装预约",
                "body": "师傅上门前一天电话确认",
                "tags": "安装",
                "status": ArticleStatus.PUBLISHED,
                "category": "",
                "owner": "",
                "versions-TOTAL_FORMS": "0",
                "versions-INITIAL_FORMS": "0",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        article = Article.objects.get()
        assert article.version == 1 and article.versions.count() == 1
        assert " 师傅 " in article.body_tokens and article.owner == admin_user


class TestReviewCycle:
    def test_fast_moving_category_is_due_in_7_days_others_in_30(self, make_article, kb_reference):
        logistics = Category.objects.get(code="logistics")
        quality = Category.objects.get(code="quality")
        assert CategoryReviewPolicy.objects.filter(category=logistics, fast_moving=True).exists()
        fast = make_article("物流时效", "正文", category=logistics)
        slow = make_article("质量标准", "正文", category=quality)
        assert fast.review_due_at - fast.reviewed_at == dt.timedelta(days=7)
        assert slow.review_due_at - slow.reviewed_at == dt.timedelta(days=30)

    def test_child_category_inherits_the_parent_policy(self, make_article, kb_reference):
        parent = Category.objects.get(code="after-sales")
        CategoryReviewPolicy.objects.create(category=parent)
        child = Category.objects.get(code="install-delay")
        article = make_article("安装时效", "正文", category=child)
        assert article.review_due_at - article.reviewed_at == dt.timedelta(days=7)

    def test_drafts_have_no_review_date(self, make_article):
        assert make_article("草稿", "正文", status=ArticleStatus.DRAFT).review_due_at is None

    def test_needs_review_list_in_the_admin(self, client, make_article, admin_user, kb_reference):
        stale = make_article(
            "旧的物流规则", "正文", category=Category.objects.get(code="logistics")
        )
        fresh = make_article("新的质量标准", "正文", category=Category.objects.get(code="quality"))
        client.force_login(admin_user)
        with time_machine.travel(timezone.now() + dt.timedelta(days=8)):
            html = client.get(reverse("admin:kb_article_changelist"), {"review": "due"})
            html = html.content.decode()
            assert stale.title in html and fresh.title not in html
            # Reviewing moves it out of the list.
            client.post(
                reverse("admin:kb_article_changelist"),
                {"action": "mark_reviewed", "_selected_action": [stale.pk]},
            )
            html = client.get(reverse("admin:kb_article_changelist"), {"review": "due"})
            assert stale.title not in html.content.decode()


class TestMarkdown:
    @pytest.mark.parametrize(
        "source",
        [
            "<script>alert(1)</script>",
            '<img src="x" onerror="alert(1)">',
            "[click](javascript:alert(1))",
            '<a href="javascript:alert(1)">x</a>',
            "<iframe src='https://evil.example'></iframe>",
            '<div style="background:url(javascript:alert(1))">x</div>',
        ],
    )
    def test_scripts_never_survive(self, source):
        html = render_markdown(source)
        assert "<script" not in html and "onerror" not in html
        assert "javascript:" not in html and "<iframe" not in html and "style=" not in html

    def test_markdown_still_renders(self):
        html = render_markdown("# 标题\n\n- **一**\n- [链接](https://example.com)")
        assert "<h1>标题</h1>" in html and "<strong>一</strong>" in html
        assert 'href="https://example.com"' in html

    def test_article_page_shows_sanitized_html(self, login, agent, make_article):
        article = make_article("XSS", "正文 <script>alert('x')</script> **粗体**")
        html = login(agent).get(reverse("kb:article", args=[article.pk])).content.decode()
        assert "<strong>粗体</strong>" in html
        assert "<script>alert" not in html


class TestPages:
    def test_agents_list_and_search(self, login, agent, make_article, kb_reference):
        make_article("快递延误处理流程", "先核实物流轨迹。")
        client = login(agent)
        assert "快递延误处理流程" in client.get(reverse("kb:index")).content.decode()
        html = client.get(reverse("kb:index"), {"q": "配送 轨迹"}).content.decode()
        assert "快递延误处理流程" in html and "<mark>" in html

    def test_department_staff_and_outsiders_are_refused(self, login, logistics, outsider):
        assert login(logistics).get(reverse("kb:index")).status_code == 403
        assert login(outsider).get(reverse("kb:index")).status_code == 403

    def test_anonymous_users_are_sent_to_login(self, client):
        assert client.get(reverse("kb:index")).status_code == 302

    def test_drafts_are_404(self, login, agent, make_article):
        draft = make_article("草稿", "正文", status=ArticleStatus.DRAFT)
        assert login(agent).get(reverse("kb:article", args=[draft.pk])).status_code == 404

    def test_views_are_counted(self, login, agent, make_article):
        article = make_article("退款规则", "正文")
        client = login(agent)
        client.get(reverse("kb:article", args=[article.pk]))
        client.get(reverse("kb:article", args=[article.pk]))
        article.refresh_from_db()
        assert article.view_count == 2

    def test_feedback_with_a_comment(self, login, agent, make_article):
        article = make_article("退款规则", "正文")
        response = login(agent).post(
            reverse("kb:feedback", args=[article.pk]),
            {"helpful": "no", "comment": "信用卡退款时间写错了"},
        )
        assert response.status_code == 302
        feedback = ArticleFeedback.objects.get()
        assert (feedback.helpful, feedback.comment, feedback.user) == (
            False,
            "信用卡退款时间写错了",
            agent,
        )
        article.refresh_from_db()
        assert article.not_helpful_count == 1

    def test_bad_feedback_is_a_400(self, login, agent, make_article):
        article = make_article("退款规则", "正文")
        response = login(agent).post(reverse("kb:feedback", args=[article.pk]), {"helpful": "?"})
        assert response.status_code == 400
        assert not ArticleFeedback.objects.exists()

    def test_query_counts_do_not_grow_with_articles(
        self, login, agent, make_article, kb_reference, django_assert_max_num_queries
    ):
        client = login(agent)
        category = Category.objects.get(code="logistics")
        for i in range(3):
            make_article(f"物流规则 {i}", "快递 正文", category=category)
        with django_assert_max_num_queries(6) as few:
            client.get(reverse("kb:index"))
        with django_assert_max_num_queries(6):
            client.get(reverse("kb:index"), {"q": "快递"})
        for i in range(30):
            make_article(f"更多物流规则 {i}", "快递 正文", category=category)
        with django_assert_max_num_queries(6) as many:
            client.get(reverse("kb:index"))
        assert len(many.captured_queries) == len(few.captured_queries)
        with django_assert_max_num_queries(6):
            client.get(reverse("kb:index"), {"q": "快递"})
        article = Article.objects.first()
        with django_assert_max_num_queries(6):
            client.get(reverse("kb:article", args=[article.pk]))
