"""Every page and endpoint × every persona → the expected status.

The list of URLs is taken from the URL resolver: a URL that is not in MATRIX (or
explicitly in NOT_IN_MATRIX with a reason) fails `test_every_url_is_in_the_matrix`.
Each case runs against a fresh world (tests.trust.matrix_setup), so a request that
writes (a claim, an approval) cannot change what the next persona sees.

Personas: anonymous; agent (the ticket's assignee, tier 1); senior (team lead, tier 2);
supervisor (tier 3); logistics_own (logistics staff, on a ticket/task of their
department); logistics_other (the same user, on a ticket/task of another department);
admin (superuser). Requests with empty or minimal bodies: for someone allowed in, the
answer is usually a 400 (bad input) or a success; for someone not allowed, 401/302
(anonymous), 403 or 404.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.trust.matrix_setup import PERSONAS, build_world

ANON, AGENT, SENIOR, SUPERVISOR, LOG_OWN, LOG_OTHER, ADMIN = PERSONAS


def everyone(status):
    return dict.fromkeys(PERSONAS, status)


def staff(service, *, anonymous, log_own, log_other, **overrides):
    """Service staff (agent, senior, supervisor, admin) get `service` unless overridden."""
    expected = {
        ANON: anonymous,
        AGENT: service,
        SENIOR: service,
        SUPERVISOR: service,
        ADMIN: service,
        LOG_OWN: log_own,
        LOG_OTHER: log_other,
    }
    expected.update(overrides)
    return expected


def ticket_of(world, persona):
    return world.other if persona == LOG_OTHER else world.ticket


def task_of(world, persona):
    return world.other_task if persona == LOG_OTHER else world.task


# name → (method, path(world, persona), body, expected {persona: status})
MATRIX = {
    # --- public and auth ------------------------------------------------------------
    "login": ("get", lambda w, p: "/accounts/login/", None, everyone(200)),
    "logout": ("post", lambda w, p: "/accounts/logout/", {}, everyone(302)),
    "set_language": ("post", lambda w, p: "/i18n/setlang/", {"language": "en"}, everyone(302)),
    "public-status": ("get", lambda w, p: "/status/", None, everyone(200)),
    "public-survey": ("get", lambda w, p: f"/survey/{w.survey_link}/", None, everyone(200)),
    "api-schema": ("get", lambda w, p: "/api/schema/", None, everyone(200)),
    "api-docs": ("get", lambda w, p: "/api/docs/", None, everyone(200)),
    "api-token": ("post", lambda w, p: "/api/v1/auth/token/", {}, everyone(400)),
    "public-complain": ("get", lambda w, p: "/complain/", None, everyone(200)),
    "api-public-status": (
        "get",
        lambda w, p: f"/api/v1/status/{w.ticket.number}/?phone_last4=1234",
        None,
        everyone(200),
    ),
    # Channels authenticate by key and signature, never by a user's session.
    "api-intake": ("post", lambda w, p: "/api/v1/intake/", {}, everyone(401)),
    "api-channel-receipts": ("post", lambda w, p: "/api/v1/channels/receipts/", {}, everyone(401)),
    # --- offline-store registers and export -------------------------------------------
    "intake:hotline": (
        "get",
        lambda w, p: "/intake/hotline/?phone=13800001234",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    "intake:registers": (
        "get",
        lambda w, p: "/intake/registers/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    "intake:register-template": (
        "get",
        lambda w, p: "/intake/registers/template.xlsx",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    "intake:register-detail": (
        "get",
        lambda w, p: "/intake/registers/999999/",
        None,
        staff(404, anonymous=302, log_own=403, log_other=403),
    ),
    "intake:register-progress": (
        "get",
        lambda w, p: "/intake/registers/999999/progress/",
        None,
        staff(404, anonymous=302, log_own=403, log_other=403),
    ),
    "intake:register-confirm": (
        "post",
        lambda w, p: "/intake/registers/999999/confirm/",
        {},
        staff(404, anonymous=302, log_own=403, log_other=403),
    ),
    "intake:tickets-export": (
        "get",
        lambda w, p: "/intake/tickets/export/?format=csv",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    # --- workspace pages ------------------------------------------------------------
    "workspace:queue": (
        "get",
        lambda w, p: "/",
        None,
        staff(200, anonymous=302, log_own=302, log_other=302),
    ),
    "workspace:lookup": (
        "get",
        lambda w, p: "/lookup/?q=SO1",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    "workspace:ticket": (
        "get",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/",
        None,
        staff(200, anonymous=302, log_own=302, log_other=404),
    ),
    "workspace:ticket-action": (
        "post",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/actions/escalate/",
        {},
        staff(400, anonymous=302, log_own=403, log_other=404),
    ),
    "workspace:ticket-reply": (
        "post",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/reply/",
        {},
        staff(400, anonymous=302, log_own=403, log_other=404),
    ),
    "workspace:ticket-attachment": (
        "post",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/attachments/",
        {},
        staff(400, anonymous=302, log_own=403, log_other=404),
    ),
    "workspace:attachment": (
        "get",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/attachments/{w.attachment.pk}/",
        None,
        staff(200, anonymous=302, log_own=404, log_other=404),
    ),
    "workspace:ticket-timeline": (
        "get",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/timeline/?before={w.message.event_id}",
        None,
        staff(200, anonymous=302, log_own=403, log_other=404),
    ),
    "workspace:ticket-message": (
        "get",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/messages/{w.message.pk}/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=404),
    ),
    "workspace:ticket-message-retry": (
        "post",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/messages/{w.message.pk}/retry/",
        {},
        staff(400, anonymous=302, log_own=403, log_other=404),
    ),
    "workspace:customer": (
        "get",
        lambda w, p: f"/customers/{w.customer.pk}/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    "workspace:approvals": (
        "get",
        lambda w, p: "/approvals/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403, agent=403),
    ),
    "workspace:compensation-decide": (
        "post",
        lambda w, p: f"/compensations/{w.request.pk}/approve/",
        {},
        # A refusal is a message on the ticket page (302); the decision itself is
        # checked in test_pages_collaboration. Department staff never see it.
        staff(302, anonymous=302, log_own=404, log_other=404),
    ),
    "workspace:ticket-compensation": (
        "post",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/compensations/",
        {},
        staff(400, anonymous=302, log_own=403, log_other=404),
    ),
    "workspace:ticket-tasks": (
        "post",
        lambda w, p: f"/tickets/{ticket_of(w, p).number}/tasks/",
        {},
        staff(400, anonymous=302, log_own=403, log_other=404),
    ),
    "workspace:tasks": (
        "get",
        lambda w, p: "/tasks/",
        None,
        staff(200, anonymous=302, log_own=200, log_other=200),
    ),
    "workspace:task": (
        "get",
        lambda w, p: f"/tasks/{task_of(w, p).pk}/",
        None,
        staff(200, anonymous=302, log_own=200, log_other=404),
    ),
    "workspace:task-action": (
        "post",
        lambda w, p: f"/tasks/{task_of(w, p).pk}/claim/",
        {},
        staff(403, anonymous=302, log_own=302, log_other=404),
    ),
    "workspace:notifications": (
        "get",
        lambda w, p: "/notifications/",
        None,
        staff(200, anonymous=302, log_own=200, log_other=200),
    ),
    "workspace:nav-badges": (
        "get",
        lambda w, p: "/nav/badges/",
        None,
        staff(200, anonymous=302, log_own=200, log_other=200),
    ),
    "workspace:callbacks": (
        "get",
        lambda w, p: "/callbacks/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    "workspace:callback-record": (
        "post",
        lambda w, p: f"/callbacks/{w.callback.pk}/record/",
        {},
        # Bad input is a message on the ticket page (302).
        staff(302, anonymous=302, log_own=403, log_other=403),
    ),
    # --- SLA -----------------------------------------------------------------------------
    "sla:report": (
        "get",
        lambda w, p: "/reports/sla/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403, agent=403),
    ),
    "sla:risks": (
        "get",
        lambda w, p: "/reports/risks/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403, agent=403),
    ),
    # --- management dashboard --------------------------------------------------------------
    "dashboard:index": (
        "get",
        lambda w, p: "/dashboard/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403, agent=403),
    ),
    "dashboard:export": (
        "get",
        lambda w, p: "/dashboard/export.xlsx",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403, agent=403),
    ),
    "sla:risk-acknowledge": (
        "post",
        lambda w, p: "/reports/risks/999999/acknowledge/",
        {},
        # Refusals are messages on the risk board (302).
        staff(302, anonymous=302, log_own=302, log_other=302),
    ),
    "sla:ticket-pause": (
        "post",
        lambda w, p: f"/sla/tickets/{ticket_of(w, p).number}/pause/",
        {},
        # Refusals (no reason; department staff) are messages back on the ticket (302).
        staff(302, anonymous=302, log_own=302, log_other=404),
    ),
    "sla:ticket-resume": (
        "post",
        lambda w, p: f"/sla/tickets/{ticket_of(w, p).number}/resume/",
        {},
        staff(302, anonymous=302, log_own=302, log_other=404),
    ),
    # --- knowledge base ----------------------------------------------------------------
    "kb:index": (
        "get",
        lambda w, p: "/kb/?q=物流",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    "kb:article": (
        "get",
        lambda w, p: "/kb/999999/",
        None,
        staff(404, anonymous=302, log_own=403, log_other=403),
    ),
    "kb:feedback": (
        "post",
        lambda w, p: "/kb/999999/feedback/",
        {},
        staff(404, anonymous=302, log_own=403, log_other=403),
    ),
    "kb:ticket-panel": (
        "get",
        lambda w, p: f"/kb/tickets/{ticket_of(w, p).number}/panel/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=404),
    ),
    "kb:ticket-scripts": (
        "get",
        lambda w, p: f"/kb/tickets/{ticket_of(w, p).number}/scripts/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=404),
    ),
    "kb:ticket-sop-step": (
        "post",
        lambda w, p: f"/kb/tickets/{ticket_of(w, p).number}/sop/999999/",
        {},
        # Refusals (unknown step; department staff) are messages back on the ticket.
        staff(302, anonymous=302, log_own=302, log_other=404),
    ),
    # --- triage ------------------------------------------------------------------------
    "triage:index": (
        "get",
        lambda w, p: "/triage/?text=快递起火&vip_level=0",
        None,
        staff(200, anonymous=302, log_own=403, log_other=403),
    ),
    "triage:availability": (
        "post",
        lambda w, p: "/triage/availability/",
        {},
        # Bad input (no status) is a message back on the triage page.
        staff(302, anonymous=302, log_own=403, log_other=403),
    ),
    "triage:ticket-panel": (
        "get",
        lambda w, p: f"/triage/tickets/{ticket_of(w, p).number}/panel/",
        None,
        staff(200, anonymous=302, log_own=403, log_other=404),
    ),
    "triage:ticket-apply": (
        "post",
        lambda w, p: f"/triage/tickets/{ticket_of(w, p).number}/apply/",
        {},
        # Refusals (closed ticket, another team) are messages back on the ticket.
        staff(302, anonymous=302, log_own=403, log_other=404),
    ),
    "triage:suggestion-accept": (
        "post",
        lambda w, p: f"/triage/tickets/{ticket_of(w, p).number}/accept/",
        {},
        staff(302, anonymous=302, log_own=403, log_other=404),
    ),
    # --- API --------------------------------------------------------------------------
    "api-kb-search": (
        "get",
        lambda w, p: "/api/v1/kb/search/?q=物流",
        None,
        staff(200, anonymous=401, log_own=403, log_other=403),
    ),
    "api-risk-list": (
        "get",
        lambda w, p: "/api/v1/risks/",
        None,
        # Team leads and supervisors only (the admin is a superuser: tier 3).
        staff(200, anonymous=401, log_own=403, log_other=403, agent=403),
    ),
    "api-risk-acknowledge": (
        "post",
        lambda w, p: "/api/v1/risks/999999/acknowledge/",
        {},
        staff(404, anonymous=401, log_own=403, log_other=403, agent=403),
    ),
    "api-ticket-list": (
        "get",
        lambda w, p: "/api/v1/tickets/",
        None,
        staff(200, anonymous=401, log_own=200, log_other=200),
    ),
    "api-ticket-detail": (
        "get",
        lambda w, p: f"/api/v1/tickets/{ticket_of(w, p).number}/",
        None,
        staff(200, anonymous=401, log_own=200, log_other=404),
    ),
    "api-ticket-transition": (
        "post",
        lambda w, p: f"/api/v1/tickets/{ticket_of(w, p).number}/transitions/escalate/",
        {},
        staff(400, anonymous=401, log_own=403, log_other=404),
    ),
    "api-ticket-replies": (
        "post",
        lambda w, p: f"/api/v1/tickets/{ticket_of(w, p).number}/replies/",
        {},
        staff(400, anonymous=401, log_own=403, log_other=404),
    ),
    "api-ticket-compensations": (
        "post",
        lambda w, p: f"/api/v1/tickets/{ticket_of(w, p).number}/compensations/",
        {},
        staff(400, anonymous=401, log_own=403, log_other=404),
    ),
    "api-ticket-tasks": (
        "post",
        lambda w, p: f"/api/v1/tickets/{ticket_of(w, p).number}/tasks/",
        {},
        staff(400, anonymous=401, log_own=403, log_other=404),
    ),
    "api-compensation-list": (
        "get",
        lambda w, p: "/api/v1/compensations/",
        None,
        staff(200, anonymous=401, log_own=200, log_other=200),
    ),
    "api-compensation-approve": (
        "post",
        lambda w, p: f"/api/v1/compensations/{w.request.pk}/approve/",
        {},
        # The agent requested it: nobody decides their own request.
        staff(200, anonymous=401, log_own=404, log_other=404, agent=403),
    ),
    "api-compensation-reject": (
        "post",
        lambda w, p: f"/api/v1/compensations/{w.request.pk}/reject/",
        {},
        staff(400, anonymous=401, log_own=404, log_other=404, agent=403),
    ),
    "api-compensation-cancel": (
        "post",
        lambda w, p: f"/api/v1/compensations/{w.request.pk}/cancel/",
        {},
        staff(200, anonymous=401, log_own=404, log_other=404),
    ),
    "api-task-board": (
        "get",
        lambda w, p: "/api/v1/tasks/",
        None,
        staff(200, anonymous=401, log_own=200, log_other=200),
    ),
    "api-task-detail": (
        "get",
        lambda w, p: f"/api/v1/tasks/{task_of(w, p).pk}/",
        None,
        staff(200, anonymous=401, log_own=200, log_other=404),
    ),
    "api-task-claim": (
        "post",
        lambda w, p: f"/api/v1/tasks/{task_of(w, p).pk}/claim/",
        {},
        staff(403, anonymous=401, log_own=200, log_other=404),
    ),
    "api-task-complete": (
        "post",
        lambda w, p: f"/api/v1/tasks/{task_of(w, p).pk}/complete/",
        {},
        staff(403, anonymous=401, log_own=400, log_other=404),
    ),
    "api-task-return": (
        "post",
        lambda w, p: f"/api/v1/tasks/{task_of(w, p).pk}/return/",
        {},
        staff(403, anonymous=401, log_own=400, log_other=404),
    ),
    "api-task-notes": (
        "post",
        lambda w, p: f"/api/v1/tasks/{task_of(w, p).pk}/notes/",
        {},
        staff(403, anonymous=401, log_own=400, log_other=404),
    ),
    "api-task-reassign": (
        "post",
        lambda w, p: f"/api/v1/tasks/{task_of(w, p).pk}/reassign/",
        {"assignee": "logistics"},
        # Only the department head reassigns; the logistics user is a plain member here.
        staff(403, anonymous=401, log_own=403, log_other=404),
    ),
    "api-task-cancel": (
        "post",
        lambda w, p: f"/api/v1/tasks/{task_of(w, p).pk}/cancel/",
        {},
        staff(400, anonymous=401, log_own=403, log_other=404),
    ),
    "api-task-resend": (
        "post",
        lambda w, p: f"/api/v1/tasks/{task_of(w, p).pk}/resend/",
        {},
        staff(409, anonymous=401, log_own=403, log_other=404),
    ),
}

# Covered elsewhere, with the reason.
NOT_IN_MATRIX = {}


def _url_names(patterns=None, namespace=None):
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace or namespace
            if ns == "admin":
                continue  # the admin's own permission tests: tests/complaints/test_admin*.py
            yield from _url_names(pattern.url_patterns, ns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name


def test_every_url_is_in_the_matrix():
    names = set(_url_names())
    missing = names - set(MATRIX) - set(NOT_IN_MATRIX)
    assert not missing, f"URLs without an entry in the permission matrix: {sorted(missing)}"
    stale = set(MATRIX) - names
    assert not stale, f"Matrix entries for URLs that no longer exist: {sorted(stale)}"


CASES = [(name, persona) for name in MATRIX for persona in PERSONAS]


@pytest.mark.parametrize(("name", "persona"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_status(
    name,
    persona,
    client,
    agent,
    senior,
    supervisor,
    logistics,
    admin_user,
    customer,
    channel,
    team_a,
    settings,
    tmp_path,
):
    world = build_world(
        agent=agent,
        customer=customer,
        channel=channel,
        team_a=team_a,
        settings=settings,
        tmp_path=tmp_path,
    )
    users = {
        AGENT: agent,
        SENIOR: senior,
        SUPERVISOR: supervisor,
        LOG_OWN: logistics,
        LOG_OTHER: logistics,
        ADMIN: admin_user,
    }
    if persona != ANON:
        client.force_login(users[persona])
    method, path, body, expected = MATRIX[name]
    url = path(world, persona)
    if method == "get":
        response = client.get(url)
    elif name.startswith("api-"):
        response = client.post(url, body, content_type="application/json")
    else:
        response = client.post(url, body)
    assert response.status_code == expected[persona], (
        f"{method.upper()} {url} as {persona}: {response.status_code}, expected {expected[persona]}"
    )


# Signature-authenticated (no cookie to ride on), so CSRF does not apply.
CSRF_EXEMPT = {"api-intake", "api-channel-receipts"}
POST_CASES = [
    name for name, entry in MATRIX.items() if entry[0] == "post" and name not in CSRF_EXEMPT
]


@pytest.mark.parametrize("name", POST_CASES)
def test_every_form_and_session_api_post_needs_the_csrf_token(
    name, agent, customer, channel, team_a, settings, tmp_path
):
    from django.test import Client

    world = build_world(
        agent=agent,
        customer=customer,
        channel=channel,
        team_a=team_a,
        settings=settings,
        tmp_path=tmp_path,
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    _method, path, body, _expected = MATRIX[name]
    url = path(world, AGENT)
    if name.startswith("api-"):
        response = client.post(url, body, content_type="application/json")
    else:
        response = client.post(url, body)
    # With a session cookie, even the API refuses a post without the token (clients
    # using `Authorization: Token` have no cookie to abuse and need none).
    assert response.status_code == 403, f"POST {url} without a CSRF token"
