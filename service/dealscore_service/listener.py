"""Several uvicorn workers, each listening on its own socket (``SO_REUSEPORT``).

uvicorn's own multi-worker mode hands one listening socket to every worker, and a
worker that wakes up accepts every pending connection at once (its event loop
accepts until the queue is empty). A client that opens its keep-alive pool in a
burst (a CRM integration, a load balancer, the load benchmark) therefore lands all
its connections on one worker while the others sit idle: ``bench/bench_service.py`` saw 8 of 8
connections on one of two workers, half the CPU idle and half the throughput.
With ``SO_REUSEPORT`` each worker binds a socket of its own to the same port and
Linux hashes every new connection to one of the workers that are listening.

uvicorn's supervisor is kept as it is (worker health checks, restarts, signals):
it is given a stand-in for the socket that each worker process, on unpickling it,
turns into its own socket. A worker listens only once its app has started (the
model is loaded), so the kernel never queues connections on a worker that
cannot answer them yet.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import TYPE_CHECKING, Any

from dealscore.errors import ConfigError

if TYPE_CHECKING:
    from uvicorn import Config


def supported() -> bool:
    """Linux spreads connections over ``SO_REUSEPORT`` listeners; elsewhere keep uvicorn's shared socket."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _tcp_socket(host: str) -> socket.socket:
    """A TCP socket of the host's address family (uvicorn's rule: IPv6 when the host has a colon)."""
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``, not yet listening."""
    sock = _tcp_socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _check_free(host: str, port: int) -> None:
    """Fail as uvicorn would when the port is taken, even by another server using ``SO_REUSEPORT``.

    Sockets of one user that all set ``SO_REUSEPORT`` may share a port, so a second
    ``dealscore serve`` on the same port would silently take half of the first one's
    connections; a plain bind is refused while any socket listens there.
    """
    with _tcp_socket(host) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a previous run's TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}",
                              fix="stop the server using that port or pass another --port") from exc


class ReusePortListener:
    """Stands in for the listening socket in uvicorn's worker arguments: each worker binds its own.

    The parent checks the port is free and binds one too, without listening, so
    that port 0 resolves to one port all workers share; a socket that does not
    listen receives no connections.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        if port:
            _check_free(host, port)
        self._reservation = bind_reuse_port(host, port)
        self.port = int(self._reservation.getsockname()[1])

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        # what the spawned worker receives: a call that binds the worker's own socket
        return bind_reuse_port, (self.host, self.port)

    def close(self) -> None:
        self._reservation.close()


def run_workers(config: Config) -> None:
    """Run ``config.workers`` uvicorn workers under uvicorn's supervisor, one ``SO_REUSEPORT`` socket each."""
    from uvicorn.supervisors import Multiprocess

    listener = ReusePortListener(config.host, config.port)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[listener]).run()  # type: ignore[list-item]
    finally:
        listener.close()
