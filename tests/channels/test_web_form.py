"""The public complaint form: CSRF, honeypot, rate limit, one complaint per submission."""

import re

import pytest
from django.core.cache import cache
from django.test import Client

from channels.models import Channel
from complaints.models import Category, Customer, Ticket

pytestmark = pytest.mark.django_db

URL = "/complain/"


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


def form_data(client, **overrides):
    page = client.get(URL)
    assert page.status_code == 200
    token = re.search(r'name="token" value="([0-9a-f]{32})"', page.content.decode()).group(1)
    data = {
        "name": "赵先生",
        "phone": "139 1234 5678",
        "order_no": "SO-web-1",
        "body": "网上买的冰箱送来是坏的，联系客服没有回应。",
        "website": "",
        "token": token,
    }
    data.update(overrides)
    return data


def test_form_creates_a_ticket_on_the_web_channel_and_shows_number_and_link(client):
    response = client.post(URL, form_data(client))
    assert response.status_code == 200
    ticket = Ticket.objects.get()
    page = response.content.decode()
    assert ticket.number in page
    assert f"/status/?number={ticket.number}" in page
    assert ticket.channel.code == "web" and ticket.channel.kind == "web"
    assert ticket.customer.phone == "+8613912345678" and ticket.customer.name == "赵先生"
    assert ticket.order_no == "SO-web-1"


def test_page_is_mobile_friendly_and_has_csrf(client):
    page = client.get(URL).content.decode()
    assert 'name="viewport"' in page and "csrfmiddlewaretoken" in page


def test_form_without_csrf_token_is_refused(client):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(URL, form_data(strict))
    assert response.status_code == 403
    assert not Ticket.objects.exists()


def test_submitting_the_same_form_twice_is_one_complaint(client):
    data = form_data(client)
    first = client.post(URL, data)
    second = client.post(URL, data)
    assert first.status_code == second.status_code == 200
    assert Ticket.objects.count() == 1
    assert Ticket.objects.get().number in second.content.decode()


def test_filled_honeypot_creates_nothing(client):
    response = client.post(URL, form_data(client, website="http://spam.example"))
    assert response.status_code == 400
    assert not Ticket.objects.exists() and not Customer.objects.exists()


def test_bad_phone_and_missing_text_are_shown_and_nothing_is_written(client):
    response = client.post(URL, form_data(client, phone="12345", body=""))
    assert response.status_code == 400
    page = response.content.decode()
    assert "Not a Chinese mobile or landline number" in page
    assert "This field is required." in page
    assert not Ticket.objects.exists()


def test_category_choice_is_kept(client, reference_data):
    root = Category.objects.filter(parent__isnull=True, is_active=True).first()
    client.post(URL, form_data(client, category=root.pk))
    assert Ticket.objects.get().category == root


def test_too_many_submissions_from_one_address_get_429(client, settings):
    settings.CLOSELOOP_WEB_FORM_LIMIT = 2
    codes = [client.post(URL, form_data(client, order_no=f"SO-{i}")).status_code for i in range(3)]
    assert codes == [200, 200, 429]
    assert Ticket.objects.count() == 2
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.post(URL, form_data(other, order_no="SO-x")).status_code == 200


def test_inactive_web_channel_refuses(client):
    Channel.objects.create(code="web", name="web", kind="web", is_active=False)
    response = client.post(URL, form_data(client))
    assert response.status_code == 400
    assert "not active" in response.content.decode()
    assert not Ticket.objects.exists()


def test_a_lost_token_gets_a_fresh_one_and_a_message(client):
    response = client.post(URL, form_data(client, token="tampered"))
    assert response.status_code == 400
    page = response.content.decode()
    assert "The form expired" in page
    fresh = re.search(r'name="token" value="([0-9a-f]{32})"', page).group(1)
    assert client.post(URL, form_data(client, token=fresh)).status_code == 200
    assert Ticket.objects.count() == 1
