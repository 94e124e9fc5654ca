"""Reading a JSON request body strictly: a key sent twice in one object is a 422 at its path.

Python's ``json`` (which FastAPI uses) keeps the last of two equal keys without a
word, so ``{"amount": 100, "amount": 1000000}`` was scored as a million; another
parser would have kept the first. Which value the client meant cannot be known,
so the body is refused, naming the path of each repeated key. Every route with a
JSON body uses :class:`StrictJSONRoute`; the parsed body is handed to FastAPI as
the request's JSON, so it is parsed once.

A body Python's parser cannot hold is a 422 at the body too, never a 500: arrays or
objects nested deeper than the interpreter's recursion limit (``[[[[...]]]]``, a few
hundred kilobytes), and integers longer than Python converts (4,300 digits by default,
its guard against quadratic-time parsing).
"""

from __future__ import annotations

import contextlib
import email.message
import json
import sys
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


def _unreadable(message: str, fix: str) -> RequestValidationError:
    """A 422 at the body itself: the document is valid JSON, but not one this parser can hold."""
    return RequestValidationError([{
        "type": "json_unreadable", "loc": ("body",), "msg": message, "input": None, "ctx": {"fix": fix},
    }], body=None)


def _loads(body: bytes, hook: Callable[[list[tuple[str, Any]]], Any]) -> Any:
    """``json.loads`` with ``hook`` for objects; what it cannot hold (see the module docstring) is a 422."""
    try:
        return json.loads(body, object_pairs_hook=hook)
    except (json.JSONDecodeError, UnicodeDecodeError, _DuplicateKeyError):
        raise
    except RecursionError:
        raise _unreadable("the JSON document nests arrays or objects too deeply to be read",
                          "send the document with its usual few levels of nesting") from None
    except ValueError:  # the scanner's int() of a number longer than Python converts
        digits = sys.get_int_max_str_digits()
        raise _unreadable(f"a number in the JSON document has more than {digits} digits",
                          f"send numbers with at most {digits} digits") from None


def parse_json_body(body: bytes) -> Any:
    """The body's JSON value; a repeated key raises a :class:`RequestValidationError` naming each one,
    and so does a document too deep or with a number too long to be read (at the body).

    Malformed JSON raises ``json.JSONDecodeError`` as ``json.loads`` does.
    """
    try:
        return _loads(body, _unique_object)
    except _DuplicateKeyError:
        pass
    tree = _loads(body, _Pairs)
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
