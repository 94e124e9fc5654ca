"""Keeping long-lived objects out of the garbage collector's way.

The model, the libraries and the store are loaded once and live as long as the
process. Python's cyclic collector runs about once per scored request (each one
allocates a few thousand objects) and its older generations would walk all of
that heap again and again. Freezing the heap once it holds the model moves it to
a permanent generation the collector skips; the passes then walk only what
requests allocate.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what is garbage now, then freeze everything still alive.

    Called after every model load: unfreezing first lets the collection free a
    replaced model's reference cycles, which a frozen heap would keep forever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def after_model_load(freeze: bool) -> None:
    """:func:`settle` after a model load when the service owns its process (``Settings.freeze_heap``).

    Embedded in a process it does not own (a notebook, a test suite), the service
    leaves that heap alone: each load would otherwise walk and freeze all of it.
    """
    if freeze:
        settle()
