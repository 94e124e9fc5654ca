"""Connecting to a Dask cluster: a scheduler address, or ``local:N`` for a LocalCluster on this machine.

Every ``--scheduler`` option (and the ``DEALSCORE_SCHEDULER`` setting) goes
through :func:`connect`, so the commands run the same on a laptop's LocalCluster
and on a real cluster (a ``dask scheduler`` with workers, Kubernetes, Gateway).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from dealscore.errors import ConfigError

SCHEDULER_ENV = "DEALSCORE_SCHEDULER"
_LOCAL = re.compile(r"^local(?::(\d+))?$")


def parse_local(address: str) -> int | None:
    """Workers of a ``local`` or ``local:N`` address (one thread each), None for a real scheduler's address."""
    m = _LOCAL.match(address.strip())
    if m is None:
        return None
    n = int(m.group(1) or 2)
    if n < 1:
        raise ConfigError(f"--scheduler {address!r}: a LocalCluster needs at least one worker (local:2)")
    return n


@contextmanager
def connect(address: str, *, memory_limit: str | None = None) -> Iterator[Client]:
    """A client on ``address``: ``local:N`` starts (and afterwards stops) a LocalCluster of N worker
    processes with one thread each; anything else (``tcp://host:8786``) is a running scheduler.

    Worker processes (not threads) because feature building is NumPy and pandas
    work that holds the GIL between kernels: threads would share one core.
    """
    n = parse_local(address)
    if n is not None:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                          memory_limit=memory_limit or "auto") as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r}: {exc}",
            fix="start one (`dask scheduler`, then `dask worker ADDRESS` on each machine) or use --scheduler local:2",
        ) from exc
    with client:
        yield client
