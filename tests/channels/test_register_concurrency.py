"""A large register import next to live intake, on PostgreSQL: real threads, real locks."""

import threading
import time

import pytest
from django.db import connection

from channels import registers, services
from channels.models import ChannelKind, RegisterImport
from complaints.models import Ticket
from tests.channels.test_registers import good_row, xlsx
from tests.factories import ChannelFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_an_intake_does_not_wait_for_a_large_import_to_finish(agent, monkeypatch):
    ChannelFactory(code="store-sh-njl", name="上海南京路店", kind=ChannelKind.STORE)
    ChannelFactory(code="store-bj-wfj", name="北京王府井店", kind=ChannelKind.STORE)
    wechat = ChannelFactory(code="wechat-main", kind="wechat")
    monkeypatch.setattr(registers, "CHUNK_ROWS", 20)
    rows = 240
    record = registers.register_upload(
        uploaded=xlsx([good_row(i) for i in range(rows)]), actor=agent
    )
    assert record.state == RegisterImport.State.PREVIEWED
    RegisterImport.objects.filter(pk=record.pk).update(state=RegisterImport.State.IMPORTING)

    # Each row a little slow, so the whole import takes seconds and one chunk a fraction.
    real = registers._import_row
    midway = threading.Event()

    def slow_row(row, record, actor):
        result = real(row, record, actor)
        time.sleep(0.01)
        if row.number == 50:  # tickets of the current chunk created: its locks are held
            midway.set()
        return result

    monkeypatch.setattr(registers, "_import_row", slow_row)
    outcome = {}

    def run_import():
        try:
            outcome["state"] = registers.register_import_run(record.pk, agent.pk)
        except Exception as exc:  # noqa: BLE001 - asserted below
            outcome["state"] = exc
        finally:
            connection.close()

    importer = threading.Thread(target=run_import)
    importer.start()
    try:
        assert midway.wait(30), "the import did not start"
        started = time.monotonic()
        result = services.intake_submit(
            channel=wechat,
            external_id="wx-during-import",
            customer={"phone": "13700007777"},
            body="快递三天没到，客服也联系不上。",
        )
        waited = time.monotonic() - started
        import_running = importer.is_alive()
    finally:
        importer.join(60)
    assert result.created and result.ticket.number
    # The single-transaction import held the day's counter until its end: this intake
    # waited for the whole file. Now it waits at most for the chunk in progress.
    assert import_running, f"the intake waited {waited:.2f}s, until the import ended"
    assert outcome["state"] == "imported", outcome
    record.refresh_from_db()
    assert (record.imported_rows, record.new_tickets) == (rows, rows)
    numbers = list(Ticket.objects.values_list("number", flat=True))
    assert len(numbers) == rows + 1 == len(set(numbers))
