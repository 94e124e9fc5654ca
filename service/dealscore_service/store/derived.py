"""What the store computes from the whole ``deals`` table, kept while the table's revision stays the same.

The at-risk list's totals and risk-level cut-offs, and the page's filter menus,
are aggregates over every matching open deal: a scan that grows with the deals
(at 200,000 deals, tens to hundreds of milliseconds per request). They change
only when a deal does, and every change to ``deals`` raises the number in
``deals_revision`` in its own transaction (:class:`~dealscore_service.store.models.DealsRevisionRecord`).
So a value computed after reading revision ``r`` is exact for as long as the
revision read is still ``r``; the next request reads the revision (one
primary-key read) and reuses it, or recomputes when anything changed.

Why the value is never stale: the revision is read *before* the value is
computed, so the value reflects revision ``r`` or something newer; a request
that later reads ``r`` again does so before ``r + 1`` was committed, and a
request reading ``r + 1`` finds nothing kept under it; and numbers never repeat
(the revision starts at the table's creation time in microseconds, so even a
table created again continues above). Each worker process keeps
its own values; they agree because they all read the same revision.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class DerivedCache:
    """Values keyed by what they were computed from, all valid for one revision of ``deals``.

    Seeing a newer revision drops everything kept under older ones; a value
    computed under an older revision than the newest seen is not kept (it may
    already be out of date). At most ``size`` values, least recently used
    dropped first, since the keys include caller-chosen filters.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._revision: int | None = None
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, revision: int | None, key: Hashable) -> Any | None:
        """The value kept for ``key`` under ``revision``, or ``None``."""
        if revision is None:
            return None
        with self._lock:
            self._advance(revision)
            if revision != self._revision or key not in self._values:
                return None
            self._values.move_to_end(key)
            return self._values[key]

    def put(self, revision: int | None, key: Hashable, value: Any) -> None:
        """Keep ``value``, computed after reading ``revision``, unless a newer revision has been seen."""
        if revision is None:
            return
        with self._lock:
            self._advance(revision)
            if revision != self._revision:
                return
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def _advance(self, revision: int) -> None:
        if self._revision is None or revision > self._revision:
            self._revision = revision
            self._values.clear()
