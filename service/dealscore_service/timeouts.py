"""Deadlines for slow clients: the request head, the idle connection, and the server's own workers.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) but sets no
deadline on a connection that opens and sends nothing, nor on one that sends its
request line and headers a byte at a time (slowloris): each holds a socket and a
file descriptor for as long as the client likes, and a few thousand exhaust the
worker. :class:`TimedHTTPProtocol` is uvicorn's own HTTP protocol with one timer
more: the request head must be complete within ``timeout_request_head_seconds``
of the connection opening (or of the previous response), else the client gets a
408 and the connection is closed. The body has its own deadline
(:mod:`dealscore_service.limits`); a request being served has none here (scoring
a 1,000-deal batch may take seconds).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

_TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: %d\r\n\r\n%s")


@functools.cache
def head_timeout_seconds() -> float:
    """The setting, read once per worker process (the environment ``dealscore serve`` passed on)."""
    from dealscore_service.settings import Settings

    return Settings().timeout_request_head_seconds


def _timeout_body(seconds: float) -> bytes:
    return (b'{"error": {"type": "RequestTimeoutError", "message": "the request head did not arrive within %gs", '
            b'"fix": "send the request line and headers at once"}}' % seconds)


class TimedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol (httptools, else h11) with a deadline on each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_seconds = head_timeout_seconds()

    def _waiting_for_head(self) -> bool:
        cycle = self.cycle
        return cycle is None or cycle.response_complete

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self._head_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._waiting_for_head():
            return
        body = _timeout_body(self._head_seconds)
        self.transport.write(_TIMEOUT_408 % (len(body), body))
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and not self._waiting_for_head():
            self._cancel_head_timer()  # the head is in: the request is being served

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not getattr(self, "pipeline", None):
            self._arm_head_timer()  # the next request's head has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)
