"""Two django-q2 clusters side by side on the Redis broker: no work is done twice.

Each outbound message is enqueued twice (a double click, a retry sweep racing the commit
hook) and two `qcluster` processes with two workers each consume the queue; the channel
must see every message exactly once.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import connection

from channels import outbox
from channels.models import ChannelKind, MessageState, OutboundMessage
from complaints.models import CustomerIdentity
from tests.channels.receiver import start_receiver
from tests.deploy.test_production import ROOT, _redis_available
from tests.factories import ChannelFactory, CustomerFactory, make_ticket

REDIS_URL = os.environ.get("CLOSELOOP_TEST_REDIS_URL_Q", "redis://127.0.0.1:6379/14")
MESSAGES = 120

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _env() -> dict:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "REDIS_URL": REDIS_URL,
        "CLOSELOOP_Q_WORKERS": "2",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def test_two_clusters_never_deliver_a_message_twice(team_a):
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail("Redis is required in CI")
        pytest.skip("no Redis")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    receiver, server = start_receiver()
    channel = ChannelFactory(code="app-q2", kind=ChannelKind.APP, callback_url=receiver.url)
    customer = CustomerFactory()
    CustomerIdentity.objects.create(customer=customer, kind="app_user_id", external_key="u-q2")
    ticket = make_ticket(customer=customer, channel=channel, team=team_a)
    for i in range(MESSAGES):
        outbox.message_queue(ticket=ticket, kind="reply", body=f"回复{i}")
    pks = list(OutboundMessage.objects.values_list("pk", flat=True))
    env = _env()
    # Every message twice into the Redis queue, as the web nodes would enqueue it.
    subprocess.run(  # noqa: S603 - fixed command line
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from channels.outbox import enqueue_delivery\n"
            f"for pk in {pks!r} * 2: enqueue_delivery(pk)",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    queue = redis.Redis.from_url(REDIS_URL)
    assert queue.llen("django_q:closeloop:q") == 2 * MESSAGES
    clusters = [
        subprocess.Popen(  # noqa: S603 - fixed command line
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            pending = OutboundMessage.objects.exclude(state=MessageState.SENT).count()
            if pending == 0:
                break
            time.sleep(0.5)
        time.sleep(2)  # let the second copy of each task run (and find nothing to do)
    finally:
        for cluster in clusters:
            cluster.send_signal(signal.SIGTERM)
        for cluster in clusters:
            try:
                cluster.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cluster.kill()
        server.shutdown()
        server.server_close()

    assert pending == 0, f"{pending} messages not delivered"
    sent = Counter(receiver.idempotency_keys())
    assert len(sent) == MESSAGES
    assert set(sent.values()) == {1}, [k for k, n in sent.items() if n > 1]
    assert set(OutboundMessage.objects.values_list("attempts", flat=True)) == {1}
    assert queue.llen("django_q:closeloop:q") == 0  # both copies of every task were taken
