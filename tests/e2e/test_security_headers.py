"""The pages work under the Content Security Policy: Chromium reports no violation."""

import pytest

from tests.conftest import drive

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_pages_run_under_the_csp_without_violations(page, live_server, agent, ticket):
    drive(ticket, agent, "in_progress")
    agent.set_password("csp-pass-1")
    agent.save()
    violations = []
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text and violations.append(message.text)
        ),
    )
    response = page.goto(f"{live_server.url}/accounts/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.fill("input[name=username]", "agent")
    page.fill("input[name=password]", "csp-pass-1")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    for path in ("/", f"/tickets/{ticket.number}/", "/notifications/", "/api/docs/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    # The Swagger UI (self-hosted, no CDN) rendered the API.
    assert page.locator(".swagger-ui").count() == 1
    assert page.get_by_text("/api/v1/tickets/", exact=False).first.is_visible()
    assert violations == []
