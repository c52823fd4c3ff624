"""Per-process copies of small reference tables that hot paths read on every request.

Intake reads the SLA policies, the risk settings and the routing rules for every new
ticket; each is a handful of rows that admins change a few times a year. A
`ReferenceCache` keeps what its loader returned until a shared generation key in the
cache changes — saving or deleting one of the watched models bumps it after commit, so
every process reloads on its next read — or for `max_age` seconds at most (a
local-memory cache is per process: without Redis another process notices an edit only
through that ceiling). Values must be treated as read-only.
"""

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save


class ReferenceCache:
    def __init__(self, name: str, loader: Callable[[], Any], *, max_age: float = 60):
        self.name = name
        self.generation_key = f"refcache:{name}:generation"
        self.loader = loader
        self.max_age = max_age
        self._entry: tuple[str, float, Any] | None = None
        self._lock = threading.Lock()

    def _generation(self) -> str:
        generation = cache.get(self.generation_key)
        if generation is None:
            cache.add(self.generation_key, uuid.uuid4().hex, None)
            generation = cache.get(self.generation_key) or ""
        return generation

    def get(self) -> Any:
        """The loaded value: no query while it is fresh."""
        generation = self._generation()
        entry = self._entry
        now = time.monotonic()
        if entry is not None and entry[0] == generation and now - entry[1] < self.max_age:
            return entry[2]
        with self._lock:
            value = self.loader()
            self._entry = (generation, now, value)
        return value

    def invalidate(self) -> None:
        """Reload in this process at once, in every process once the transaction commits
        (bumping earlier would let a reader cache the old rows under the new generation)."""

        def bump():
            cache.set(self.generation_key, uuid.uuid4().hex, None)
            self._entry = None

        self._entry = None
        transaction.on_commit(bump)

    def watch(self, *models, m2m=()) -> None:
        """Invalidate whenever a row of these models (or these m2m tables) changes."""

        def changed(sender, **kwargs):
            self.invalidate()

        # Signals hold receivers weakly: keep the closure alive with the cache.
        self._receiver = changed
        for model in models:
            uid = f"refcache-{self.name}-{model._meta.label}"
            post_save.connect(changed, sender=model, dispatch_uid=f"{uid}-save")
            post_delete.connect(changed, sender=model, dispatch_uid=f"{uid}-delete")
        for through in m2m:
            m2m_changed.connect(
                changed, sender=through, dispatch_uid=f"refcache-{self.name}-{through.__name__}"
            )
