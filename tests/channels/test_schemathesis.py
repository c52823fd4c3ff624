"""Property-based API test: schemathesis drives every operation of the live schema in-process.

A WSGI wrapper signs intake requests with a real channel's secret and gives the
staff endpoints a supervisor's token, so generated bodies reach the serializers
and services instead of stopping at 401. Half of the generated path parameters are
swapped for a real ticket number, compensation and task, so the services run too.
Checks: never a 5xx, every status code documented, every response body and content
type as the schema says. At least 1,000 cases per run (`MIN_CASES`).
"""

import io
import os
import time

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from channels.api import sign
from complaints import services
from complaints.models import CompensationKind
from tests.factories import ChannelFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = int(os.environ.get("CLOSELOOP_FUZZ_EXAMPLES", 45))
MIN_CASES = 1000
ran: list[str] = []  # one entry per case, so the last test can count them

INTAKE_PATH = "/api/v1/intake/"
# Random fuzzing only: the coverage phase enumerates hundreds of edge cases per
# operation (minutes), and no example database is written to the tree.
CONFIG = SchemathesisConfig.from_dict(
    {
        "phases": {
            "coverage": {"enabled": False},
            "stateful": {"enabled": False},
            # Completing the documented examples runs a Hypothesis engine per example
            # (~80 s here); the fuzzing phase covers the same operations.
            "examples": {"enabled": False},
        },
        "generation": {"database": "none"},
    }
)


class SignedClient:
    """WSGI middleware: what a configured channel and a logged-in supervisor would send."""

    def __init__(self, app, channel, token):
        self.app, self.channel, self.token = app, channel, token

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == INTAKE_PATH:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            timestamp = str(int(time.time()))
            environ["HTTP_X_CLOSELOOP_KEY"] = self.channel.key
            environ["HTTP_X_CLOSELOOP_TIMESTAMP"] = timestamp
            environ["HTTP_X_CLOSELOOP_SIGNATURE"] = sign(self.channel.secret, timestamp, body)
        else:
            environ["HTTP_AUTHORIZATION"] = f"Token {self.token}"
        return self.app(environ, start_response)


@pytest.fixture
def api_schema(db, supervisor, ticket, logistics):
    # In-process requests share the test's database connection: the handler must
    # not close it between requests (the Django test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    cache.clear()
    channel = ChannelFactory(code="fuzz", kind="app")
    token, _created = Token.objects.get_or_create(user=supervisor)
    app = SignedClient(get_wsgi_application(), channel, token.key)
    yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", app, config=CONFIG)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    cache.clear()


@pytest.fixture
def real_objects(api_schema, ticket, agent, supervisor):
    """A ticket with a pending compensation request and an open collaboration task."""
    compensation = services.compensation_grant(
        ticket=ticket.number,
        actor=agent,
        kind=CompensationKind.COUPON,
        amount="50.00",
        reason="fuzz",
        request=True,
    )
    (task,) = services.task_open(
        ticket=ticket.number,
        actor=supervisor,
        specs=[services.TaskSpec("logistics", "核实物流")],
        instruction="fuzz",
    )
    return {"number": ticket.number, "id": (compensation.pk, task.pk)}


def use_real_objects(case, real) -> None:
    """Swap every other generated path parameter for an existing object."""
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        if len(str(value)) % 2:
            continue
        if name == "number":
            params[name] = real["number"]
        elif name == "id":
            compensation_id, task_id = real["id"]
            params[name] = task_id if "/tasks/" in case.path else compensation_id


schema = schemathesis.pytest.from_fixture("api_schema")
if os.environ.get("CLOSELOOP_FUZZ_PATH"):  # e.g. "/transitions/": fuzz only the matching paths
    schema = schema.include(path_regex=os.environ["CLOSELOOP_FUZZ_PATH"])


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, real_objects):
    use_real_objects(case, real_objects)
    ran.append(case.operation.label)
    case.call_and_validate(checks=CHECKS)


def test_the_fuzzing_ran_enough_cases():
    if not ran:
        pytest.skip("the fuzzing test was not selected")
    operations = set(ran)
    assert len(ran) >= MIN_CASES, f"{len(ran)} cases over {len(operations)} operations"
    assert any("/transitions/" in label for label in operations)
    print(f"schemathesis: {len(ran)} cases over {len(operations)} operations")
