"""The request context: an id per request, one access-log line, and the route metrics.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so the request id bound in
structlog's context variables is visible to every log line of the request,
and so an unexpected exception still gets a JSON 500 quoting the request id
rather than a bare text error.
"""

from __future__ import annotations

import json
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dealscore_service.logging import request_id_from
from dealscore_service.metrics import Metrics

log = structlog.get_logger("dealscore_service.access")


class RequestContextMiddleware:
    """Request id, access log and Prometheus observations for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = request_id_from(raw_id) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled_error", method=scope.get("method"), path=scope.get("path"))
            if not response_started:
                body = json.dumps({"error": {
                    "type": "InternalError",
                    "message": f"internal error; please report request id {request_id}",
                    "request_id": request_id,
                }}).encode()
                await send_with_id({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send_with_id({"type": "http.response.body", "body": body})
            status = 500
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # the template as the OpenAPI schema names it: "/v1/deals/{deal_id}/scores", not its "{deal_id:path}"
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=template).observe(elapsed)
            key_name = scope.get("state", {}).get("key_name")
            log.info("request", method=method, route=template, path=scope.get("path"), status=status,
                     duration_ms=round(elapsed * 1000, 2), key_name=key_name)
            structlog.contextvars.clear_contextvars()
