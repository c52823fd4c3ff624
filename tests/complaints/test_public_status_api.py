"""GET /api/v1/status/{number}/?phone_last4= — public, masked, rate limited."""

from complaints.public_views import STATUS_RATE_LIMIT


def url(ticket):
    return f"/api/v1/status/{ticket.number}/"


def test_right_digits_show_the_masked_status(client, ticket):
    response = client.get(url(ticket), {"phone_last4": "1234"})
    assert response.status_code == 200
    data = response.json()
    assert data["number"] == ticket.number
    assert data["status"] == "received"
    assert data["phone"] == "138****1234"
    assert data["customer"] == "王**"
    assert "13800001234" not in response.content.decode()


def test_wrong_digits_and_unknown_numbers_look_the_same(client, ticket):
    wrong = client.get(url(ticket), {"phone_last4": "9999"})
    unknown = client.get("/api/v1/status/TS20990101-000001/", {"phone_last4": "1234"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()


def test_floods_are_refused(client, ticket):
    for _ in range(STATUS_RATE_LIMIT):
        client.get(url(ticket), {"phone_last4": "0000"})
    assert client.get(url(ticket), {"phone_last4": "1234"}).status_code == 429
