"""The frozen heap: long-lived objects out of the collector's way, replaced ones still freed."""

from __future__ import annotations

import gc
import weakref

from dealscore_service import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector can free it


def test_settle_freezes_what_lives_and_frees_a_replaced_cycle() -> None:
    try:
        old = _Node()
        ref = weakref.ref(old)
        heap.settle()  # "the first model": frozen with the rest of the heap
        assert gc.get_freeze_count() > 0
        del old
        gc.collect()
        assert ref() is not None, "a frozen object's cycle is out of the collector's reach"
        heap.settle()  # "a reload": the replaced object's cycle is collected, the rest frozen again
        assert ref() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_service_freezes_the_heap_after_its_model_loads_unless_embedded(
        make_client, trained_model) -> None:  # type: ignore[no-untyped-def]
    """On by default (a served process owns its heap); ``freeze_heap: false`` leaves a host process's heap alone."""
    gc.unfreeze()
    try:
        make_client(model_path=trained_model.bundle_dir, freeze_heap=False)
        assert gc.get_freeze_count() == 0
        client = make_client(model_path=trained_model.bundle_dir, freeze_heap=True)
        assert client.get("/readyz").status_code == 200 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
