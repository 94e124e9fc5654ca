"""Request limits: body caps (413), gzip bodies, the body deadline (408), and the sizes a request may hold (422).

The body caps are enforced before FastAPI parses anything, on the bytes actually
received (a missing or lying ``Content-Length`` does not get around them), so a
client cannot make the service buffer an arbitrarily large upload. They are per
route and follow from the item caps, so that every documented 422 can be reached:

- ``POST /v1/score/batch``: 8 MiB, room for the 1,000-deal cap at up to ~8 KB a deal
  (a realistic deal with ~30 touchpoints is ~4.5 KB; at the old 1 MiB for every route
  the batch cap was unreachable, bodies hit 413 at ~230 deals);
- ``POST /v1/score``: 4 MiB, room for 10,000 touchpoints of up to ~400 bytes, so
  10,001 touchpoints answer the documented 422 on ``activities``, not 413;
- every other route: 1 MiB.

A body sent with ``Content-Encoding: gzip`` is decoded here, as it arrives; the caps
apply to the decoded bytes (what the service must hold and parse), so gzip saves
bandwidth, never memory, and a small compressed bomb stops at the cap.

A body must arrive within ``timeout_request_body_seconds`` of the request head: a
client trickling its body holds a connection and a worker's memory for nothing.
The deal and touchpoint caps are part of the request schema, so they appear in
the OpenAPI document and fail with the same field-path 422 as any other bad input.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
MAX_SCORE_BODY_BYTES = 4 * 1024 * 1024
MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH_DEALS = 1000
MAX_TOUCHPOINTS_PER_DEAL = 10_000
MAX_STAGE_CHANGES_PER_DEAL = 10_000
BODY_TIMEOUT_SECONDS = 30.0

#: the routes with a cap of their own (exact paths); the others get the default
SCORE_PATH = "/v1/score"
BATCH_PATH = "/v1/score/batch"


class BodyTooLargeError(HTTPException):
    """Raised inside ``receive`` once more bytes arrived than allowed.

    An ``HTTPException`` on purpose: FastAPI re-raises those untouched while it
    reads a body (anything else becomes a generic 400), so the service's HTTP
    error handler answers 413 in the usual error shape.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body is larger than {limit} bytes")
        self.limit = limit


class BodyTimeoutError(HTTPException):
    """The body did not arrive within the deadline: 408, and the connection is closed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(status_code=408, detail=f"the request body did not arrive within {seconds:g} s",
                         headers={"Connection": "close"})
        self.seconds = seconds


class BadEncodingError(HTTPException):
    """A gzip body that does not decode (answered 422 by the service's 400 handler, like unreadable JSON)."""

    def __init__(self, reason: str) -> None:
        super().__init__(status_code=400, detail=f"the body is not valid gzip data ({reason})")


def too_large_fix(limit: int) -> str:
    """What to do about a 413, for the route's own cap."""
    return (f"send at most {limit} bytes ({limit / 1024 / 1024:g} MiB, after gzip decoding) per request; "
            "split large batches into several requests")


def _error_body(kind: str, message: str, fix: str) -> bytes:
    """An error body in the same shape as every other error the service returns."""
    return json.dumps({"error": {"type": kind, "message": message, "fix": fix}}).encode()


def too_large_body(limit: int) -> bytes:
    """The 413 body."""
    return _error_body("PayloadTooLargeError", f"request body is larger than {limit} bytes", too_large_fix(limit))


class BodySizeLimitMiddleware:
    """Pure ASGI middleware: per-route body caps (413), gzip decoding, and the body deadline (408)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, *, route_limits: Mapping[str, int] | None = None,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.route_limits = dict(route_limits if route_limits is not None else
                                 {SCORE_PATH: MAX_SCORE_BODY_BYTES, BATCH_PATH: MAX_BATCH_BODY_BYTES})
        self.body_timeout = body_timeout

    def limit_for(self, path: str) -> int:
        return self.route_limits.get(path.rstrip("/") or "/", self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        headers = scope.get("headers") or []
        header = dict(headers)
        encoding = header.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"gzip", b"x-gzip", b""):
            await self._reject(send, 415, _error_body(
                "UnsupportedMediaTypeError", f"Content-Encoding {encoding.decode('latin-1')!r} is not supported",
                "send the body as is, or gzip-compressed with Content-Encoding: gzip"))
            return
        gzip = encoding in (b"gzip", b"x-gzip")
        declared = header.get(b"content-length")
        if not gzip and declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, 413, too_large_body(limit))
            return
        if gzip:  # what the app sees is the decoded body: no encoding, no (compressed) length
            scope = {**scope, "headers": [(k, v) for k, v in headers
                                          if k not in (b"content-encoding", b"content-length")]}
        received = 0
        done = False
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        started = False

        async def limited_receive() -> Message:
            nonlocal received, done
            if done:  # the body is in: what follows is the wait for a disconnect, which has no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeoutError(self.body_timeout) from None
            if message["type"] != "http.request":
                return message
            body = message.get("body", b"")
            more = bool(message.get("more_body", False))
            if decoder is not None:
                try:
                    # never more than the cap allows (plus one byte, to know it was passed)
                    body = decoder.decompress(body, limit - received + 1)
                    if decoder.unconsumed_tail:
                        raise BodyTooLargeError(limit)
                    if not more:
                        body += decoder.flush()
                except zlib.error as exc:
                    raise BadEncodingError(str(exc)) from None
                if not more and not decoder.eof:
                    raise BadEncodingError("the compressed stream ends early")
                message = {**message, "body": body}
            received += len(body)
            if received > limit:
                raise BodyTooLargeError(limit)
            done = not more
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._reject(send, 413, too_large_body(limit))
        except BodyTimeoutError as exc:
            if not started:
                await self._reject(send, 408, _error_body("RequestTimeoutError", str(exc.detail),
                                                          "send the whole body at once, promptly"), close=True)

    async def _reject(self, send: Send, status: int, body: bytes, close: bool = False) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
