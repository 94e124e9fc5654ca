"""A real outage of an embedded MLflow registry, for fallback tests.

The SQLite file is overwritten in place with bytes that are not a database (so
even a connection MLflow keeps open fails), and restored afterwards. Pointing
the client at another URI instead would be *another* registry, whose local copy
must never be served.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def registry_down(uri: str) -> Iterator[None]:
    """While inside, the SQLite registry at ``uri`` (``sqlite:///...``) cannot be read."""
    assert uri.startswith("sqlite:///"), uri
    db = Path(uri[len("sqlite:///"):])
    saved = db.read_bytes()
    db.write_bytes(b"this is not a database" * 256)
    try:
        yield
    finally:
        db.write_bytes(saved)
