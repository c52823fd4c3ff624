"""Offline store registers: the xlsx template, the checked upload, the chunked import.

Stores write complaints into a paper or spreadsheet register; staff upload it
here. Every row is checked first and every problem is reported (row number,
column, reason); only a file without problems can be imported (the check is
all-or-nothing). The import then runs every row through `services.intake_submit`,
so the identity and repeat rules are the API's, in chunks of `CHUNK_ROWS` rows,
each chunk its own transaction: the day's ticket counter and the customers' row
locks are held for one chunk, never for the whole file, so the API, the web form
and the hotline keep creating tickets while a large register imports.

A row that fails while importing (its store or category deactivated meanwhile, a
lost race) stops the import: the chunks committed before it stay, the record
says how many rows were imported and which row failed and why (state
"stopped"). Every row has a deterministic external id (a hash of its content),
so the same file uploaded again continues: rows imported before are recognized
as replays (`already_known`) and not stored twice. A worker that dies mid-file
loses at most its current chunk; running the task again continues after the
last committed chunk.
"""

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass

import tablib
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from import_export.formats.base_formats import CSV, XLSX

from complaints.models import Category

from . import services
from .identity import customer_keys
from .models import Channel, ChannelKind, RegisterImport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # fixed bilingual header: the template and the parser agree on it
    required: bool


COLUMNS = [
    Column("store", "门店 Store", True),
    Column("date", "日期 Date", True),
    Column("name", "客户姓名 Customer name", False),
    Column("phone", "手机号 Phone", True),
    Column("order_no", "订单号 Order no.", False),
    Column("text", "投诉内容 Complaint", True),
    Column("category", "分类 Category", False),
    Column("handler", "经办人 Handler", False),
]
HEADER = {c.key: c.header for c in COLUMNS}
# A 100,000-row register of real complaint texts (median ~130 characters) is ~14 MB.
MAX_ROWS = 100_000
MAX_FILE_BYTES = 25 * 1024 * 1024
DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M"]


def template_xlsx() -> bytes:
    """The empty register with its header row and one example row."""
    dataset = tablib.Dataset(headers=[c.header for c in COLUMNS])
    dataset.append(
        [
            "上海南京路店",
            "2026-11-20",
            "王女士",
            "13800001234",
            "SO20261120001",
            "购买的电饭煲使用两天后无法加热，要求换货。",
            "",
            "张店长",
        ]
    )
    return XLSX().export_data(dataset)


@dataclass
class Row:
    number: int  # as the spreadsheet shows it: the header is row 1
    store: Channel
    occurred_at: dt.datetime
    name: str
    phone: str
    order_no: str
    text: str
    category: Category | None
    handler: str

    @property
    def external_id(self) -> str:
        # The same register row uploaded again is recognized, not stored twice.
        digest = hashlib.sha256(
            "|".join(
                [
                    self.store.code,
                    self.occurred_at.isoformat(),
                    self.phone,
                    self.order_no,
                    self.text,
                ]
            ).encode()
        ).hexdigest()
        return f"register-{digest[:40]}"


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone or order number typed into a number cell
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def _header_index(headers) -> tuple[dict[str, int], list[dict]]:
    wanted = {}
    for column in COLUMNS:
        chinese, _space, english = column.header.partition(" ")
        wanted[column.header.casefold()] = column.key
        wanted[chinese.casefold()] = column.key
        wanted[english.casefold()] = column.key
    index: dict[str, int] = {}
    for position, cell in enumerate(headers or []):
        key = wanted.get(_text(cell).casefold())
        if key and key not in index:
            index[key] = position
    problems = [
        {
            "row": 1,
            "column": column.header,
            "reason": _("The column is missing; download the template."),
        }
        for column in COLUMNS
        if column.required and column.key not in index
    ]
    return index, problems


def _date(value, today: dt.date) -> tuple[dt.datetime | None, str]:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(12, 0))
    else:
        text = _text(value)
        if not text:
            return None, _("A date is required.")
        for fmt in DATE_FORMATS:
            try:
                moment = dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - made aware below
            except ValueError:
                continue
            if "%H" not in fmt:
                moment = moment.replace(hour=12)  # a day without a time: count it mid-day
            break
        else:
            return None, _("Not a date: %(value)s (use 2026-11-20).") % {"value": text[:30]}
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if timezone.localtime(moment).date() > today:
        return None, _("The date is in the future.")
    too_old = services.check_occurred_at(moment)
    if too_old:
        return None, too_old["occurred_at"][0]
    return moment, ""


class _Lookups:
    """Stores and categories, each read once per file."""

    def __init__(self):
        self.stores = {}
        for channel in Channel.objects.filter(kind=ChannelKind.STORE, is_active=True):
            self.stores[channel.code.casefold()] = channel
            self.stores[channel.name.casefold()] = channel
        self.categories = {}
        for category in Category.objects.filter(is_active=True).select_related("parent"):
            for label in (category.code, category.name, category.full_name):
                self.categories.setdefault(label.casefold(), category)


def parse_register(content: bytes, file_name: str) -> tuple[list[Row], list[dict], int]:
    """Check every row; return (rows, problems, row count). Writes nothing."""
    try:
        if file_name.lower().endswith(".csv"):
            dataset = CSV().create_dataset(content.decode("utf-8-sig"))
        else:
            dataset = XLSX().create_dataset(content)
    except Exception:  # noqa: BLE001 - openpyxl/tablib raise many kinds on a broken file
        dataset = None
    if dataset is None:
        return [], [{"row": 0, "column": "", "reason": _("Not a readable xlsx or csv file.")}], 0
    index, problems = _header_index(dataset.headers)
    if problems:
        return [], problems, 0
    if dataset.height > MAX_ROWS:
        reason = _("At most %(n)d rows per file.") % {"n": MAX_ROWS}
        return [], [{"row": 0, "column": "", "reason": reason}], dataset.height

    lookups, today = _Lookups(), timezone.localdate()
    # A register covers a few days: each distinct date cell is parsed and checked once
    # (it was half of the checking time of a 100,000-row file).
    dates: dict = {}
    rows: list[Row] = []
    count = 0
    for offset, values in enumerate(dataset, start=2):

        def cell(key, values=values):
            position = index.get(key)
            return values[position] if position is not None and position < len(values) else None

        if all(_text(v) == "" for v in values):
            continue  # blank lines at the end of a sheet
        count += 1
        row_problems = []

        def problem(key, reason, offset=offset, row_problems=row_problems):
            row_problems.append({"row": offset, "column": HEADER[key], "reason": str(reason)})

        store_name = _text(cell("store"))
        store = lookups.stores.get(store_name.casefold())
        if not store_name:
            problem("store", _("The store is missing."))
        elif store is None:
            problem(
                "store",
                _("Unknown store: %(store)s (add it as a store channel first).")
                % {"store": store_name[:50]},
            )
        date_value = cell("date")
        try:
            occurred_at, date_problem = dates[date_value]
        except KeyError:
            occurred_at, date_problem = dates[date_value] = _date(date_value, today)
        if date_problem:
            problem("date", date_problem)
        phone = _text(cell("phone"))
        if not phone:
            problem("phone", _("A phone number is required."))
        else:
            try:
                phone = customer_keys(phone=phone, prefix="").phone
            except ValidationError as exc:
                problem("phone", exc.messages[0])
        text = _text(cell("text"))
        if not text:
            problem("text", _("The complaint text is missing."))
        elif len(text) > services.MAX_BODY_CHARS:
            problem("text", _("At most %(n)d characters.") % {"n": services.MAX_BODY_CHARS})
        category_name = _text(cell("category"))
        category = lookups.categories.get(category_name.casefold()) if category_name else None
        if category_name and category is None:
            problem("category", _("Unknown category: %(name)s") % {"name": category_name[:50]})
        name, order_no, handler = (
            _text(cell("name")),
            _text(cell("order_no")),
            _text(cell("handler")),
        )
        for key, value, limit in (("name", name, 100), ("order_no", order_no, 64)):
            if len(value) > limit:
                problem(key, _("At most %(n)d characters.") % {"n": limit})
        if row_problems:
            problems.extend(row_problems)
            continue
        rows.append(
            Row(
                number=offset,
                store=store,
                occurred_at=occurred_at,
                name=name,
                phone=phone,
                order_no=order_no,
                text=text,
                category=category,
                handler=handler[:100],
            )
        )
    if count == 0:
        problems.append({"row": 0, "column": "", "reason": _("The file has no rows.")})
    return rows, problems, count


def register_upload(*, uploaded, actor) -> RegisterImport:
    """Store the file and check it (the dry run): nothing but the history row is written."""
    name = (uploaded.name or "register.xlsx")[:200]
    if not name.lower().endswith((".xlsx", ".csv")):
        raise ValidationError({"file": [_("Upload the register as .xlsx (or .csv).")]})
    if uploaded.size > MAX_FILE_BYTES:
        raise ValidationError(
            {"file": [_("The file is larger than %(mb)d MB.") % {"mb": MAX_FILE_BYTES >> 20}]}
        )
    content = uploaded.read()
    _rows, problems, count = parse_register(content, name)
    record = RegisterImport(
        uploaded_by=actor,
        file_name=name,
        row_count=count,
        error_count=len({p["row"] for p in problems}),
        errors=problems,
        state=RegisterImport.State.REFUSED if problems else RegisterImport.State.PREVIEWED,
        finished_at=timezone.now() if problems else None,
    )
    record.file.save(name, ContentFile(content), save=False)
    record.save()
    return record


# Rows per transaction. Each chunk holds the day's ticket counter (and the locks of the
# customers it touches) until it commits: at ~5-15 ms a row, 200 rows keep another
# intake waiting at most a few seconds, and one commit per 200 rows costs next to nothing.
CHUNK_ROWS = 200
# A file that fits in one chunk imports within the request (one transaction, all or
# nothing); larger ones in a q2 worker, with their progress shown on the import's page.
SYNC_IMPORT_ROWS = CHUNK_ROWS
PROGRESS_EVERY = 25
# One q2 task imports chunks for this long (after reading the file), then hands the rest
# to a new task: a long import should not hold a worker that notifications and sweeps
# also need, and q2 kills a task at its timeout. Each task reads and checks the file
# again (~20 s for 100,000 rows), so a longer budget wastes less; the task's own timeout
# covers that reading, the budget and one chunk, and stays below the ORM broker's retry
# (Q_CLUSTER["retry"], 120 s), which hands a task still running to a second worker.
TASK_SECONDS = 60
TASK_TIMEOUT = 110


def progress_key(pk: int) -> str:
    return f"register-import:{pk}"


def import_progress(record: RegisterImport) -> int:
    """Rows of a running import done so far (its committed rows when the worker has not
    reported yet or is gone)."""
    return caches["progress"].get(progress_key(record.pk), record.imported_rows)


def register_confirm(*, record: RegisterImport | int, actor) -> RegisterImport:
    """Import a checked file, chunk by chunk (see the module docstring).

    A file of one chunk imports here, in one transaction: all of it or none. A larger
    file is handed to a django-q2 worker after commit (state "importing"); the import's
    page shows the rows done until the result is in. A row failing at run time stops
    the import with the chunks before it kept (state "stopped").
    """
    pk = record.pk if isinstance(record, RegisterImport) else record
    with transaction.atomic():
        record = RegisterImport.objects.select_for_update().get(pk=pk)
        if record.state != RegisterImport.State.PREVIEWED:
            raise ValidationError(_("This file was already imported or refused; upload it again."))
        record.state = RegisterImport.State.IMPORTING
        record.confirmed_by = actor
        record.progressed_at = timezone.now()
        record.save(update_fields=["state", "confirmed_by", "progressed_at"])
        if record.row_count > SYNC_IMPORT_ROWS:
            caches["progress"].set(progress_key(pk), 0, 24 * 3600)
            transaction.on_commit(lambda: _enqueue(pk, actor.pk))
            return record
        # One chunk: its transaction nests in this one, so a failure leaves nothing.
        return _run_import(record, actor)


def _enqueue(pk: int, actor_pk: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "channels.registers.register_import_run",
        pk,
        actor_pk,
        group="registers",
        timeout=TASK_TIMEOUT,
    )


def register_import_run(pk: int, actor_pk: int, seconds: float | None = TASK_SECONDS) -> str:
    """The q2 task of a large import: import chunks for `seconds` (counted once the file
    is read), then enqueue a task for the rest; None: to the end (e.g. a benchmark).
    Returns the record's state.

    Safe to run again or twice at once: each chunk locks the record, starts after its
    `imported_rows` and commits its rows with the new count, so a crash loses only the
    chunk in progress, a second run continues where the first stopped, and a finished
    or stopped import is not touched.
    """
    from django.contrib.auth import get_user_model

    record = RegisterImport.objects.get(pk=pk)
    if record.state != RegisterImport.State.IMPORTING:
        return record.state
    actor = get_user_model().objects.get(pk=actor_pk)
    record = _run_import(record, actor, seconds=seconds)
    if record.state == RegisterImport.State.IMPORTING:  # out of time: a new task goes on
        transaction.on_commit(lambda: _enqueue(pk, actor_pk))
    return record.state


# A chunk commits within seconds and a task lives at most TASK_TIMEOUT: an import with
# no committed chunk for this long has lost its worker (killed, or a Redis-broker task
# lost with it; the ORM broker would hand it on after Q_CLUSTER["retry"] itself).
STALLED_AFTER = dt.timedelta(minutes=5)


def resume_stalled(now: dt.datetime | None = None) -> list[int]:
    """Enqueue a new task for every import that stopped making progress; returns their ids.

    Scheduled every few minutes (`outbox_schedule`). A task still running somewhere does
    no harm: two runs of one import take turns chunk by chunk and neither repeats a row.
    """
    now = now or timezone.now()
    resumed = []
    with transaction.atomic():
        stalled = (
            RegisterImport.objects.select_for_update(skip_locked=True)  # a chunk in progress
            .filter(state=RegisterImport.State.IMPORTING)
            .filter(Q(progressed_at__lt=now - STALLED_AFTER) | Q(progressed_at__isnull=True))
        )
        for record in stalled:
            record.progressed_at = now  # the new task gets its own STALLED_AFTER
            record.save(update_fields=["progressed_at"])
            actor_pk = record.confirmed_by_id or record.uploaded_by_id
            log.warning("register import %s made no progress: resuming it", record.pk)
            transaction.on_commit(lambda pk=record.pk, actor_pk=actor_pk: _enqueue(pk, actor_pk))
            resumed.append(record.pk)
    return resumed


class _RowFailed(Exception):
    def __init__(self, row: Row, column: str, reason: str):
        super().__init__(reason)
        self.row, self.column, self.reason = row, column, reason


def _run_import(record: RegisterImport, actor, seconds: float | None = None) -> RegisterImport:
    with record.file.open("rb") as handle:
        content = handle.read()
    # Checked again: stores, categories or the date may have changed since the preview.
    rows, problems, count = parse_register(content, record.file_name)
    if problems:
        if record.imported_rows:
            # A run after the first: problems in rows committed before are past.
            numbers = sorted({r.number for r in rows} | {p["row"] for p in problems})
            committed = set(numbers[: record.imported_rows]) - {0}
            problems = [p for p in problems if p["row"] not in committed] or problems
        return _stop(record.pk, problems, count)
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        try:
            record = _import_chunk(record.pk, rows, actor)
        except _RowFailed as failed:
            problem = {"row": failed.row.number, "column": failed.column, "reason": failed.reason}
            return _stop(record.pk, [problem], count)
        if record.state != RegisterImport.State.IMPORTING:
            return record
        if deadline is not None and time.monotonic() >= deadline:
            return record


@transaction.atomic
def _import_chunk(pk: int, rows: list[Row], actor) -> RegisterImport:
    """Import the next chunk after the record's `imported_rows`, in one transaction."""
    # The record's lock makes two runs of one import take turns chunk by chunk.
    record = RegisterImport.objects.select_for_update().get(pk=pk)
    if record.state != RegisterImport.State.IMPORTING:
        return record  # another run finished or stopped it
    start = record.imported_rows
    chunk = rows[start : start + CHUNK_ROWS]
    _check_still_active(chunk)
    progress = caches["progress"]
    for done, row in enumerate(chunk, start=start + 1):
        try:
            result = _import_row(row, record, actor)
        except ValidationError as exc:
            raise _RowFailed(row, "", " ".join(exc.messages)) from exc
        except DatabaseError as exc:
            # A lost race the intake's retries did not absorb, a deadlock: the chunk
            # rolls back and the file can be uploaded again.
            log.warning("register import %s: row %s failed", pk, row.number, exc_info=True)
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            reason = _("The database refused the row (%(error)s); upload the file again.") % {
                "error": first_line
            }
            raise _RowFailed(row, "", reason) from exc
        record.new_tickets += result.created and not result.replayed
        record.joined_tickets += not result.created and not result.replayed
        record.already_known += result.replayed
        if done % PROGRESS_EVERY == 0:
            progress.set(progress_key(pk), done, 24 * 3600)
    record.imported_rows = start + len(chunk)
    record.progressed_at = timezone.now()
    if record.imported_rows >= len(rows):  # the last chunk: the import is done with it
        record.state = RegisterImport.State.IMPORTED
        record.errors, record.error_count = [], 0
        record.finished_at = timezone.now()
        progress.delete(progress_key(pk))
    record.save()
    return record


def _check_still_active(chunk: list[Row]) -> None:
    """Refuse a row whose store or category was deactivated after the file was read."""
    stores = set(
        Channel.objects.filter(pk__in={r.store.pk for r in chunk}, is_active=True).values_list(
            "pk", flat=True
        )
    )
    wanted = {r.category.pk for r in chunk if r.category is not None}
    categories = set(
        Category.objects.filter(pk__in=wanted, is_active=True).values_list("pk", flat=True)
    )
    for row in chunk:
        if row.store.pk not in stores:
            raise _RowFailed(
                row,
                HEADER["store"],
                _("The store %(store)s was deactivated during the import.")
                % {"store": row.store.name},
            )
        if row.category is not None and row.category.pk not in categories:
            raise _RowFailed(
                row,
                HEADER["category"],
                _("The category %(name)s was deactivated during the import.")
                % {"name": row.category.name},
            )


def _stop(pk: int, problems: list[dict], count: int) -> RegisterImport:
    """End an import on a problem: "stopped" if chunks were committed, else "refused"."""
    with transaction.atomic():
        record = RegisterImport.objects.select_for_update().get(pk=pk)
        record.row_count = count or record.row_count
        record.errors = problems
        record.error_count = len({p["row"] for p in problems})
        record.state = (
            RegisterImport.State.STOPPED if record.imported_rows else RegisterImport.State.REFUSED
        )
        record.finished_at = timezone.now()
        record.save()
    caches["progress"].delete(progress_key(pk))
    return record


def _import_row(row: Row, record: RegisterImport, actor) -> services.IntakeResult:
    return services.intake_submit(
        channel=row.store,
        external_id=row.external_id,
        customer={"name": row.name, "phone": row.phone},
        body=row.text,
        order_no=row.order_no,
        occurred_at=row.occurred_at,
        category=row.category,
        actor=actor,
        extra={"register_import": record.pk, "register_row": row.number, "handler": row.handler},
    )


# --- export of the ticket list -------------------------------------------------------


def tickets_export(queryset, fmt: str) -> tuple[bytes, str]:
    """The tickets as an xlsx or csv file (content, content type)."""
    from .resources import TicketExportResource

    dataset = TicketExportResource().export(queryset=queryset)
    if fmt == "csv":
        return CSV().export_data(dataset).encode("utf-8-sig"), "text/csv; charset=utf-8"
    return (
        XLSX().export_data(dataset),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
