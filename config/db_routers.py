"""Send report queries to a read replica when one is configured.

Only code inside `reports_on_replica()` reads from the replica (reports tolerate a
few seconds of replication lag); everything else, and every write, uses the primary,
so a user always reads what they just wrote.
"""

import contextlib
import threading

from django.conf import settings

_state = threading.local()


@contextlib.contextmanager
def reports_on_replica():
    previous = getattr(_state, "active", False)
    _state.active = True
    try:
        yield
    finally:
        _state.active = previous


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if getattr(_state, "active", False) and "replica" in settings.DATABASES:
            return "replica"
        return None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica mirrors the primary

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
