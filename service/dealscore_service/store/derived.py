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

Under a steady stream of scores the revision moves many times a second, and
every list request would rescan the matching deals (at 20,000 deals about 10 ms
of a worker's CPU, at 200,000 about ten times that): the scans, not the pages,
then decide how much traffic a worker carries. So a value may also be served,
when asked for under a newer revision, while it is younger than ``max_age``
seconds (the ``list_totals_max_age_seconds`` setting): the totals and the risk
levels' cut-offs are then at most that old, while the rows, their order and the
pages are always read fresh. ``max_age=0`` keeps the exact behaviour above. A
deal closed through this process (its outcome recorded) clears its values, so
the worker that answered "closed" never counts the deal in its totals again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class DerivedCache:
    """Values keyed by what they were computed from, each valid for the revision of ``deals`` it was computed at.

    A value is served under its own revision, or under a newer one while it is
    younger than ``max_age`` seconds. A value computed under an older revision
    than the newest seen is not kept (it may already be out of date). At most
    ``size`` values, least recently used dropped first, since the keys include
    caller-chosen filters.
    """

    def __init__(self, size: int = 1024, max_age: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.max_age = max_age
        self._clock = clock
        self._newest: int | None = None
        #: key -> (revision computed after, when computed, value)
        self._values: OrderedDict[Hashable, tuple[int, float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, revision: int | None, key: Hashable) -> Any | None:
        """The value kept for ``key``, if computed under ``revision`` (or later) or recently enough; else ``None``."""
        if revision is None:
            return None
        with self._lock:
            self._advance(revision)
            entry = self._values.get(key)
            if entry is None:
                return None
            at_revision, computed, value = entry
            # computed at this revision or a newer one: exact; at an older one: only while young enough
            fresh = at_revision >= revision or self._clock() - computed <= self.max_age
            if not fresh:
                del self._values[key]
                return None
            self._values.move_to_end(key)
            return value

    def put(self, revision: int | None, key: Hashable, value: Any) -> None:
        """Keep ``value``, computed after reading ``revision``, unless a newer revision has been seen."""
        if revision is None:
            return
        with self._lock:
            self._advance(revision)
            if revision != self._newest:
                return
            self._values[key] = (revision, self._clock(), value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def clear(self, revision: int | None) -> None:
        """Forget every value: after a change this process made (committed as ``revision``) that its next reads
        must show at once. A value computed under an older revision, still in flight, is then not kept either."""
        with self._lock:
            if revision is not None:
                self._advance(revision)
            self._values.clear()

    def _advance(self, revision: int) -> None:
        if self._newest is None or revision > self._newest:
            self._newest = revision
            if self.max_age <= 0:
                self._values.clear()
