"""Offline store registers: template, checked upload, chunked import, history, export."""

import csv
import datetime as dt
import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf

from channels import registers
from channels.models import Channel, ChannelKind, RegisterImport
from complaints.models import Category, Contact, Customer, EventKind, Ticket
from tests.factories import ChannelFactory, make_ticket

pytestmark = pytest.mark.django_db

HEADERS = [c.header for c in registers.COLUMNS]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def stores(db):
    return [
        ChannelFactory(code="store-sh-njl", name="上海南京路店", kind=ChannelKind.STORE),
        ChannelFactory(code="store-bj-wfj", name="北京王府井店", kind=ChannelKind.STORE),
    ]


@pytest.fixture
def staff(login, agent):
    return login(agent)


def good_row(i: int) -> list:
    day = timezone.localdate() - dt.timedelta(days=1 + i % 20)
    return [
        "上海南京路店" if i % 2 else "store-bj-wfj",
        day.isoformat() if i % 3 else dt.datetime.combine(day, dt.time(15, 30)),
        f"顾客{i}",
        13900000000 + i if i % 4 == 0 else f"139 {i:08d}"[:4] + f"{i:08d}"[:4] + f"{i:08d}"[4:],
        f"SO-REG-{i:05d}",
        f"第{i}号顾客：买的商品有质量问题，要求退货。",
        "logistics" if i % 5 == 0 else "",
        "张店长",
    ]


def xlsx(rows, headers=HEADERS) -> SimpleUploadedFile:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return SimpleUploadedFile("门店登记-11月.xlsx", buffer.getvalue())


def upload(client, file):
    response = client.post(reverse("intake:registers"), {"file": file})
    assert response.status_code == 302, response.content.decode()[:500]
    return RegisterImport.objects.latest("pk")


def confirm(client, record):
    response = client.post(reverse("intake:register-confirm", args=[record.pk]), follow=True)
    assert response.status_code == 200
    record.refresh_from_db()
    return response


def test_1000_good_rows_and_3_bad_import_nothing_then_the_corrected_file_imports_1003(
    staff, stores, agent, reference_data
):
    rows = [good_row(i) for i in range(1003)]
    future = (timezone.localdate() + dt.timedelta(days=2)).isoformat()
    bad = {
        10: (3, "12345"),  # bad phone
        500: (6, "没有这个分类"),  # unknown category
        999: (1, future),  # future date
    }
    broken = [list(r) for r in rows]
    for index, (column, value) in bad.items():
        broken[index][column] = value

    record = upload(staff, xlsx(broken))
    assert record.state == RegisterImport.State.REFUSED
    assert record.row_count == 1003 and record.error_count == 3
    assert [(p["row"], p["column"]) for p in record.errors] == [
        (12, "手机号 Phone"),
        (502, "分类 Category"),
        (1001, "日期 Date"),
    ]
    assert "12345" in record.errors[0]["reason"]
    assert "没有这个分类" in record.errors[1]["reason"]
    assert "future" in record.errors[2]["reason"]
    page = staff.get(reverse("intake:register-detail", args=[record.pk])).content.decode()
    assert "Problems (nothing was imported)" in page and "没有这个分类" in page
    assert 'action="/intake/registers/' not in page  # no confirm button
    assert not Ticket.objects.exists() and not Customer.objects.exists()

    record = upload(staff, xlsx(rows))
    assert record.state == RegisterImport.State.PREVIEWED and record.error_count == 0
    assert not Ticket.objects.exists()  # the preview writes nothing
    page = confirm(staff, record).content.decode()
    # A large file imports in a q2 worker; its page shows the progress meanwhile.
    assert record.state == RegisterImport.State.IMPORTING
    assert 'data-testid="register-progress"' in page and "0 of 1003 rows" in page
    progress = staff.get(reverse("intake:register-progress", args=[record.pk]))
    assert progress.status_code == 200 and b'<progress max="1003" value="0">' in progress.content
    assert not Ticket.objects.exists()
    assert registers.register_import_run(record.pk, agent.pk) == "imported"  # the worker
    assert registers.register_import_run(record.pk, agent.pk) == "imported"  # a retry: no-op
    done = staff.get(reverse("intake:register-progress", args=[record.pk]))
    assert done.status_code == 204 and done["HX-Refresh"] == "true"  # reload: the result
    record.refresh_from_db()
    assert record.state == RegisterImport.State.IMPORTED
    assert (record.row_count, record.new_tickets, record.joined_tickets) == (1003, 1003, 0)
    assert Ticket.objects.count() == 1003 and Contact.objects.count() == 1003
    ticket = Ticket.objects.get(order_no="SO-REG-00007")
    assert ticket.channel.code == "store-sh-njl" and ticket.customer.phone == "+8613900000007"
    note = ticket.events.get(kind=EventKind.NOTE)
    assert note.actor == agent
    assert note.after["handler"] == "张店长" and note.after["register_row"] == 9
    assert Ticket.objects.get(order_no="SO-REG-00005").category.code == "logistics"

    history = staff.get(reverse("intake:registers")).content.decode()
    assert history.count("门店登记-11月.xlsx") == 2 and agent.username in history


def test_missing_text_and_unknown_store_are_reported_per_row(staff, stores):
    rows = [good_row(1), good_row(2), good_row(3)]
    rows[0][5] = ""
    rows[2][0] = "广州天河店"
    record = upload(staff, xlsx(rows))
    assert [(p["row"], p["column"]) for p in record.errors] == [
        (2, "投诉内容 Complaint"),
        (4, "门店 Store"),
    ]
    assert not Ticket.objects.exists()


def test_a_date_years_ago_is_reported(staff, stores):
    row = good_row(1)
    row[1] = "2001-01-01"
    record = upload(staff, xlsx([row]))
    assert record.errors[0]["column"] == "日期 Date"
    assert "two years" in record.errors[0]["reason"]


def test_a_file_without_the_required_columns_is_refused(staff, stores):
    record = upload(staff, xlsx([good_row(1)], headers=["门店", "日期", "手机号"]))
    assert record.state == RegisterImport.State.REFUSED
    assert {p["column"] for p in record.errors} == {"投诉内容 Complaint"}


def test_a_file_that_is_not_a_spreadsheet_is_refused(staff, stores):
    record = upload(staff, SimpleUploadedFile("register.xlsx", b"not a zip file"))
    assert record.state == RegisterImport.State.REFUSED
    assert "readable" in record.errors[0]["reason"]
    response = staff.post(
        reverse("intake:registers"), {"file": SimpleUploadedFile("x.pdf", b"%PDF-1.4")}
    )
    assert response.status_code == 400 and b".xlsx" in response.content


def test_imported_rows_follow_the_identity_and_repeat_rules(staff, stores, customer, channel):
    open_ticket = make_ticket(customer=customer, channel=channel, order_no="SO20261122001")
    row = good_row(1)
    row[3], row[4] = "138-0000-1234", "SO20261122001"  # the fixture customer's phone and order
    record = upload(staff, xlsx([row, good_row(2)]))
    confirm(staff, record)
    assert (record.new_tickets, record.joined_tickets) == (1, 1)
    open_ticket.refresh_from_db()
    assert open_ticket.contact_count == 2
    assert open_ticket.contacts.filter(channel__code="store-sh-njl").exists()


def test_confirming_twice_or_re_uploading_does_not_duplicate(staff, stores):
    rows = [good_row(i) for i in range(5)]
    record = upload(staff, xlsx(rows))
    confirm(staff, record)
    response = confirm(staff, record)
    assert "already imported" in response.content.decode()
    again = upload(staff, xlsx(rows))
    confirm(staff, again)
    assert again.state == RegisterImport.State.IMPORTED
    assert (again.new_tickets, again.already_known) == (0, 5)
    assert Ticket.objects.count() == 5


def test_a_store_closed_between_preview_and_confirm_imports_nothing(staff, stores):
    record = upload(staff, xlsx([good_row(1), good_row(2)]))
    Channel.objects.filter(code="store-bj-wfj").update(is_active=False)
    confirm(staff, record)
    assert record.state == RegisterImport.State.REFUSED
    assert record.errors[0]["column"] == "门店 Store"
    assert not Ticket.objects.exists()


def test_the_template_downloads_and_its_example_row_is_valid(staff, stores):
    response = staff.get(reverse("intake:register-template"))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert [c.value for c in sheet[1]] == HEADERS
    rows, problems, count = registers.parse_register(response.content, "template.xlsx")
    assert (len(rows), problems, count) == (1, [], 1)


def test_registers_are_for_service_staff_only(client, login, logistics, stores):
    assert client.get(reverse("intake:registers")).status_code == 302  # to the login page
    login(logistics)
    assert client.get(reverse("intake:registers")).status_code == 403
    assert client.get(reverse("intake:tickets-export")).status_code == 403


def test_ticket_list_exports_to_xlsx_and_csv_with_filters(staff, channel, customer):
    make_ticket(customer=customer, channel=channel, order_no="SO-EXPORT-1")
    other = ChannelFactory(code="app", name="App", kind="app")
    make_ticket(customer=customer, channel=other, order_no="SO-EXPORT-2")

    response = staff.get(reverse("intake:tickets-export"), {"format": "xlsx"})
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "工单号 Number" and len(values) == 3
    assert "138****1234" in values[1]

    response = staff.get(reverse("intake:tickets-export"), {"format": "csv", "channel": "app"})
    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(lines) == 2 and "SO-EXPORT-2" in lines[1]

    assert staff.get(reverse("intake:tickets-export"), {"format": "pdf"}).status_code == 400


def test_the_worker_reports_progress_while_a_large_file_imports(
    staff, stores, agent, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.cache import caches

    monkeypatch.setattr(registers, "PROGRESS_EVERY", 100)
    seen = []
    real_set = caches["progress"].set

    def spy(key, value, *args, **kwargs):
        seen.append(value)
        return real_set(key, value, *args, **kwargs)

    monkeypatch.setattr(caches["progress"], "set", spy)
    monkeypatch.setattr(Conf, "SYNC", True)  # django-q2 runs the task at once
    record = upload(staff, xlsx([good_row(i) for i in range(450)]))
    with django_capture_on_commit_callbacks(execute=True):
        confirm(staff, record)
    record.refresh_from_db()
    assert record.state == RegisterImport.State.IMPORTED and record.new_tickets == 450
    assert seen == [0, 100, 200, 300, 400]  # queued, then every 100 rows
    assert caches["progress"].get(registers.progress_key(record.pk)) is None  # cleared


def test_small_files_import_within_the_request(staff, stores):
    record = upload(staff, xlsx([good_row(i) for i in range(20)]))
    confirm(staff, record)
    assert record.state == RegisterImport.State.IMPORTED and record.new_tickets == 20


_import_row_unpatched = registers._import_row


def _category_deactivated_at(monkeypatch, number: int, code: str = "logistics"):
    """Deactivate a category while the import is at register row `number`."""
    real = registers._import_row

    def import_row(row, record, actor):
        if row.number == number:
            Category.objects.filter(code=code).update(is_active=False)
        return real(row, record, actor)

    monkeypatch.setattr(registers, "_import_row", import_row)


def test_a_row_failing_midway_keeps_the_chunks_before_it_and_a_re_upload_continues(
    staff, stores, agent, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(registers, "CHUNK_ROWS", 10)
    monkeypatch.setattr(registers, "SYNC_IMPORT_ROWS", 10)
    monkeypatch.setattr(Conf, "SYNC", True)
    rows = [good_row(i) for i in range(35)]  # every 5th row (0, 5, 10…) is "logistics"
    record = upload(staff, xlsx(rows))
    # Chunks: rows 2-11, 12-21, 22-31, 32-36. The category goes away at row 14, in the
    # second chunk (checked when it began); the third chunk's first row (22) uses it.
    _category_deactivated_at(monkeypatch, 14)
    with django_capture_on_commit_callbacks(execute=True):
        confirm(staff, record)
    record.refresh_from_db()
    assert record.state == RegisterImport.State.STOPPED
    assert (record.imported_rows, record.new_tickets, record.row_count) == (20, 20, 35)
    assert [(p["row"], p["column"]) for p in record.errors] == [(22, "分类 Category")]
    assert "deactivated during the import" in record.errors[0]["reason"]
    assert Ticket.objects.count() == 20 and Contact.objects.count() == 20
    page = staff.get(reverse("intake:register-detail", args=[record.pk])).content.decode()
    assert "The import stopped at row 22: 20 of 35 rows were imported" in page
    assert "Why the import stopped" in page and "upload the same file again" in page
    assert 'action="/intake/registers/' not in page  # no confirm button

    # The store re-enables the category (or clears the cell) and uploads the same file.
    Category.objects.filter(code="logistics").update(is_active=True)
    monkeypatch.setattr(registers, "_import_row", _import_row_unpatched)
    again = upload(staff, xlsx(rows))
    assert again.state == RegisterImport.State.PREVIEWED
    with django_capture_on_commit_callbacks(execute=True):
        confirm(staff, again)
    again.refresh_from_db()
    assert again.state == RegisterImport.State.IMPORTED
    assert (again.imported_rows, again.already_known, again.new_tickets) == (35, 20, 15)
    assert Ticket.objects.count() == 35 and Contact.objects.count() == 35
    page = staff.get(reverse("intake:register-detail", args=[again.pk])).content.decode()
    assert "35 / 35" in page


def test_a_worker_dying_midway_loses_only_its_chunk_and_the_task_run_again_finishes(
    staff, stores, agent, monkeypatch
):
    monkeypatch.setattr(registers, "CHUNK_ROWS", 10)
    record = upload(staff, xlsx([good_row(i) for i in range(35)]))
    RegisterImport.objects.filter(pk=record.pk).update(state=RegisterImport.State.IMPORTING)

    def killed(row, record, actor):
        if row.number == 25:
            raise SystemExit("worker killed")  # what q2's timeout raises, say
        return _import_row_unpatched(row, record, actor)

    monkeypatch.setattr(registers, "_import_row", killed)
    with pytest.raises(SystemExit):
        registers.register_import_run(record.pk, agent.pk)
    record.refresh_from_db()
    assert record.state == RegisterImport.State.IMPORTING and record.imported_rows == 20
    assert Ticket.objects.count() == 20
    page = staff.get(reverse("intake:register-detail", args=[record.pk])).content.decode()
    assert "20 of 35 rows imported" in page  # the committed rows, whatever the cache says

    monkeypatch.setattr(registers, "_import_row", _import_row_unpatched)
    assert registers.register_import_run(record.pk, agent.pk) == "imported"  # the retry
    record.refresh_from_db()
    assert (record.imported_rows, record.new_tickets, record.already_known) == (35, 35, 0)
    assert Ticket.objects.count() == 35 and Contact.objects.count() == 35


def test_a_task_out_of_time_hands_the_rest_to_a_new_task(
    stores, agent, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(registers, "CHUNK_ROWS", 10)
    queued = []
    monkeypatch.setattr(registers, "_enqueue", lambda *args: queued.append(args))
    record = registers.register_upload(uploaded=xlsx([good_row(i) for i in range(25)]), actor=agent)
    RegisterImport.objects.filter(pk=record.pk).update(state=RegisterImport.State.IMPORTING)
    with django_capture_on_commit_callbacks(execute=True):
        assert registers.register_import_run(record.pk, agent.pk, seconds=0) == "importing"
    record.refresh_from_db()
    assert record.imported_rows == 10 and queued == [(record.pk, agent.pk)]
    assert registers.register_import_run(record.pk, agent.pk, seconds=None) == "imported"
    assert Ticket.objects.count() == 25


def test_a_file_over_the_row_limit_is_refused_with_the_limit_named(staff, stores):
    body = io.StringIO()
    writer = csv.writer(body)
    writer.writerow(HEADERS)
    row = good_row(1)
    row[1] = str(row[1])
    writer.writerows([row] * (registers.MAX_ROWS + 1))
    record = upload(staff, SimpleUploadedFile("register.csv", body.getvalue().encode("utf-8-sig")))
    assert record.state == RegisterImport.State.REFUSED
    assert record.row_count == 100_001
    assert record.errors == [{"row": 0, "column": "", "reason": "At most 100000 rows per file."}]
    assert not Ticket.objects.exists()


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(staff, stores):
    assert "100,000 rows and 25 MB" in staff.get(reverse("intake:registers")).content.decode()
    big = SimpleUploadedFile("register.xlsx", b"0" * (registers.MAX_FILE_BYTES + 1))
    response = staff.post(reverse("intake:registers"), {"file": big})
    assert response.status_code == 400
    assert "The file is larger than 25 MB." in response.content.decode()
    assert not RegisterImport.objects.exists()


def test_a_store_closed_between_two_tasks_stops_the_import_at_its_next_row(
    stores, agent, monkeypatch
):
    monkeypatch.setattr(registers, "CHUNK_ROWS", 10)
    record = registers.register_upload(uploaded=xlsx([good_row(i) for i in range(25)]), actor=agent)
    RegisterImport.objects.filter(pk=record.pk).update(state=RegisterImport.State.IMPORTING)
    assert registers.register_import_run(record.pk, agent.pk, seconds=0) == "importing"
    Channel.objects.filter(code="store-bj-wfj").update(is_active=False)  # the even rows
    assert registers.register_import_run(record.pk, agent.pk) == "stopped"
    record.refresh_from_db()
    assert record.imported_rows == 10 and Ticket.objects.count() == 10
    # Rows 2-11 were imported: the problems start with the first row after them.
    assert [p["row"] for p in record.errors] == [12, 14, 16, 18, 20, 22, 24, 26]
    assert {p["column"] for p in record.errors} == {"门店 Store"}


def test_an_import_that_lost_its_worker_is_resumed_by_the_schedule(
    staff, stores, agent, monkeypatch, django_capture_on_commit_callbacks
):
    from channels.management.commands.outbox_schedule import SCHEDULES

    assert ("channels.registers.resume_stalled", 5) in SCHEDULES.values()
    monkeypatch.setattr(registers, "CHUNK_ROWS", 10)
    monkeypatch.setattr(registers, "SYNC_IMPORT_ROWS", 10)
    queued = []
    monkeypatch.setattr(registers, "_enqueue", lambda *args: queued.append(args))
    record = upload(staff, xlsx([good_row(i) for i in range(35)]))
    with django_capture_on_commit_callbacks(execute=True):
        confirm(staff, record)
    record.refresh_from_db()
    confirmed_by = record.confirmed_by_id
    assert record.state == RegisterImport.State.IMPORTING and queued == [(record.pk, confirmed_by)]
    # The worker imports two chunks, then its task is lost (Redis broker, worker killed).
    for _chunk in range(2):
        registers._import_chunk(record.pk, registers.parse_register(*_file(record))[0], agent)
    record.refresh_from_db()
    assert record.imported_rows == 20
    now = record.progressed_at

    # Still making progress a minute later: left alone.
    with django_capture_on_commit_callbacks(execute=True):
        assert registers.resume_stalled(now + dt.timedelta(minutes=1)) == []
    # Nothing committed for over five minutes: a new task, once.
    later = now + dt.timedelta(minutes=6)
    with django_capture_on_commit_callbacks(execute=True):
        assert registers.resume_stalled(later) == [record.pk]
        assert registers.resume_stalled(later + dt.timedelta(minutes=1)) == []
    assert queued[1:] == [(record.pk, confirmed_by)]
    assert registers.register_import_run(*queued[1]) == "imported"
    record.refresh_from_db()
    assert (record.imported_rows, record.new_tickets, record.already_known) == (35, 35, 0)
    assert Ticket.objects.count() == 35 and Contact.objects.count() == 35
    # Finished imports are never resumed.
    with django_capture_on_commit_callbacks(execute=True):
        assert registers.resume_stalled(timezone.now() + dt.timedelta(days=1)) == []


def _file(record):
    with record.file.open("rb") as handle:
        return handle.read(), record.file_name
