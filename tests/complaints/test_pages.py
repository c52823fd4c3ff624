"""The agent workspace as a browser-less client sees it: content, refusals, query bounds."""

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from complaints import selectors, services
from complaints.models import Category, CompensationLimit, Role, Status
from tests.conftest import drive
from tests.factories import CustomerFactory, leaf_category, make_staff, make_ticket

pytestmark = pytest.mark.django_db


def action_url(ticket, name):
    return reverse("workspace:ticket-action", args=[ticket.number, name])


def add_evidence_contacts_task_and_compensation(ticket, agent, *, customer, channel, team):
    """What a long-running ticket collects: a file, a second contact (a merged duplicate),
    a collaboration task and a grant."""
    services.attachment_add(
        ticket=ticket.number,
        actor=agent,
        uploaded=SimpleUploadedFile("签收记录.txt", "客户已签收".encode(), "text/plain"),
    )
    duplicate = make_ticket(customer=customer, channel=channel, team=team, subject="又来投诉快递")
    drive(duplicate, agent, "assigned")
    services.ticket_merge(ticket=duplicate.number, actor=agent, into=ticket.number)
    services.task_open(
        ticket=ticket.number,
        actor=agent,
        specs=[services.TaskSpec(department="logistics", responsibility="核实物流轨迹")],
        instruction="请查件",
    )
    services.compensation_grant(
        ticket=ticket.number, actor=agent, kind="coupon", amount="5", reason="延误补偿"
    )
    duplicate.refresh_from_db()
    return duplicate


def make_tickets(n, *, channel, team, assignee=None):
    tickets = [
        make_ticket(customer=CustomerFactory(), channel=channel, team=team) for _ in range(n)
    ]
    if assignee:
        for t in tickets[: n // 2]:
            drive(t, assignee, "in_progress")
    return tickets


class TestQueue:
    def test_login_required(self, client):
        response = client.get(reverse("workspace:queue"))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_tabs_show_the_right_tickets(self, login, agent, agent2, channel, team_a):
        mine = make_ticket(channel=channel, team=team_a, subject="我的工单")
        drive(mine, agent, "assigned")
        theirs = make_ticket(channel=channel, team=team_a, subject="同事的工单")
        drive(theirs, agent2, "assigned")
        fresh = make_ticket(channel=channel, team=team_a, subject="新来的工单")
        client = login(agent)
        body = client.get(reverse("workspace:queue"), {"tab": "mine"}).content.decode()
        assert mine.number in body and theirs.number not in body and fresh.number not in body
        body = client.get(reverse("workspace:queue"), {"tab": "team"}).content.decode()
        assert fresh.number in body and mine.number not in body
        body = client.get(reverse("workspace:queue"), {"tab": "open"}).content.decode()
        assert all(t.number in body for t in (mine, theirs, fresh))

    def test_filters_and_sort(self, login, agent, channel, team_a):
        urgent = make_ticket(channel=channel, team=team_a, subject="紧急")
        drive(urgent, agent, "classified")
        plain = make_ticket(channel=channel, team=team_a, subject="普通")
        client = login(agent)
        body = client.get(
            reverse("workspace:queue"), {"tab": "open", "status": "classified"}
        ).content.decode()
        assert urgent.number in body and plain.number not in body
        body = client.get(
            reverse("workspace:queue"), {"tab": "open", "category": leaf_category("logistics").pk}
        ).content.decode()
        assert urgent.number in body and plain.number not in body

    def test_query_count_does_not_grow_with_tickets(
        self, login, agent, channel, team_a, django_assert_max_num_queries
    ):
        client = login(agent)
        make_tickets(4, channel=channel, team=team_a, assignee=agent)
        client.get(reverse("workspace:queue"))  # loads the cached reference tables once
        with django_assert_max_num_queries(8) as few:
            assert client.get(reverse("workspace:queue"), {"tab": "open"}).status_code == 200
        make_tickets(30, channel=channel, team=team_a, assignee=agent)
        with django_assert_max_num_queries(8) as many:
            response = client.get(reverse("workspace:queue"), {"tab": "open"})
        assert response.status_code == 200
        assert len(many.captured_queries) == len(few.captured_queries)
        assert response.content.decode().count("<tr class=") == 25  # one page

    def test_a_big_backlog_shares_its_all_open_count_for_a_few_seconds(
        self, login, agent, agent2, channel, team_a, monkeypatch
    ):
        """Above OPEN_COUNT_EXACT_UP_TO open tickets the "all open" badge is counted once
        per OPEN_COUNT_MAX_AGE seconds for everyone; the personal tabs stay exact."""
        monkeypatch.setattr(selectors, "OPEN_COUNT_EXACT_UP_TO", 3)

        def exact(user):
            return {t: selectors.queue_tickets(user, tab=t).count() for t in selectors.QUEUE_TABS}

        make_tickets(4, channel=channel, team=team_a, assignee=agent)
        assert selectors.queue_counts(agent) == exact(agent)
        assert exact(agent)["open"] == 4
        make_tickets(2, channel=channel, team=team_a, assignee=agent)
        # Another agent's page reads the shared count: no recount within the window.
        assert selectors.queue_counts(agent2)["open"] == 4
        counts = selectors.queue_counts(agent)
        assert counts["open"] == 4
        assert {tab: counts[tab] for tab in ("mine", "team")} == {  # exact, at once
            tab: exact(agent)[tab] for tab in ("mine", "team")
        }
        assert exact(agent)["mine"] + exact(agent)["team"] == 6
        cache.delete(selectors.OPEN_COUNT_CACHE_KEY)  # the window is over
        assert selectors.queue_counts(agent)["open"] == 6
        body = login(agent).get(reverse("workspace:queue"), {"tab": "open"}).content.decode()
        assert body.count("<tr class=") == 6

    def test_a_small_backlog_is_always_counted_exactly(self, agent, channel, team_a):
        make_tickets(3, channel=channel, team=team_a, assignee=agent)
        assert selectors.queue_counts(agent)["open"] == 3
        make_tickets(1, channel=channel, team=team_a)
        assert selectors.queue_counts(agent)["open"] == 4
        assert cache.get(selectors.OPEN_COUNT_CACHE_KEY) is None

    def test_deep_pages_list_the_same_tickets_as_offset_pages(self, login, agent, channel, team_a):
        make_tickets(56, channel=channel, team=team_a, assignee=agent)
        expected = [t.number for t in selectors.queue_tickets(agent, tab="open")]
        client = login(agent)
        shown = []
        for page in (1, 2, 3):
            body = client.get(reverse("workspace:queue"), {"tab": "open", "page": page})
            numbers = re.findall(
                r'<tr class="prio-\d[^"]*">\s*<td><a href="[^"]+">([^<]+)</a>',
                body.content.decode(),
            )
            assert len(numbers) == (25 if page < 3 else 6)
            shown += numbers
        assert shown == expected  # every ticket once, in queue order

    def test_category_filter_lists_categories_and_follows_edits(self, login, agent):
        client = login(agent)
        body = client.get(reverse("workspace:queue")).content.decode()
        logistics = leaf_category("logistics")
        assert f'<option value="{logistics.pk}">{logistics.full_name}</option>' in body
        Category.objects.filter(pk=logistics.pk).update(name="旧名")  # no signal: still cached
        logistics.name = "物流配送问题"
        logistics.save()  # an admin edit: every process reloads the table
        body = client.get(reverse("workspace:queue")).content.decode()
        assert "物流配送问题" in body and "旧名" not in body
        posted = client.get(reverse("workspace:queue"), {"tab": "open", "category": logistics.pk})
        assert posted.context["form"].cleaned_data["category"] == logistics

    def test_department_staff_are_sent_to_their_task_board(self, login, logistics, outsider):
        response = login(logistics).get(reverse("workspace:queue"), {"tab": "open"})
        assert response.status_code == 302
        assert response.url == reverse("workspace:tasks")
        assert login(outsider).get(reverse("workspace:queue")).status_code == 403


class TestTicketPage:
    def test_shows_customer_360_timeline_and_allowed_buttons(
        self, login, agent, ticket, customer, channel, team_a
    ):
        older = make_ticket(customer=customer, channel=channel, team=team_a, subject="上次的投诉")
        drive(older, agent, "first_responded")
        body = login(agent).get(reverse("workspace:ticket", args=[ticket.number])).content.decode()
        assert customer.name in body and older.number in body  # history across channels
        assert "上次的投诉" in body
        assert 'data-action="classify"' in body
        assert 'data-action="resolve"' not in body

    def test_closed_ticket_shows_everything_within_12_queries(
        self, login, agent, ticket, customer, channel, team_a, django_assert_max_num_queries
    ):
        drive(ticket, agent, "in_progress")
        duplicate = add_evidence_contacts_task_and_compensation(
            ticket, agent, customer=customer, channel=channel, team=team_a
        )
        task = ticket.tasks.get()
        services.task_cancel(task=task.pk, actor=agent, reason="快递已送达")
        services.ticket_resolve(
            ticket=ticket.number,
            actor=agent,
            solution="补发商品",
            responsible_person="物流部 刘师傅",
            resolution_time=timezone.now(),
            evidence_ref="快递单号 SF123456",
        )
        services.ticket_follow_up(ticket=ticket.number, actor=agent, note="回访客户，表示满意")
        services.ticket_close(ticket=ticket.number, actor=agent)
        client = login(agent)
        url = reverse("workspace:ticket", args=[ticket.number])
        client.get(url)  # loads the cached reference tables once
        with django_assert_max_num_queries(12):  # DESIGN §9
            response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200 and 'data-testid="ticket-status"' in body
        attachment = ticket.attachments.get()
        assert attachment.get_absolute_url() in body and "签收记录.txt" in body
        for contact in ticket.contacts.all():  # both contacts, at local time
            when = timezone.localtime(contact.occurred_at).strftime("%m-%d %H:%M")
            assert f"{when} · {contact.channel.name}" in body
        assert body.count('data-testid="compensation-row"') == 1
        assert 'data-testid="task-row"' in body and 'data-testid="closing-loop"' in body
        assert body.count('data-testid="callback-row"') == ticket.callbacks.count() > 0
        survey = ticket.surveys.get()
        assert timezone.localtime(survey.expires_at).strftime("%Y-%m-%d") in body
        identities = [i.get_kind_display() for i in customer.identities.order_by("id")]
        assert " · ".join(str(k) for k in identities) in body

        # The duplicate's page names the ticket it went into.
        with django_assert_max_num_queries(12):
            merged = client.get(reverse("workspace:ticket", args=[duplicate.number]))
        assert f">{ticket.number}</a></span>" in merged.content.decode()

    @pytest.mark.parametrize("state", ["received", "assigned", "in_progress", "resolved"])
    def test_every_state_and_role_within_12_queries(
        self,
        login,
        state,
        agent,
        senior,
        supervisor,
        ticket,
        admin_user,
        django_assert_max_num_queries,
    ):
        from kb import services as kb_services
        from kb.models import ScriptKind

        # A default SOP with a first-response script: the form fills it in.
        kb_services.sop_template_create(
            actor=admin_user,
            name="通用",
            steps=[("核实情况", 2)],
            scripts={ScriptKind.FIRST_RESPONSE: "工单 {ticket_number}，进度见 {status_url}"},
        )
        if state != "received":
            drive(ticket, agent, state)
        url = reverse("workspace:ticket", args=[ticket.number])
        for user in (agent, senior, supervisor):
            client = login(user)
            client.get(url)
            with django_assert_max_num_queries(12):
                assert client.get(url).status_code == 200

    def test_compensation_authority_follows_an_edited_limit(self, login, agent, ticket):
        client = login(agent)
        url = reverse("workspace:ticket", args=[ticket.number])
        assert "¥10.00 per ticket" in client.get(url).content.decode()
        limit = CompensationLimit.objects.get(tier=1)
        limit.amount = 20
        limit.save()  # as the admin does: every process reloads the limits
        assert "¥20.00 per ticket" in client.get(url).content.decode()

    def test_outsiders_get_404(self, login, ticket, logistics, outsider):
        url = reverse("workspace:ticket", args=[ticket.number])
        assert login(logistics).get(url).status_code == 404
        assert login(outsider).get(url).status_code == 404

    def test_unknown_number_is_404(self, login, agent):
        assert login(agent).get(reverse("workspace:ticket", args=["TS1-1"])).status_code == 404


class TestActionsThroughThePage:
    def test_classify_then_take(self, login, agent, ticket):
        client = login(agent)
        response = client.post(
            action_url(ticket, "classify"),
            {
                "classify-category": leaf_category("install-delay").pk,
                "classify-amount_level": 2,
                "classify-impact": 1,
                "classify-urgency": 2,
                "classify-version": ticket.version,
            },
        )
        assert response.status_code == 302
        ticket.refresh_from_db()
        assert ticket.status == Status.CLASSIFIED and ticket.category.code == "install-delay"
        response = client.post(
            action_url(ticket, "assign"), {"assign-assignee": agent.pk}, follow=True
        )
        ticket.refresh_from_db()
        assert ticket.assignee == agent
        assert "小李" in response.content.decode()

    def test_classify_refusal_shows_what_is_missing(self, login, agent, ticket):
        response = login(agent).post(action_url(ticket, "classify"), {"classify-impact": 1})
        assert response.status_code == 400
        body = response.content.decode()
        assert "Choose a category." in body or "请选择" in body
        ticket.refresh_from_db()
        assert ticket.status == Status.RECEIVED

    def test_close_before_follow_up_is_409_with_message(self, login, agent, ticket):
        drive(ticket, agent, "resolved")
        response = login(agent).post(action_url(ticket, "close"), {})
        assert response.status_code == 409
        assert 'data-testid="action-error"' in response.content.decode()
        ticket.refresh_from_db()
        assert ticket.status == Status.RESOLVED

    def test_resolve_refusal_lists_four_elements(self, login, agent, ticket):
        drive(ticket, agent, "in_progress")
        response = login(agent).post(
            action_url(ticket, "resolve"),
            {
                "resolve-solution": "已退款",
                "resolve-resolution_time": "",
            },
        )
        assert response.status_code == 400
        ticket.refresh_from_db()
        assert ticket.status == Status.IN_PROGRESS

    def test_first_response_prefilled_script_passes_the_rule(self, login, agent, ticket):
        drive(ticket, agent, "assigned")
        client = login(agent)
        page = client.get(reverse("workspace:ticket", args=[ticket.number]))
        form = page.context["action_forms"][0]
        assert form.name == "first_response"
        deadline = timezone.localtime() + dt.timedelta(hours=30)
        response = client.post(
            action_url(ticket, "first_response"),
            {
                "first_response-message": form.initial["message"],
                "first_response-promised_followup_at": deadline.strftime("%Y-%m-%dT%H:%M"),
            },
        )
        assert response.status_code == 302
        ticket.refresh_from_db()
        assert ticket.first_responded_at is not None

    def test_stale_form_is_409(self, login, agent, ticket):
        client = login(agent)
        stale = ticket.version
        drive(ticket, agent, "classified")
        response = client.post(
            action_url(ticket, "classify"),
            {
                "classify-category": leaf_category("quality").pk,
                "classify-amount_level": 1,
                "classify-impact": 1,
                "classify-urgency": 1,
                "classify-version": stale,
            },
        )
        assert response.status_code == 409
        ticket.refresh_from_db()
        assert ticket.category.code == "logistics"

    def test_department_staff_cannot_post_actions(self, login, logistics, ticket):
        response = login(logistics).post(action_url(ticket, "classify"), {})
        assert response.status_code == 404

    def test_get_on_action_is_not_allowed(self, login, agent, ticket):
        assert login(agent).get(action_url(ticket, "classify")).status_code == 405

    def test_reply_and_note_land_on_timeline(self, login, agent, ticket):
        drive(ticket, agent, "in_progress")
        client = login(agent)
        client.post(
            reverse("workspace:ticket-reply", args=[ticket.number]), {"body": "您好，补发已安排。"}
        )
        client.post(
            reverse("workspace:ticket-reply", args=[ticket.number]),
            {"body": "内部备注", "internal": "on"},
        )
        kinds = list(ticket.events.values_list("kind", flat=True))
        assert kinds[-2:] == ["reply", "note"]

    def test_lead_of_another_team_gets_no_buttons_for_this_team(self, login, ticket, agent, team_b):
        drive(ticket, agent, "classified")
        lead_b = make_staff("senior_b", Role.SENIOR, team_b)
        body = login(lead_b).get(reverse("workspace:ticket", args=[ticket.number])).content.decode()
        assert 'data-action="assign"' not in body and 'data-action="classify"' not in body
        senior_page = login(make_staff("senior_a", Role.SENIOR, ticket.team))
        body = senior_page.get(reverse("workspace:ticket", args=[ticket.number])).content.decode()
        assert 'data-action="assign"' in body


class TestLookupAndCustomer:
    def test_lookup_by_number_redirects(self, login, agent, ticket):
        response = login(agent).get(reverse("workspace:lookup"), {"q": ticket.number})
        assert response.status_code == 302

    def test_lookup_by_phone_and_order(self, login, agent, ticket):
        client = login(agent)
        assert (
            ticket.number
            in client.get(reverse("workspace:lookup"), {"q": "138 0000 1234"}).content.decode()
        )
        assert (
            ticket.number
            in client.get(reverse("workspace:lookup"), {"q": "SO20261122001"}).content.decode()
        )

    def test_customer_page(self, login, agent, ticket, customer):
        body = login(agent).get(reverse("workspace:customer", args=[customer.pk])).content.decode()
        assert ticket.number in body and customer.name in body


class TestPublicStatus:
    def test_right_phone_shows_status_masked(self, client, ticket):
        body = client.get(
            reverse("public-status"), {"number": ticket.number, "phone_last4": "1234"}
        ).content.decode()
        assert 'data-testid="public-result"' in body
        assert "138****1234" in body and "13800001234" not in body

    def test_wrong_phone_reveals_nothing(self, client, ticket):
        body = client.get(
            reverse("public-status"), {"number": ticket.number, "phone_last4": "9999"}
        ).content.decode()
        assert 'data-testid="public-result"' not in body and ticket.customer.name not in body


class TestLongTimeline:
    def test_shows_the_newest_events_and_loads_earlier_ones_on_demand(
        self, login, agent, ticket, customer, channel, team_a, django_assert_max_num_queries
    ):
        from complaints.views import TIMELINE_PAGE

        drive(ticket, agent, "in_progress")
        add_evidence_contacts_task_and_compensation(
            ticket, agent, customer=customer, channel=channel, team=team_a
        )
        for i in range(120):
            services.ticket_reply(
                ticket=ticket.number, actor=agent, body=f"进展{i:03d}", internal=True
            )
        client = login(agent)
        url = reverse("workspace:ticket", args=[ticket.number])
        client.get(url)  # loads the cached reference tables once
        # DESIGN §9: evidence, contacts, surveys and identities come with the ticket's row.
        with django_assert_max_num_queries(12):
            page = client.get(url).content.decode()
        assert "签收记录.txt" in page  # the evidence list; both contacts:
        assert page.count("买的东西快递三天没有送到") >= 2
        assert 'data-testid="task-row"' in page and 'data-testid="compensation-row"' in page
        assert page.count('class="ev ev-') == TIMELINE_PAGE
        assert "进展119" in page and "进展069" not in page
        button = re.search(r'hx-get="([^"]+/timeline/\?before=\d+)"', page).group(1)

        with django_assert_max_num_queries(8):
            more = client.get(button.replace("&amp;", "&")).content.decode()
        assert more.count('class="ev ev-') == TIMELINE_PAGE
        assert "进展069" in more and "进展020" in more and "进展019" not in more
        last = re.search(r'hx-get="([^"]+/timeline/\?before=\d+)"', more).group(1)
        rest = client.get(last).content.decode()
        # 120 notes + created, classified, assigned, first response, started, file,
        # merged from, task, compensation = 129 events.
        assert rest.count('class="ev ev-') == 129 - 2 * TIMELINE_PAGE
        assert "进展000" in rest and "timeline-earlier" not in rest

    def test_a_bad_or_foreign_cursor_is_refused(self, login, agent, ticket, other_agent):
        client = login(agent)
        url = reverse("workspace:ticket-timeline", args=[ticket.number])
        assert client.get(url).status_code == 400
        assert client.get(url, {"before": "x"}).status_code == 400
        other = make_ticket(team=ticket.team)
        foreign = other.events.first().pk
        assert client.get(url, {"before": foreign}).status_code == 400
