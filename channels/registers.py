"""Offline store registers: the xlsx template, the checked upload, the all-or-nothing import.

Stores write complaints into a paper or spreadsheet register; staff upload it
here. Every row is checked first and every problem is reported (row number,
column, reason); only a file without problems can be imported, and then every
row goes through `services.intake_submit` in one transaction, so the identity
and repeat rules are the API's and one failing row leaves nothing behind.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass

import tablib
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from import_export.formats.base_formats import CSV, XLSX

from complaints.models import Category

from . import services
from .identity import customer_keys
from .models import Channel, ChannelKind, RegisterImport


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
MAX_ROWS = 20_000
MAX_FILE_BYTES = 5 * 1024 * 1024
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
        occurred_at, date_problem = _date(cell("date"), today)
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


# Files up to this many rows import within the request; larger ones in a q2 worker,
# with their progress shown on the import's page.
SYNC_IMPORT_ROWS = 300
PROGRESS_EVERY = 25


def progress_key(pk: int) -> str:
    return f"register-import:{pk}"


def import_progress(record: RegisterImport) -> int:
    """Rows of a running import done so far (0 before the worker starts)."""
    return caches["progress"].get(progress_key(record.pk), 0)


@transaction.atomic
def register_confirm(*, record: RegisterImport | int, actor) -> RegisterImport:
    """Import a checked file whole: every row through intake, or none if one fails.

    Large files are handed to a django-q2 worker after commit (state "importing");
    the import's page shows the rows done until the result is in.
    """
    pk = record.pk if isinstance(record, RegisterImport) else record
    record = RegisterImport.objects.select_for_update().get(pk=pk)
    if record.state != RegisterImport.State.PREVIEWED:
        raise ValidationError(_("This file was already imported or refused; upload it again."))
    if record.row_count > SYNC_IMPORT_ROWS:
        from django_q.tasks import async_task

        record.state = RegisterImport.State.IMPORTING
        record.save(update_fields=["state"])
        caches["progress"].set(progress_key(pk), 0, 24 * 3600)
        transaction.on_commit(
            lambda: async_task(
                "channels.registers.register_import_run", pk, actor.pk, group="registers"
            )
        )
        return record
    return _run_import(record, actor)


@transaction.atomic
def register_import_run(pk: int, actor_pk: int) -> str:
    """The q2 task of a large import. Safe to run again after a crash: the import is one
    transaction (rolled back whole), and a finished one is not touched."""
    from django.contrib.auth import get_user_model

    record = RegisterImport.objects.select_for_update().get(pk=pk)
    if record.state != RegisterImport.State.IMPORTING:
        return record.state
    actor = get_user_model().objects.get(pk=actor_pk)
    return _run_import(record, actor).state


def _run_import(record: RegisterImport, actor) -> RegisterImport:
    with record.file.open("rb") as handle:
        content = handle.read()
    # Checked again: stores, categories or the date may have changed since the preview.
    rows, problems, count = parse_register(content, record.file_name)
    progress = caches["progress"]
    new = joined = known = 0
    if not problems:
        try:
            with transaction.atomic():
                for done, row in enumerate(rows, start=1):
                    result = _import_row(row, record, actor)
                    new += result.created and not result.replayed
                    joined += not result.created and not result.replayed
                    known += result.replayed
                    if done % PROGRESS_EVERY == 0:
                        progress.set(progress_key(record.pk), done, 24 * 3600)
        except ValidationError as exc:
            problems = [{"row": row.number, "column": "", "reason": " ".join(exc.messages)}]
            new = joined = known = 0
    record.row_count = count
    record.errors = problems
    record.error_count = len({p["row"] for p in problems})
    record.state = RegisterImport.State.REFUSED if problems else RegisterImport.State.IMPORTED
    record.new_tickets, record.joined_tickets, record.already_known = new, joined, known
    record.finished_at = timezone.now()
    record.save()
    progress.delete(progress_key(record.pk))
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
