"""Ticket numbers: `TS<local day>-<serial>`, the serial counted per day in `TicketSequence`.

The day's counter is one row, so every ticket creation takes its lock. Taken inside
the creating transaction, that lock is held until the commit: on PostgreSQL every
other creation then waits for all the work that follows the number (clocks, contact,
timeline, routing, auto-assignment), which caps creations per second whatever the
number of cores. So on PostgreSQL the serial is taken on a connection of its own in
autocommit, where the lock lasts one statement. The price is a gap when the
creating transaction rolls back after taking its number (a lost race on the same
new customer, which the intake then answers as a replay): numbers stay unique and
increase with time, but need not be consecutive.

SQLite lets one writer in at a time anyway, and a second connection would wait for
the first one's write lock: there the serial is taken inside the transaction.
"""

import contextlib
import os
import threading

import psycopg
from django.db import connection

from .models import TicketSequence

# A creator never holds the counter's lock for long on its own connection; this long
# a wait means a transaction is holding it (a bulk loader taking a block of serials,
# possibly this very thread's), so the serial is then taken inside the transaction.
LOCK_TIMEOUT_MS = 2000

# Creates the day's counter or moves it on by `count` (1; a bulk loader reserves a
# block), atomically, and returns the highest serial now taken.
UPSERT = (
    f"INSERT INTO {TicketSequence._meta.db_table} (day, last) VALUES (%s, %s) "  # noqa: S608
    f"ON CONFLICT (day) DO UPDATE SET last = {TicketSequence._meta.db_table}.last + EXCLUDED.last "
    "RETURNING last"
)

_lock = threading.Lock()
_own: dict = {"connection": None, "target": None}


def next_serial(day) -> int:
    """The next serial of the local `day`, unique under any concurrency."""
    if connection.vendor == "postgresql":
        serial = _next_serial_autocommit(day)
        if serial is not None:
            return serial
    with connection.cursor() as cursor:
        cursor.execute(UPSERT, [day.isoformat(), 1])
        (serial,) = cursor.fetchone()
    return serial


def _next_serial_autocommit(day) -> int | None:
    """The serial taken and committed on the process's own connection; None when the
    counter stays locked by a transaction or the server cannot be reached (the caller
    then takes the serial in its own transaction, or fails there as any query would)."""
    with _lock:  # one statement at a time on the shared connection; it takes < 1 ms
        for _attempt in range(2):
            try:
                with _connection().cursor() as cursor:
                    cursor.execute(UPSERT, [day.isoformat(), 1])
                    return cursor.fetchone()[0]
            except psycopg.errors.LockNotAvailable:
                return None
            except psycopg.Error:
                close()  # a broken connection (the server restarted): a new one, once
    return None


def _connection():
    # The database Django's connection points at (tests switch to a test database), from
    # this process (a connection opened before a fork is not shared with the child).
    settings = connection.settings_dict
    target = (settings["NAME"], settings["HOST"], settings["PORT"], settings["USER"], os.getpid())
    own = _own["connection"]
    if own is not None and (own.closed or _own["target"] != target):
        close()
        own = None
    if own is None:
        own = psycopg.connect(**connection.get_connection_params(), autocommit=True)
        own.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        # No wait for the disk on this commit: the ticket's own (synchronous) commit comes
        # later in the WAL, and flushing it flushes the counter's commit too. A crash can
        # lose only increments whose tickets never committed: a gap, never a duplicate.
        own.execute("SET synchronous_commit = off")
        _own.update(connection=own, target=target)
    return own


def close() -> None:
    """Close the process's own connection (tests, before the test database is dropped)."""
    own = _own["connection"]
    _own.update(connection=None, target=None)
    if own is not None and not own.closed:
        with contextlib.suppress(Exception):  # closing a broken connection
            own.close()
