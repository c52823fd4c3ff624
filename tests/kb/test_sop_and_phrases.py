"""SOP checklists, reply scripts on the ticket page, and the forbidden-phrase check."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from complaints import services as ticket_services
from complaints.models import Category, EventKind
from kb import selectors, services
from kb.models import ForbiddenPhrase, ScriptKind, SopTemplate
from tests.conftest import drive

FIRST = (
    "您好{customer_name}，工单 {ticket_number} 已受理，{deadline} 前回复您，进度查询：{status_url}"
)


@pytest.fixture
def logistics_sop(kb_reference, admin_user):
    return services.sop_template_create(
        actor=admin_user,
        name="物流投诉 SOP",
        category=Category.objects.get(code="logistics"),
        steps=[("核实物流轨迹", 2), ("联系物流部加急", 8), ("回访客户", None)],
        scripts={
            ScriptKind.FIRST_RESPONSE: FIRST,
            ScriptKind.APOLOGY: "{customer_name}，非常抱歉您的包裹延误了。",
        },
    )


def panel(client, ticket):
    return client.get(reverse("kb:ticket-panel", args=[ticket.number])).content.decode()


def scripts_html(client, ticket):
    return client.get(reverse("kb:ticket-scripts", args=[ticket.number])).content.decode()


class TestSop:
    def test_template_falls_back_to_parent_then_default(self, kb_reference, admin_user):
        parent = Category.objects.get(code="after-sales")
        child = Category.objects.get(code="install-delay")
        default = services.sop_template_create(actor=admin_user, name="通用")
        assert selectors.sop_template_for(child) == default
        mine = services.sop_template_create(actor=admin_user, name="售后", category=parent)
        assert selectors.sop_template_for(child) == mine
        assert selectors.sop_template_for(None) == default

    def test_ticking_a_step_lands_on_the_timeline(self, login, agent, ticket, logistics_sop):
        drive(ticket, agent, "in_progress")
        client = login(agent)
        html = client.get(reverse("workspace:ticket", args=[ticket.number])).content.decode()
        assert reverse("kb:ticket-panel", args=[ticket.number]) in html
        assert panel(client, ticket).count('data-testid="kb-sop-step"') == 3
        step = logistics_sop.steps.get(title="核实物流轨迹")
        url = reverse("kb:ticket-sop-step", args=[ticket.number, step.pk])
        assert client.post(url, {"done": "1"}).status_code == 302
        event = ticket.events.order_by("-id").first()
        assert event.kind == EventKind.NOTE and "核实物流轨迹" in event.message
        assert "☑" in panel(client, ticket)
        # Ticking twice records nothing more; unticking is recorded too.
        client.post(url, {"done": "1"})
        assert ticket.events.filter(message__contains="核实物流轨迹").count() == 1
        client.post(url, {"done": "0"})
        assert ticket.events.filter(message__contains="核实物流轨迹").count() == 2

    def test_a_step_of_another_template_is_refused(self, agent, ticket, logistics_sop, admin_user):
        drive(ticket, agent, "in_progress")
        other = services.sop_template_create(
            actor=admin_user,
            name="质量",
            category=Category.objects.get(code="quality"),
            steps=[("检测", 4)],
        )
        with pytest.raises(ValidationError):
            services.sop_step_set_done(
                ticket=ticket.number, step=other.steps.get(), actor=agent, done=True
            )

    def test_department_staff_cannot_tick(self, logistics, agent, ticket, logistics_sop):
        from django.core.exceptions import PermissionDenied

        drive(ticket, agent, "in_progress")
        with pytest.raises(PermissionDenied):
            services.sop_step_set_done(
                ticket=ticket.number, step=logistics_sop.steps.first(), actor=logistics
            )

    def test_panel_queries_are_bounded(
        self, login, agent, ticket, logistics_sop, django_assert_max_num_queries
    ):
        drive(ticket, agent, "in_progress")
        client = login(agent)
        with django_assert_max_num_queries(12):
            assert client.get(reverse("kb:ticket-panel", args=[ticket.number])).status_code == 200


class TestScripts:
    def test_reply_box_offers_filled_scripts(self, login, agent, ticket, logistics_sop):
        drive(ticket, agent, "in_progress")
        html = scripts_html(login(agent), ticket)
        assert ticket.number in html and ticket.customer.name in html
        assert "非常抱歉您的包裹延误了" in html
        assert "{ticket_number}" not in html

    def test_admin_edits_a_script_and_the_agent_sees_the_new_version(
        self, client, login, admin_user, agent, ticket, logistics_sop
    ):
        drive(ticket, agent, "in_progress")
        apology = logistics_sop.scripts.get(kind=ScriptKind.APOLOGY)
        steps = list(logistics_sop.steps.all())
        scripts = list(logistics_sop.scripts.all())
        data = {
            "name": logistics_sop.name,
            "category": logistics_sop.category_id,
            "is_active": "on",
            "steps-TOTAL_FORMS": str(len(steps)),
            "steps-INITIAL_FORMS": str(len(steps)),
            "scripts-TOTAL_FORMS": str(len(scripts)),
            "scripts-INITIAL_FORMS": str(len(scripts)),
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        }
        for i, step in enumerate(steps):
            data |= {
                f"steps-{i}-id": step.pk,
                f"steps-{i}-template": logistics_sop.pk,
                f"steps-{i}-position": step.position,
                f"steps-{i}-title": step.title,
                f"steps-{i}-deadline_hours": step.deadline_hours or "",
            }
        for i, script in enumerate(scripts):
            body = script.body
            if script.pk == apology.pk:
                body = "{customer_name}您好，包裹延误给您添麻烦了，我们已加急处理（新版）。"
            data |= {
                f"scripts-{i}-id": script.pk,
                f"scripts-{i}-template": logistics_sop.pk,
                f"scripts-{i}-kind": script.kind,
                f"scripts-{i}-body": body,
            }
        client.force_login(admin_user)
        url = reverse("admin:kb_soptemplate_change", args=[logistics_sop.pk])
        response = client.post(url, data)
        assert response.status_code == 302, response.content.decode()[:3000]
        logistics_sop.refresh_from_db()
        assert logistics_sop.version == 2
        assert logistics_sop.versions.count() == 2

        html = scripts_html(login(agent), ticket)
        assert "我们已加急处理（新版）" in html
        assert "非常抱歉您的包裹延误了" not in html

    def test_admin_refuses_a_script_with_unknown_placeholders(
        self, client, admin_user, kb_reference
    ):
        client.force_login(admin_user)
        response = client.post(
            reverse("admin:kb_soptemplate_add"),
            {
                "name": "坏模板",
                "category": "",
                "is_active": "on",
                "steps-TOTAL_FORMS": "0",
                "steps-INITIAL_FORMS": "0",
                "scripts-TOTAL_FORMS": "1",
                "scripts-INITIAL_FORMS": "0",
                "scripts-0-kind": ScriptKind.FIRST_RESPONSE,
                "scripts-0-body": "您好 {name}，{ticket_number.__class__}",
                "versions-TOTAL_FORMS": "0",
                "versions-INITIAL_FORMS": "0",
            },
        )
        assert response.status_code == 200
        assert "Unknown placeholders" in response.content.decode()
        assert not SopTemplate.objects.exists()

    def test_admin_preview_uses_a_sample_ticket(self, client, admin_user, logistics_sop):
        client.force_login(admin_user)
        url = reverse("admin:kb_soptemplate_change", args=[logistics_sop.pk])
        html = client.get(url).content.decode()
        assert 'data-testid="sop-preview"' in html and "TS20261122-000123" in html

    def test_first_response_form_uses_the_sop_script(self, login, agent, ticket, logistics_sop):
        drive(ticket, agent, "assigned")
        html = login(agent).get(reverse("workspace:ticket", args=[ticket.number]))
        html = html.content.decode()
        assert f"工单 {ticket.number} 已受理" in html


class TestForbiddenPhrases:
    def test_seeded_from_the_field(self, kb_reference):
        phrases = set(ForbiddenPhrase.objects.values_list("phrase", flat=True))
        assert {"系统没提示", "这不是我们责任"} <= phrases

    def test_reply_through_the_page_is_refused(self, login, agent, ticket, kb_reference):
        drive(ticket, agent, "in_progress")
        response = login(agent).post(
            reverse("workspace:ticket-reply", args=[ticket.number]),
            {"body": "不好意思，这不是我们责任，请找快递公司。"},
        )
        assert response.status_code == 400
        html = response.content.decode()
        assert "这不是我们责任" in html and "我们会先帮您把问题解决" in html
        assert not ticket.events.filter(kind=EventKind.REPLY).exists()

    def test_reply_through_the_api_is_refused(self, agent, ticket, kb_reference):
        drive(ticket, agent, "in_progress")
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        token, _ = Token.objects.get_or_create(user=agent)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        response = client.post(
            f"/api/v1/tickets/{ticket.number}/replies/",
            {"body": "系统 没 提示，我们也不知道。"},
            format="json",
        )
        assert response.status_code == 400
        message = response.json()["body"][0]
        assert "系统没提示" in message and "马上帮您核实系统记录" in message
        assert not ticket.events.filter(kind=EventKind.REPLY).exists()

    def test_traditional_spelling_is_caught(self, agent, ticket, kb_reference):
        drive(ticket, agent, "in_progress")
        with pytest.raises(ValidationError):
            ticket_services.ticket_reply(ticket=ticket.number, actor=agent, body="這不是我們責任")

    def test_internal_notes_are_not_checked(self, agent, ticket, kb_reference):
        drive(ticket, agent, "in_progress")
        ticket_services.ticket_reply(
            ticket=ticket.number, actor=agent, body="客户说我们讲了“系统没提示”", internal=True
        )

    def test_first_response_is_checked(self, agent, ticket, kb_reference):
        drive(ticket, agent, "assigned")
        with pytest.raises(ValidationError) as exc:
            ticket_services.ticket_first_response(
                ticket=ticket.number,
                actor=agent,
                message=f"工单 {ticket.number}，不归我们管。{ticket_services.status_url(ticket)}",
                promised_followup_at=timezone.now() + dt.timedelta(days=1),
            )
        assert "不归我们管" in exc.value.message_dict["message"][0]

    def test_admin_deactivated_phrase_passes(self, agent, ticket, kb_reference):
        drive(ticket, agent, "in_progress")
        ForbiddenPhrase.objects.filter(phrase="不可能").update(is_active=False)
        ticket_services.ticket_reply(
            ticket=ticket.number, actor=agent, body="这种情况不可能再发生。"
        )
