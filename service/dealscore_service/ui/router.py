"""The manager page's routes under ``/ui``: login, the at-risk list, a deal, the model.

Server-rendered HTML (Jinja2) over the same store, keys and limits as the API.
Pages never answer with the API's JSON errors: a missing login redirects to
the login form, an unknown or hidden deal is a 404 page, a store outage a 503
page saying when to retry, and each says what to do next.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dealscore import __version__
from dealscore.errors import ModelNotReadyError, StoreUnavailableError
from dealscore.forecast.engine import COMPANY
from dealscore.forecast.periods import PERIOD_KINDS
from dealscore.taxonomy import StageTaxonomy, default_taxonomy
from dealscore_service.auth import Principal, Scope
from dealscore_service.deps import Services, services_of
from dealscore_service.errors import AuthenticationError, InvalidQueryError
from dealscore_service.forecasting import compute_forecast, forecast_currencies, groupings
from dealscore_service.model_info import model_info
from dealscore_service.schemas import mixes_currencies
from dealscore_service.ui import charts, icons
from dealscore_service.ui.data import (
    PER_PAGE,
    ListQuery,
    build_deal,
    build_list,
    currency_choices,
    read_currency,
    url_problems,
)
from dealscore_service.ui.evaluation import EvaluationCache
from dealscore_service.ui.format import install as install_filters
from dealscore_service.ui.session import SessionManager, UISession, principal_for_hash

PREFIX = "/ui"

templates = Jinja2Templates(directory=str(files("dealscore_service") / "templates"))
install_filters(templates.env)
templates.env.globals.update(charts=charts, icons=icons, version=__version__, per_page_choices=PER_PAGE,
                             risk_titles={"high": "top 10% of the list by priority",
                                          "medium": "next 20% of the list by priority",
                                          "low": "the rest of the list"})
templates.env.filters["urlquote"] = lambda s: quote(str(s), safe="")

#: The page loads nothing from elsewhere and runs no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'none'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


class LoginRequired(Exception):
    """Raised by :func:`page_user` when there is no valid session; answered with a redirect to the login form."""

    def __init__(self, next_url: str, notice: str | None = None) -> None:
        super().__init__(next_url)
        self.next_url = next_url
        self.notice = notice


class PageStoreDown(Exception):
    """Raised by :func:`page_user` when the store cannot say whether the session was signed out.

    Answered with the 503 page (not the API's JSON error): a manager's browser
    asked for a page, and a session that may have been ended is never trusted.
    """

    def __init__(self, cause: StoreUnavailableError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class PageUser:
    """The signed-in manager: the key's principal and the session (for the CSRF token)."""

    def __init__(self, principal: Principal, session: UISession) -> None:
        self.principal = principal
        self.session = session

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def scope_note(self) -> str | None:
        """Which deals a limited key sees, in words."""
        p = self.principal
        if not p.limited:
            return None
        parts = []
        if p.teams:
            parts.append(("team " if len(p.teams) == 1 else "teams ") + ", ".join(sorted(p.teams)))
        if p.owners:
            parts.append(("owner " if len(p.owners) == 1 else "owners ") + ", ".join(sorted(p.owners)))
        return " and ".join(parts)


def sessions(request: Request) -> SessionManager:
    return request.app.state.ui_sessions  # type: ignore[no-any-return]


def _path_with_query(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def page_user(request: Request) -> PageUser:
    """The signed-in manager, or :class:`LoginRequired`; checks the key still exists and may read."""
    manager = sessions(request)
    session = manager.read(request)
    if session is None:
        raise LoginRequired(_path_with_query(request))
    services = services_of(request)
    try:
        ended = services.store.session_ended(session.id_hash)
    except StoreUnavailableError as exc:
        raise PageStoreDown(exc) from exc
    if ended:  # signed out: a copy of the cookie is worthless
        raise LoginRequired(_path_with_query(request))
    principal = principal_for_hash(services.keys, session.key_hash)
    if principal is None:
        raise LoginRequired(_path_with_query(request), "Your key is no longer configured on this service; "
                                                       "sign in with a current key.")
    if not principal.has(Scope.read):
        raise LoginRequired(_path_with_query(request), f"The key {principal.name!r} no longer has the read scope.")
    request.state.key_name = principal.name  # the access log names the key, never shows it
    return PageUser(principal, session)


User = Annotated[PageUser, Depends(page_user)]


def _taxonomy(services: Services) -> StageTaxonomy:
    current = services.models.current
    return current.taxonomy if current is not None else default_taxonomy()


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    """A page with the security headers and the base context."""
    root = request.scope.get("root_path", "")
    base = {"root": root + PREFIX, "static": f"{root}{PREFIX}/static"}
    response = templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    if headers:
        response.headers.update(headers)
    return response


def store_error(request: Request, exc: StoreUnavailableError, user: PageUser | None) -> HTMLResponse:
    retry = str(services_of(request).settings.store_retry_after_seconds)
    return render(request, "error.html", {
        "user": user, "title": "Score store unavailable", "status": 503,
        "message": "The score store is not answering, so the page cannot show scores right now.",
        "fix": f"Reload in {retry} seconds. If it lasts, check that the database in DEALSCORE_DATABASE_URL "
               "is running; /readyz shows what the service sees.",
    }, status_code=503, headers={"Retry-After": retry})


def safe_next(raw: object) -> str:
    """Only ever redirect back into the page itself (no open redirect)."""
    text = str(raw or "")
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX) or text.startswith("//") or "\\" in text:
        return PREFIX
    return text


#: Where a deal page's back link may lead, by path, and what it says (the list otherwise).
BACK_LABELS = {f"{PREFIX}/forecast": "Forecast", f"{PREFIX}/model": "The model"}


def back_label(back: str) -> str:
    """The back link's text: the page it goes to (a deal opened from the forecast goes back to the forecast)."""
    return BACK_LABELS.get(urlsplit(back).path.rstrip("/"), "Deals at risk")


def group_label(group: str, principal: Principal, names: Mapping[str, str] | None = None) -> str:
    """A forecast row's name. The total row of a limited key adds up only its teams' (owners') deals, so it is
    not named the company's. ``names``: by owner, each owner's label in the list's owner menu
    (:meth:`~dealscore_service.store.ScoreStore.filter_choices`), so both pages name a rep alike."""
    if group != COMPANY or not principal.limited:
        return (names or {}).get(group, group)
    if principal.teams:
        return "your team" if len(principal.teams) == 1 else "your teams"
    return "your deals"


def mixed_currencies(found: Sequence[str | None]) -> list[str]:
    """The currencies ``found`` (:func:`~dealscore_service.forecasting.forecast_currencies`: those of the open
    deals the key sees), when they mix (else none): the API's rule, named for the page."""
    return sorted(c or "no currency" for c in found) if mixes_currencies(found) else []


def same_origin(request: Request) -> bool:
    """A form post must come from this site (the cookie is SameSite=Lax; this covers older browsers).

    Behind a reverse proxy that rewrites ``Host``, the proxy must pass the
    original one (``proxy_set_header Host $host`` or ``X-Forwarded-Host``).
    """
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    hosts = {request.headers.get("host", ""), *request.headers.get("x-forwarded-host", "").split(",")}
    return urlsplit(origin).netloc in {h.strip() for h in hosts if h.strip()}


def _insecure_transport(request: Request) -> bool:
    """Plain HTTP from a non-loopback host: browsers will drop the secure cookie."""
    if request.url.scheme == "https":
        return False
    host = (request.url.hostname or "").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


# --------------------------------------------------------------------------- login


def _login_page(request: Request, *, next_url: str, error: str | None = None, notice: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    return render(request, "login.html", {
        "user": None, "next": next_url, "error": error, "notice": notice,
        "insecure": _insecure_transport(request), "no_keys": not len(services_of(request).keys),
    }, status_code=status_code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = PREFIX) -> Response:
    if sessions(request).read(request) is not None:
        try:
            page_user(request)
            return RedirectResponse(safe_next(next), status_code=303)
        except LoginRequired:
            pass
    notice = request.query_params.get("notice")
    notices = {"expired": "Your session ended; sign in again.", "out": "You are signed out.",
               "revoked": "Your key is no longer valid here; sign in with a current key."}
    return _login_page(request, next_url=safe_next(next), notice=notices.get(notice or ""))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, api_key: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=2000)] = PREFIX,
) -> Response:
    """Check the key once and start a session; the key itself is not kept."""
    target = safe_next(next)
    if not same_origin(request):
        return _login_page(request, next_url=target, status_code=403, error=(
            "The sign-in form was posted from another site. If the service runs behind a reverse proxy, let the "
            "proxy pass the original Host header (or X-Forwarded-Host)."))
    services = services_of(request)
    try:
        principal = services.keys.authenticate(api_key)
    except AuthenticationError as exc:
        error = ("Type or paste your API key." if not api_key.strip()
                 else "This key is not known to the service. Check it, or ask an admin for a key with the read "
                      "scope (dealscore api-key create --name NAME --scope read).")
        if not len(services.keys):
            error = exc.message[:1].upper() + exc.message[1:] + "."
        return _login_page(request, next_url=target, error=error, status_code=401)
    if not principal.has(Scope.read):
        return _login_page(request, next_url=target, status_code=403, error=(
            f"The key {principal.name!r} can only send deals to be scored; the manager page needs a key with the "
            "read scope."))
    request.state.key_name = principal.name
    response = RedirectResponse(target, status_code=303)
    sessions(request).start(response, api_key, principal)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    session = sessions(request).read(request)
    if session is not None and (not same_origin(request) or not SessionManager.csrf_ok(session, csrf)):
        return render(request, "error.html", {
            "user": None, "title": "Sign-out refused", "status": 403,
            "message": "The sign-out request did not come from this page.",
            "fix": "Use the Sign out button on the page.",
        }, status_code=403)
    if session is not None:  # ended on the server too, so a copied cookie stops working everywhere
        services_of(request).store.end_session(
            session.id_hash, datetime.fromtimestamp(session.issued_at + sessions(request).max_age, UTC))
    response = RedirectResponse(f"{PREFIX}/login?notice=out", status_code=303)
    SessionManager.clear(response)
    return response


# --------------------------------------------------------------------------- pages


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse, name="ui_at_risk")
def at_risk_page(request: Request, user: User) -> Response:
    """The Monday list: open deals ranked by value at risk, filtered by the key's limits and the form.

    A query with a value the list cannot use (:attr:`ListQuery.problems`) is a 422, as the API answers: the
    page says what is wrong and shows the form with the values as given, and lists no deal and no total. The
    list without the refused values would look like the one asked for, and is not; it is one click away.
    """
    services = services_of(request)
    taxonomy = _taxonomy(services)
    query = ListQuery.from_params(request.scope.get("query_string", b""), taxonomy)
    context = {"user": user, "nav": "list", "stages": taxonomy.stages, "model": services.models.current}
    try:
        if query.problems:
            owners, teams = services.store.filter_choices(user.principal)
            currencies = currency_choices(services.store.open_currencies(user.principal),
                                          query.currency or query.given("currency"))
            return render(request, "at_risk.html", {**context, "page": None, "q": query, "owners": owners,
                                                    "teams": teams, "currencies": currencies}, status_code=422)
        page = build_list(services.store, user.principal, query, taxonomy, request.app.state.ui_parsed)
    except StoreUnavailableError as exc:
        return store_error(request, exc, user)
    return render(request, "at_risk.html", {**context, "page": page, "q": page.query, "owners": page.owners,
                                            "teams": page.teams, "currencies": page.currencies})


@router.get("/deals/{deal_id:path}", response_class=HTMLResponse)
def deal_page(request: Request, deal_id: str, user: User) -> Response:
    """One deal: score, stage, reasons, warnings, actions, history and timeline (``?touchpoints=all``: every one)."""
    services = services_of(request)
    taxonomy = _taxonomy(services)
    # back: the list's own URL with its filters (safe_next keeps it on this site), longer than one filter
    url = url_problems(request.scope.get("query_string", b""), ("touchpoints", "back"), what="The deal page",
                       unbounded=("back",))
    shown = request.query_params.get("touchpoints")
    if not url and shown not in (None, "all"):
        url.append(("touchpoints", shown, f"touchpoints={shown!r} is not known: touchpoints=all shows every one."))
    if url:
        return render(request, "error.html", {
            "user": user, "title": "Deal not shown", "status": 422,
            "message": " ".join(m for _, _, m in url),
            "fix": "Open the deal from the list of deals at risk, or drop the parameters named above.",
        }, status_code=422)
    all_touchpoints = shown == "all"
    try:
        view = (build_deal(services.store, user.principal, deal_id, taxonomy, all_touchpoints=all_touchpoints)
                if len(deal_id) <= 200 else None)
    except StoreUnavailableError as exc:
        return store_error(request, exc, user)
    if view is None:
        scope = f" visible to your key ({user.scope_note})" if user.scope_note else ""
        return render(request, "error.html", {
            "user": user, "title": "Deal not found", "status": 404,
            "message": f"There are no scores for deal {deal_id!r}{scope}.",
            "fix": "Check the deal id, or score the deal first (POST /v1/score). Go back to the list of deals at risk.",
        }, status_code=404)
    stage_labels = {s.name: s.label for s in taxonomy.stages}
    back = safe_next(request.query_params.get("back") or PREFIX)
    return render(request, "deal.html", {
        "user": user, "nav": "deal", "d": view, "r": view.latest, "stage_labels": stage_labels, "back": back,
        "back_label": back_label(back),
        "all_touchpoints_url": "?" + urlencode({"touchpoints": "all", "back": back}) + "#tl-title",
    })


def _forecast_refused(request: Request, user: PageUser, message: str, fix: str) -> Response:
    """The forecast page's 422: what cannot be forecast as asked, and what to ask instead."""
    return render(request, "error.html", {"user": user, "title": "Forecast not made", "status": 422,
                                          "message": message, "fix": fix}, status_code=422)


@router.get("/forecast", response_class=HTMLResponse)
def forecast_page(request: Request, user: User) -> Response:
    """Bookings per team (or owner) with a range, a fan chart per group and the deals behind the range."""
    services = services_of(request)
    allowed = groupings(user.principal)
    url = url_problems(request.scope.get("query_string", b""), ("period", "by", "currency"), what="The forecast")
    period = request.query_params.get("period", "quarter")
    by = request.query_params.get("by", allowed[0])
    currency, currency_problem = read_currency((request.query_params.get("currency") or "").strip() or None)
    fix = (f"Use period=month or period=quarter and by={' or by='.join(allowed)}, and a three-letter currency "
           "code if any, or open the forecast from the menu.")
    bad = [m.rstrip(".") for _, _, m in url]
    if period not in PERIOD_KINDS:
        bad.append(f"period {period!r} is not month or quarter")
    if currency_problem is not None:
        bad.append(currency_problem.rstrip("."))
    if bad:  # a forecast other than the one asked: none
        return _forecast_refused(request, user, f"This forecast cannot be made as asked: {'; '.join(bad)}.", fix)
    try:
        fc = compute_forecast(services, user.principal, period=period, by=by, currency=currency)
        found = forecast_currencies(services.store, user.principal, fc)  # read once for the notice and the menu
        currencies = [] if currency else mixed_currencies(found)
        choices = currency_choices(found, currency)
        names = dict(services.store.filter_choices(user.principal)[0]) if by == "owner" else {}  # as the list's
    except InvalidQueryError as exc:  # a grouping the key may not use: the API's own refusal and words
        return _forecast_refused(request, user, exc.message, exc.detail.get("fix") or fix)
    except StoreUnavailableError as exc:
        return store_error(request, exc, user)
    except ModelNotReadyError as exc:
        return render(request, "error.html", {
            "user": user, "title": "No forecast yet", "status": 503, "message": exc.message,
            "fix": exc.detail.get("fix") or "Retry shortly.",
        }, status_code=503)
    fans = []
    for group, sub in fc.fan.groupby("group", sort=False):
        fans.append({"group": group_label(str(group), user.principal, names), "months": list(sub["month"]),
                     "bands": {q: list(sub[q]) for q in ("q10", "q25", "q50", "q75", "q90")}})
    return render(request, "forecast.html", {
        "user": user, "nav": "forecast", "fc": fc, "rows": fc.table.to_dict("records"), "fans": fans,
        "drivers": fc.drivers.to_dict("records"), "groupings": allowed,
        "group_label": lambda group: group_label(str(group), user.principal, names),
        "mixed_currencies": currencies, "currencies": choices, "currency": currency,
        # a driver's deal page leads back to this forecast, not the default one
        "forecast_query": urlencode({"period": period, "by": by, **({"currency": currency} if currency else {})}),
    })


@router.get("/model", response_class=HTMLResponse)
def model_page(request: Request, user: User) -> Response:
    """The model in use, its training window, and its calibration and lift on held-out deals."""
    services = services_of(request)
    try:
        info = model_info(services, user.principal)  # the reps' habits: only those whose deals the key may see
    except StoreUnavailableError as exc:
        return store_error(request, exc, user)
    evaluation, why = (None, None)
    loaded = services.models.current
    if loaded is not None:
        cache: EvaluationCache = request.app.state.ui_evaluations
        evaluation, why = cache.get(loaded)
    return render(request, "model.html", {
        "user": user, "nav": "model", "info": info, "evaluation": evaluation, "why": why,
        "window": info.training_window or {},
    })


@router.get("/{rest:path}", response_class=HTMLResponse)
def not_found(request: Request, rest: str) -> Response:
    """Any other address under /ui: a page, not the API's JSON 404."""
    return render(request, "error.html", {
        "user": None, "title": "Page not found", "status": 404,
        "message": f"There is no page at {request.url.path}.",
        "fix": "Go to the list of deals at risk.",
    }, status_code=404)
