"""Suite-wide fixtures: small, deterministic histories shared by several areas."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _unfrozen_heap() -> Iterator[None]:
    """Each service app started in a test freezes the heap (``dealscore_service.heap``); undo it after the test,
    so that what one test leaves behind stays collectable in a suite that starts many apps."""
    yield
    gc.unfreeze()
