"""The agent workspace as a browser-less client sees it: content, refusals, query bounds."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from complaints import services
from complaints.models import Role, Status
from tests.conftest import drive
from tests.factories import CustomerFactory, leaf_category, make_staff, make_ticket

pytestmark = pytest.mark.django_db


def action_url(ticket, name):
    return reverse("workspace:ticket-action", args=[ticket.number, name])


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
        with django_assert_max_num_queries(8) as few:
            assert client.get(reverse("workspace:queue"), {"tab": "open"}).status_code == 200
        make_tickets(30, channel=channel, team=team_a, assignee=agent)
        with django_assert_max_num_queries(8) as many:
            response = client.get(reverse("workspace:queue"), {"tab": "open"})
        assert response.status_code == 200
        assert len(many.captured_queries) == len(few.captured_queries)
        assert response.content.decode().count("<tr class=") == 25  # one page

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

    def test_query_count_is_bounded(self, login, agent, ticket, django_assert_max_num_queries):
        drive(ticket, agent, "closed")
        client = login(agent)
        with django_assert_max_num_queries(12):
            response = client.get(reverse("workspace:ticket", args=[ticket.number]))
        assert response.status_code == 200

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
        self, login, agent, ticket, django_assert_max_num_queries
    ):
        from complaints.views import TIMELINE_PAGE

        drive(ticket, agent, "in_progress")
        for i in range(120):
            services.ticket_reply(
                ticket=ticket.number, actor=agent, body=f"进展{i:03d}", internal=True
            )
        client = login(agent)
        # 12 + the evidence list, which a paged timeline cannot rule out by itself.
        with django_assert_max_num_queries(13):
            page = client.get(reverse("workspace:ticket", args=[ticket.number])).content.decode()
        assert page.count('class="ev ev-') == TIMELINE_PAGE
        assert "进展119" in page and "进展069" not in page
        button = re.search(r'hx-get="([^"]+/timeline/\?before=\d+)"', page).group(1)

        with django_assert_max_num_queries(8):
            more = client.get(button.replace("&amp;", "&")).content.decode()
        assert more.count('class="ev ev-') == TIMELINE_PAGE
        assert "进展069" in more and "进展020" in more and "进展019" not in more
        last = re.search(r'hx-get="([^"]+/timeline/\?before=\d+)"', more).group(1)
        rest = client.get(last).content.decode()
        # 120 notes + created, classified, assigned, first response, started = 125 events.
        assert rest.count('class="ev ev-') == 125 - 2 * TIMELINE_PAGE
        assert "进展000" in rest and "timeline-earlier" not in rest

    def test_a_bad_or_foreign_cursor_is_refused(self, login, agent, ticket, other_agent):
        client = login(agent)
        url = reverse("workspace:ticket-timeline", args=[ticket.number])
        assert client.get(url).status_code == 400
        assert client.get(url, {"before": "x"}).status_code == 400
        other = make_ticket(team=ticket.team)
        foreign = other.events.first().pk
        assert client.get(url, {"before": foreign}).status_code == 400
