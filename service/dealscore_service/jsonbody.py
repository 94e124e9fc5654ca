"""Reading a JSON request body strictly: a key sent twice in one object is a 422 at its path.

Python's ``json`` (which FastAPI uses) keeps the last of two equal keys without a
word, so ``{"amount": 100, "amount": 1000000}`` was scored as a million; another
parser would have kept the first. Which value the client meant cannot be known,
so the body is refused, naming the path of each repeated key. Every route with a
JSON body uses :class:`StrictJSONRoute`; the parsed body is handed to FastAPI as
the request's JSON, so it is parsed once.
"""

from __future__ import annotations

import contextlib
import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

Loc = list[str | int]


class _DuplicateKeyError(ValueError):
    """Raised by the parse hook; the paths are found by a second, slower parse (only for refused bodies)."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKeyError
    return obj


class _Pairs(list):  # type: ignore[type-arg]
    """An object as parsed, every key kept (for finding where the repeated ones are)."""


def _duplicates(value: Any, loc: Loc) -> list[tuple[Loc, str, int]]:
    """(path of the object, repeated key, how many times) for every repeated key, in document order."""
    out: list[tuple[Loc, str, int]] = []
    if isinstance(value, _Pairs):
        counts: dict[str, int] = {}
        for k, _ in value:
            counts[k] = counts.get(k, 0) + 1
        out += [(loc, k, n) for k, n in counts.items() if n > 1]
        seen: set[str] = set()
        for k, v in value:
            if k not in seen:  # a repeated key's values are not walked twice
                seen.add(k)
                out += _duplicates(v, [*loc, k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _duplicates(v, [*loc, i])
    return out


def parse_json_body(body: bytes) -> Any:
    """The body's JSON value; a repeated key raises a :class:`RequestValidationError` naming each one.

    Malformed JSON raises ``json.JSONDecodeError`` as ``json.loads`` does.
    """
    try:
        return json.loads(body, object_pairs_hook=_unique_object)
    except _DuplicateKeyError:
        pass
    tree = json.loads(body, object_pairs_hook=_Pairs)
    errors = [{
        "type": "duplicate_key", "loc": ("body", *loc, key),
        "msg": f"the key {key!r} appears {n} times in the same object; which value is meant cannot be known",
        "input": key,
    } for loc, key, n in _duplicates(tree, [])]
    raise RequestValidationError(errors, body=None)


def _is_json(content_type: str | None) -> bool:
    """FastAPI's own test: no Content-Type, or application/json or application/*+json."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed with repeated keys refused (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            if self.body_field is not None and _is_json(request.headers.get("content-type")):
                body = await request.body()
                # malformed JSON: FastAPI parses it again and answers with the position of the mistake
                with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
                    if body:
                        # Starlette's Request.json() returns this cached value: the body is parsed once
                        request._json = parse_json_body(body)
            return await handler(request)

        return strict_handler
