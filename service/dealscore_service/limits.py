"""Request limits: the body cap (413) and the sizes a request may hold (422).

The body cap is enforced before FastAPI parses anything, on the bytes actually
received (a missing or lying ``Content-Length`` does not get around it), so a
client cannot make the service buffer an arbitrarily large upload. The deal
and touchpoint caps are part of the request schema, so they appear in the
OpenAPI document and fail with the same field-path 422 as any other bad input.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_DEALS = 1000
MAX_TOUCHPOINTS_PER_DEAL = 10_000
MAX_STAGE_CHANGES_PER_DEAL = 10_000


class BodyTooLargeError(HTTPException):
    """Raised inside ``receive`` once more bytes arrived than allowed.

    An ``HTTPException`` on purpose: FastAPI re-raises those untouched while it
    reads a body (anything else becomes a generic 400), so the service's HTTP
    error handler answers 413 in the usual error shape.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body is larger than {limit} bytes")
        self.limit = limit


def too_large_body(limit: int) -> bytes:
    """The 413 body, in the same shape as every other error the service returns."""
    return json.dumps(
        {
            "error": {
                "type": "PayloadTooLargeError",
                "message": f"request body is larger than {limit} bytes",
                "fix": f"send at most {limit} bytes per request; split large batches into several requests",
            }
        }
    ).encode()


class BodySizeLimitMiddleware:
    """Pure ASGI middleware answering 413 for bodies above ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
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
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = too_large_body(self.max_bytes)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
