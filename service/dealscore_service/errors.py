"""The service's error handling: one handler for every product error, one error shape.

Every error a client can cause is a :class:`~dealscore.errors.DealscoreError`
subclass carrying its HTTP status, so the service maps them all with a single
handler instead of scattering ``HTTPException`` calls through the routers. The
body always has the same shape (``{"error": {type, message, fix, fields, ...}}``)
so a CRM integration parses one thing, whatever went wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dealscore.errors import DataValidationError, DealscoreError, ModelNotReadyError, StoreUnavailableError
from dealscore_service.limits import too_large_fix

log = structlog.get_logger("dealscore_service.errors")


class AuthenticationError(DealscoreError):
    """No API key, or one the service does not know."""

    http_status = 401


class PermissionDeniedError(DealscoreError):
    """The key is valid but lacks the scope, or the deal is outside its owners/teams."""

    http_status = 403


class DealClosedError(DealscoreError):
    """The deal was closed (its outcome recorded): it is no longer scored."""

    http_status = 409


class DealChangedError(DealscoreError):
    """Another request created, moved or closed the deal while this one was scored: nothing was written."""

    http_status = 409


class FieldsError(DealscoreError):
    """An error that points at the request's own values: ``fields`` holds one ``{loc, path, message, type}`` each.

    A base of both the payload error (which is also a :class:`DataValidationError`,
    as the library's checks raise) and the query error, so both carry their field
    paths the one way the handler reads.
    """

    def __init__(self, message: str, *, fields: Sequence[dict[str, Any]] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.fields = list(fields)


class InvalidPayloadError(FieldsError, DataValidationError):
    """A deal payload breaks the data contract; ``fields`` points at the offending JSON values.

    Raised by the payload conversion, which knows how the contract's tables map
    back onto the request body, so the client sees ``activities[3].type`` rather
    than a CSV row number.
    """


class InvalidQueryError(FieldsError):
    """A query parameter of a valid type that this request may not use; ``fields`` points at it (``query.by``)."""

    http_status = 422


def query_field(name: str, message: str, fix: str, kind: str = "value_error") -> dict[str, Any]:
    """A query parameter's field error, in the shape of every other 422's fields (``loc``, ``path``, ...)."""
    return {"loc": ["query", name], "path": f"query.{name}", "type": kind, "message": message, "fix": fix}


def field_path(loc: Sequence[str | int]) -> str:
    """``["body", "activities", 3, "type"]`` → ``activities[3].type`` (what a client developer reads)."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def error_payload(
    kind: str, message: str, *, fix: str | None = None, fields: Sequence[dict[str, Any]] = (),
    detail: dict[str, Any] | None = None, request_id: str | None = None,
) -> dict[str, Any]:
    """The one error body shape (documented as ``ErrorResponse`` in the OpenAPI schema)."""
    body: dict[str, Any] = {"type": kind, "message": message}
    if fix:
        body["fix"] = fix
    if fields:
        body["fields"] = list(fields)
    if detail:
        body["detail"] = detail
    if request_id:
        body["request_id"] = request_id
    return {"error": body}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _retry_after(request: Request, exc: DealscoreError) -> dict[str, str]:
    if isinstance(exc, StoreUnavailableError | ModelNotReadyError):
        settings = getattr(request.app.state, "settings", None)
        seconds = getattr(settings, "store_retry_after_seconds", 5)
        return {"Retry-After": str(seconds)}
    return {}


async def dealscore_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Map any :class:`DealscoreError` to its ``http_status`` and the common body."""
    assert isinstance(exc, DealscoreError)
    status = int(getattr(exc, "http_status", 400))
    fix = getattr(exc, "fix", None) or exc.detail.get("fix")
    fields = exc.fields if isinstance(exc, FieldsError) else []
    detail = {k: v for k, v in exc.detail.items() if v not in (None, [], {}, "") and k != "fix"}
    problems = getattr(exc, "problems", [])
    if problems:
        detail["problems"] = [str(p) for p in problems]
    if status >= 500:
        log.warning("service_error", error=type(exc).__name__, message=exc.message, status=status)
    return JSONResponse(
        error_payload(type(exc).__name__, exc.message, fix=fix, fields=fields, detail=detail,
                      request_id=_request_id(request)),
        status_code=status,
        headers=_retry_after(request, exc),
    )


_FIXES = {
    "too_long": "send fewer items (see the maximum in the message); split large batches into several requests",
    "missing": "add the field",
    "json_invalid": "send a valid JSON document with Content-Type: application/json",
    "extra_forbidden": "remove the field; see the request schema at /docs",
    "duplicate_key": "send each key once per object",
}
#: The fix for a value that does not match a declared pattern, by pattern: filled where the pattern is declared
#: (:mod:`dealscore_service.schemas`), so the pattern and its words stay together.
PATTERN_FIXES: dict[str, str] = {}
_ISO_TIME = "an ISO 8601 date-time such as 2025-03-12T14:30:00Z (UTC) or 2025-03-12T15:30:00+01:00"
_ISO_DAY = "an ISO 8601 date such as 2025-03-12"
#: pydantic's date errors ("invalid character in year") do not say what *is* expected
_TIME_ERRORS = {"datetime_parsing": _ISO_TIME, "datetime_from_date_parsing": _ISO_TIME, "datetime_type": _ISO_TIME,
                "date_parsing": _ISO_DAY, "date_from_datetime_parsing": _ISO_DAY,
                "date_from_datetime_inexact": _ISO_DAY, "date_type": _ISO_DAY}


#: A time whose offset's "+" a URL query read as a space: "2025-06-30T00:00:00 05:00" (the time, the offset).
_LOST_PLUS = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


#: pydantic's bound errors: the sign to show and the context key that holds the bound
_BOUNDS = {"greater_than_equal": ("≥", "ge"), "greater_than": (">", "gt"), "less_than_equal": ("≤", "le"),
           "less_than": ("<", "lt")}
_OBJECT_FIX = "send a JSON object ({...}) with the fields listed at /docs"
_WHOLE_FIX = "send a whole number, such as 120"
#: pydantic's type errors: what to send instead
_TYPE_FIXES = {
    "model_attributes_type": _OBJECT_FIX, "dict_type": _OBJECT_FIX, "model_type": _OBJECT_FIX,
    "list_type": "send a JSON array ([...])",
    "string_type": "send a JSON string",
    "float_type": "send a number, such as 12500 or 12500.5", "float_parsing": "send a number, such as 12500.5",
    "int_type": _WHOLE_FIX, "int_parsing": _WHOLE_FIX, "int_from_float": _WHOLE_FIX,
    "finite_number": "send a finite number (not NaN or Infinity)",
    "bool_type": "send true or false", "bool_parsing": "send true or false",
}


def _bound_fix(kind: str, ctx: Mapping[str, Any], given: Any) -> tuple[str | None, str] | None:
    """What to send instead of a value outside a declared bound or type: (a clearer message, or ``None`` to keep
    pydantic's, and the fix).

    pydantic says "Value should have at most 200 items" of a string whose length is checked after a
    before-validator (an id's trim), "less than or equal to 1e15" of NaN, and words a bound without saying
    what to send; a batch-splitting fix under a long deal id, or no fix at all, told the integrator nothing.
    """
    text = isinstance(given, str)
    if kind in ("string_too_long", "too_long") and (text or kind == "string_too_long"):
        n = ctx.get("max_length")
        return f"is longer than {n} characters", f"send at most {n} characters"
    if kind in ("string_too_short", "too_short") and (text or kind == "string_too_short"):
        n = ctx.get("min_length")
        plural = "s" if n != 1 else ""
        return (f"is shorter than {n} character{plural}",
                f"send at least {n} character{plural}; leave an optional field out rather than send it empty")
    if kind == "too_short":
        n = ctx.get("min_length")
        return None, f"send at least {n} item{'s' if n != 1 else ''}"
    if kind in _BOUNDS:
        sign, key = _BOUNDS[kind]
        limit = ctx.get(key)
        nan = text and given.strip().lower().lstrip("+-") == "nan"
        return ("is not a number" if nan else None), f"send a finite number {sign} {limit}"
    if kind in ("literal_error", "enum"):
        return None, f"send one of {ctx.get('expected')}, as written"
    return (None, _TYPE_FIXES[kind]) if kind in _TYPE_FIXES else None


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 with every offending field's path, what is wrong and how to fix it."""
    assert isinstance(exc, RequestValidationError)
    fields = []
    for err in exc.errors():
        loc = [p if isinstance(p, int | str) else str(p) for p in err.get("loc", ())]
        item: dict[str, Any] = {"loc": loc, "path": field_path(loc), "message": str(err.get("msg", "invalid"))}
        kind = str(err.get("type", ""))
        if kind:
            item["type"] = kind
        if kind == "json_invalid":
            ctx = err.get("ctx") or {}
            item["message"] = f"JSON decode error: {ctx.get('error', 'invalid JSON')} at character {loc[-1]}"
            item["path"] = "body"  # the number is a character position in the body, not a list index
        if kind in _FIXES:
            item["fix"] = _FIXES[kind]
        bound = _bound_fix(kind, err.get("ctx") or {}, err.get("input"))
        if bound is not None:
            item["message"] = bound[0] or item["message"]
            item["fix"] = bound[1]
        if kind == "string_pattern_mismatch":
            pattern = str((err.get("ctx") or {}).get("pattern", ""))
            item["fix"] = PATTERN_FIXES.get(pattern, f"send a value that matches {pattern}")
        if "fix" in (err.get("ctx") or {}):  # the service's own errors say their fix where they are raised
            item["fix"] = str(err["ctx"]["fix"])
        if kind in _TIME_ERRORS:
            expected = _TIME_ERRORS[kind]
            item["message"] = f"{item['message']}: got {err.get('input')!r}, expected {expected}"
            item["fix"] = f"send {expected}; a date such as 12/03/2026 is ambiguous (day or month first)"
            given = err.get("input")
            lost_plus = _LOST_PLUS.match(given.strip()) if loc[:1] == ["query"] and isinstance(given, str) else None
            if lost_plus:
                # "…T00:00:00+05:00" unencoded in a URL arrives as "…T00:00:00 05:00": a query's "+" is a space
                item["fix"] = (f"percent-encode the offset's '+' as %2B (in a URL query a '+' is a space: "
                               f"{lost_plus[1]}%2B{lost_plus[2]}), or send the time in UTC with Z")
        fields.append(item)
    content_type = request.headers.get("content-type", "")
    if request.method in ("POST", "PUT", "PATCH") and "json" not in content_type.lower():
        # FastAPI reads a body that is not declared as JSON as raw bytes: say why it was not understood
        fields.insert(0, {"loc": ["header", "content-type"], "path": "Content-Type", "type": "content_type",
                          "message": f"Content-Type must be application/json, got {content_type or 'none'!r}",
                          "fix": "send the header Content-Type: application/json"})
    summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    return JSONResponse(
        error_payload(
            "RequestValidationError", f"the request is invalid: {summary}{more}",
            fix="correct the fields listed in 'fields'; the request schema is at /docs", fields=fields,
            request_id=_request_id(request),
        ),
        status_code=422,
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette/FastAPI HTTP errors (404 unknown route, 405, 413 ...) in the common shape."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (e.g. not UTF-8): bad input like malformed JSON, so 422 as documented
        loc: list[str | int] = ["body"]
        return JSONResponse(
            error_payload(
                "RequestValidationError", f"the request body could not be read: {exc.detail}",
                fix="send a UTF-8 JSON document with Content-Type: application/json",
                fields=[{"loc": loc, "path": "body", "message": str(exc.detail), "type": "body_unreadable"}],
                request_id=_request_id(request),
            ),
            status_code=422,
        )
    kinds = {413: "PayloadTooLargeError", 408: "RequestTimeoutError"}
    kind = kinds.get(exc.status_code, "HTTPError")
    fix = None
    if exc.status_code == 413:
        limit = getattr(exc, "limit", None)
        fix = too_large_fix(limit) if limit else "send a smaller body; split large batches into several requests"
    elif exc.status_code == 408:
        fix = "send the whole body at once, promptly"
    elif exc.status_code == 404:
        fix = "check the URL; the API is documented at /docs"
    return JSONResponse(
        error_payload(kind, str(exc.detail), fix=fix, request_id=_request_id(request)),
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on an app (called once by ``create_app``)."""
    app.add_exception_handler(DealscoreError, dealscore_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
