"""Password guessing is locked out (django-axes) on the login page and the token API."""

from django.urls import reverse

LOGIN = "/accounts/login/"


def attempt(client, username, password):
    return client.post(LOGIN, {"username": username, "password": password})


def test_five_wrong_passwords_lock_the_account_from_that_address(client, agent, agent2):
    agent.set_password("right-pass-1")
    agent.save()
    agent2.set_password("right-pass-2")
    agent2.save()
    for _ in range(4):
        assert attempt(client, "agent", "wrong").status_code == 200  # the form again
    locked = attempt(client, "agent", "wrong")
    assert locked.status_code == 429
    assert 'data-testid="locked-out"' in locked.content.decode()
    # Even the right password is refused now…
    assert attempt(client, "agent", "right-pass-1").status_code == 429
    assert "_auth_user_id" not in client.session
    # …but a colleague on the same machine is not affected.
    response = attempt(client, "agent2", "right-pass-2")
    assert response.status_code == 302 and response.url == reverse("workspace:queue")


def test_a_success_before_the_limit_resets_the_count(client, agent):
    agent.set_password("right-pass-1")
    agent.save()
    for _ in range(4):
        attempt(client, "agent", "wrong")
    assert attempt(client, "agent", "right-pass-1").status_code == 302
    client.logout()
    for _ in range(4):
        assert attempt(client, "agent", "wrong").status_code == 200
    assert attempt(client, "agent", "right-pass-1").status_code == 302


def test_token_endpoint_refuses_a_locked_account(client, agent):
    agent.set_password("right-pass-1")
    agent.save()
    url = reverse("api-token")
    for _ in range(5):
        client.post(
            url, {"username": "agent", "password": "wrong"}, content_type="application/json"
        )
    response = client.post(
        url, {"username": "agent", "password": "right-pass-1"}, content_type="application/json"
    )
    assert response.status_code in (400, 403, 429)
    assert "token" not in response.json()
