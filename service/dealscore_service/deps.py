"""FastAPI dependencies, all in one place, as ``Annotated`` aliases the routers import.

``ScoreKey`` / ``ReadKey`` / ``AdminKey`` authenticate the caller and check the
scope in one step, so a router cannot forget either; object-level checks (may
this key see this deal?) use the returned :class:`~dealscore_service.auth.Principal`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from dealscore_service.auth import KeyRing, Principal, Scope
from dealscore_service.errors import AuthenticationError, PermissionDeniedError
from dealscore_service.metrics import Metrics
from dealscore_service.model_loader import ModelLoader
from dealscore_service.query_rules import QueryProblem, query_problems
from dealscore_service.settings import Settings
from dealscore_service.store import ScoreStore


@dataclass
class Services:
    """What the app holds for its lifetime (built by ``create_app``, opened by the lifespan)."""

    settings: Settings
    store: ScoreStore
    models: ModelLoader
    keys: KeyRing
    metrics: Metrics


def services_of(request: Request) -> Services:
    """The app's services, for code that holds a request (the web page's handlers)."""
    return request.app.state.services  # type: ignore[no-any-return]


# The dependencies are ``async def`` although they never await: FastAPI runs a
# plain ``def`` dependency in the thread pool, and on the scoring hot path the
# thread hops (and GIL handoffs) of three trivial dependencies cost more than
# the dependencies themselves. They do no blocking I/O, so the event loop is
# the right place for them; the endpoints that do (scoring, the store) stay ``def``.
async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="an API key (dealscore api-key create)"
)
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


async def get_principal(
    request: Request,
    services: ServicesDep,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """Authenticate the caller (401 without a known key); remember its name for the access log.

    Two different keys in one request (``X-API-Key`` and a bearer token) are a 401, not one of them chosen:
    a proxy adding its own key beside the client's would otherwise act under whichever header we read first.
    """
    if api_key and bearer and api_key.strip() != bearer.credentials.strip():
        raise AuthenticationError("two different API keys: one in X-API-Key and one in Authorization",
                                  fix="send one key, in X-API-Key or as Authorization: Bearer <key>, not both")
    raw = api_key or (bearer.credentials if bearer else None)
    principal = services.keys.authenticate(raw)
    request.state.key_name = principal.name
    return principal


def require(*scopes: Scope) -> Callable[..., Principal]:
    """A dependency accepting keys holding any of ``scopes`` (``admin`` holds all)."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not any(principal.has(s) for s in scopes):
            wanted = " or ".join(s.value for s in scopes)
            raise PermissionDeniedError(
                f"the API key {principal.name!r} lacks the {wanted} scope for this endpoint",
                fix=f"use a key with the {wanted} scope",
            )
        return principal

    return check


ScoreKey = Annotated[Principal, Depends(require(Scope.score))]
ReadKey = Annotated[Principal, Depends(require(Scope.read))]
AdminKey = Annotated[Principal, Depends(require(Scope.admin))]
AnyKey = Annotated[Principal, Depends(require(Scope.read, Scope.score))]


def declared_query(request: Request) -> frozenset[str] | None:
    """The query parameters the matched endpoint declares, read from the app's OpenAPI schema (what clients
    are told); None when the request matched no documented operation."""
    path = getattr(request.scope.get("route"), "path_format", None)
    operation = request.app.openapi().get("paths", {}).get(path, {}).get(request.method.lower())
    if operation is None:
        return None
    return frozenset(p["name"] for p in operation.get("parameters", []) if p.get("in") == "query")


async def well_formed_query(request: Request, _: Annotated[Principal, Depends(get_principal)]) -> None:
    """Every query parameter of these endpoints is one it declares and holds one value of UTF-8 text, or the
    request is a 422 naming it.

    The caller is authenticated first (the same ``get_principal``, solved once per request): a caller
    without a known key is told it needs one (401) before anything about its query. The scope check
    stays with each route, so a known key without the route's scope may get the 422 before its 403
    (the parameters are public in the OpenAPI schema anyway).

    ``?team=a&team=b`` is refused, not half-read; ``?owner=%FF`` is refused, not read as a replacement
    character that filters everything out; ``?declared_stage=negotiation`` (the filter is ``stage``) is refused,
    not ignored: the client would take the whole list for the filtered one.
    """
    known = declared_query(request)
    problems = [_field_error(p, known or frozenset())
                for p in query_problems(request.scope.get("query_string", b""), known)]
    if problems:
        raise RequestValidationError(problems)


def _field_error(problem: QueryProblem, known: frozenset[str]) -> dict[str, Any]:
    """A query problem as the field error FastAPI's own validation gives (``loc``, ``msg``, ``type``)."""
    loc = ("query", problem.name)
    if problem.kind == "not_utf8":
        return {"type": "query_not_utf8", "loc": loc, "input": None, "msg": "is not UTF-8 text once percent-decoded",
                "ctx": {"fix": "encode the text as UTF-8, then percent-encode its bytes (é is %C3%A9, not %E9)"}}
    if problem.kind == "repeated":
        return {"type": "repeated_parameter", "loc": loc, "input": list(problem.values),
                "msg": f"given {len(problem.values)} times; send it once"}
    return {"type": "unknown_parameter", "loc": loc, "input": problem.values[0],
            "msg": f"is not a parameter of this endpoint; it takes {', '.join(sorted(known)) or 'none'}",
            "ctx": {"fix": "check the parameter's name in the API reference (/docs)"}}
