"""GET /v1/deals/at-risk and /v1/deals/{id}/scores: the ranking, filters, pages, trends."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from dealscore.scoring import at_risk
from dealscore.scoring.result import ScoreResult
from dealscore_service.store import DealFilter, ScoreToSave, StoredScore
from dealscore_service.trend import trend_of

MakeResult = Callable[..., ScoreResult]


@pytest.fixture
def ranked_client(make_client: Callable[..., TestClient], trained_model, keys: dict[str, str]) -> TestClient:
    """An app where 16 open deals of the trained history have been scored through the API."""
    client = make_client(model_path=trained_model.bundle_dir)
    body = {"deals": trained_model.payloads(16), "as_of": trained_model.as_of}
    r = client.post("/v1/score/batch", json=body, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    return client


@pytest.mark.slow
def test_at_risk_ranks_like_the_library(ranked_client: TestClient, keys: dict[str, str]) -> None:
    store = ranked_client.app.state.services.store
    latest = [s.score_result() for s in store.latest_open_scores(DealFilter())]
    expected = at_risk(latest)
    assert expected, "the small history has deals below their stage's usual win rate"
    h = {"X-API-Key": keys["manager"]}
    page = ranked_client.get("/v1/deals/at-risk", params={"limit": 500}, headers=h).json()
    assert [i["deal_id"] for i in page["items"]] == [r.deal_id for r in expected]
    assert page["total"] == len(expected) and page["open_deals"] == len(latest)
    assert page["value_at_risk"] == pytest.approx(sum(r.value_at_risk for r in expected))
    assert page["pipeline_value"] == pytest.approx(sum(r.amount or 0 for r in latest))
    top = page["items"][0]
    assert top["top_warning"] is None or top["top_warning"]["code"]
    assert top["recent_p_win"] == pytest.approx([top["p_win"]])
    # pages tile the ranking
    pages = [ranked_client.get("/v1/deals/at-risk", params={"limit": 3, "offset": o}, headers=h).json()["items"]
             for o in range(0, len(expected), 3)]
    assert [i["deal_id"] for p in pages for i in p] == [r.deal_id for r in expected]


@pytest.mark.slow
def test_at_risk_filters(ranked_client: TestClient, keys: dict[str, str]) -> None:
    h = {"X-API-Key": keys["manager"]}
    everything = ranked_client.get("/v1/deals/at-risk", params={"limit": 500}, headers=h).json()["items"]
    some = everything[0]
    for params, keep in [
        ({"owner": some["owner_id"]}, lambda i: i["owner_id"] == some["owner_id"]),
        ({"team": some["team"]}, lambda i: i["team"] == some["team"]),
        ({"stage": some["declared_stage"].upper()}, lambda i: i["declared_stage"] == some["declared_stage"]),
        ({"min_amount": some["amount"]}, lambda i: (i["amount"] or 0) >= some["amount"]),
    ]:
        got = ranked_client.get("/v1/deals/at-risk", params={**params, "limit": 500}, headers=h).json()["items"]
        assert [i["deal_id"] for i in got] == [i["deal_id"] for i in everything if keep(i)], params
    by_amount = ranked_client.get("/v1/deals/at-risk", params={"sort": "amount", "order": "asc", "limit": 500},
                                  headers=h).json()["items"]
    amounts = [i["amount"] for i in by_amount if i["amount"] is not None]
    assert amounts == sorted(amounts)
    reversed_ranking = ranked_client.get("/v1/deals/at-risk", params={"order": "asc", "limit": 500},
                                         headers=h).json()["items"]  # was the ranking itself, asc ignored
    assert [i["deal_id"] for i in reversed_ranking] == [i["deal_id"] for i in everything][::-1]
    for params, path in (({"stage": "closing"}, "query.stage"), ({"team": ""}, "query.team"),
                         ({"owner": " "}, "query.owner")):
        refused = ranked_client.get("/v1/deals/at-risk", params=params, headers=h)
        assert refused.status_code == 422, params  # was 200 with an empty list; the page refused it
        fields = refused.json()["error"]["fields"]
        assert [f["path"] for f in fields] == [path] and fields[0]["fix"]


def test_at_risk_with_no_scores_is_an_empty_page(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    client = make_client()
    page = client.get("/v1/deals/at-risk", headers={"X-API-Key": keys["manager"]}).json()
    assert page == {"items": [], "total": 0, "open_deals": 0, "limit": 50, "offset": 0, "pipeline_value": 0.0,
                    "value_at_risk": 0.0, "by_currency": [], "mixed_currencies": False}


def test_at_risk_says_each_amounts_currency_and_totals_per_currency(
    make_client: Callable[..., TestClient], make_result: MakeResult, keys: dict[str, str],
) -> None:
    """EUR and USD deals (and one scored without a currency): the flat totals add them as plain numbers, so the
    answer says each item's currency, gives the totals per currency and says that they mix."""
    client = make_client()
    store = client.app.state.services.store  # type: ignore[attr-defined]

    def priced(deal_id: str, currency: str | None, **kw: Any) -> ScoreToSave:
        return ScoreToSave(make_result(deal_id, **kw).model_copy(update={"currency": currency}), f"h-{deal_id}", True)

    store.add([priced("eur-risk", "EUR", amount=1000.0, p_win=0.1),  # value at risk 1000 × (0.5 − 0.1) = 400
               priced("eur-safe", "EUR", amount=3000.0, p_win=0.6),  # above its stage's usual rate: not at risk
               priced("usd-risk", "USD", amount=2000.0, p_win=0.2, team="west"),  # 600
               priced("unknown", None, amount=500.0, p_win=0.3, team="west")])  # 100
    manager = {"X-API-Key": keys["manager"]}
    page = client.get("/v1/deals/at-risk", headers=manager).json()
    assert {i["deal_id"]: i["currency"] for i in page["items"]} == {"eur-risk": "EUR", "usd-risk": "USD",
                                                                    "unknown": None}
    assert page["pipeline_value"] == pytest.approx(6500.0) and page["value_at_risk"] == pytest.approx(1100.0)
    assert page["mixed_currencies"] is True
    assert page["by_currency"] == [  # largest pipeline first
        {"currency": "EUR", "open_deals": 2, "pipeline_value": pytest.approx(4000.0),
         "value_at_risk": pytest.approx(400.0), "deals_at_risk": 1},
        {"currency": "USD", "open_deals": 1, "pipeline_value": pytest.approx(2000.0),
         "value_at_risk": pytest.approx(600.0), "deals_at_risk": 1},
        {"currency": None, "open_deals": 1, "pipeline_value": pytest.approx(500.0),
         "value_at_risk": pytest.approx(100.0), "deals_at_risk": 1},
    ]
    assert_adds_up(page)
    # the breakdown covers the filtered deals, and one currency is not a mix
    east = client.get("/v1/deals/at-risk", params={"team": "east"}, headers=manager).json()
    assert east["mixed_currencies"] is False
    assert east["by_currency"] == [{"currency": "EUR", "open_deals": 2, "pipeline_value": pytest.approx(4000.0),
                                    "value_at_risk": pytest.approx(400.0), "deals_at_risk": 1}]
    assert_adds_up(east)
    west = client.get("/v1/deals/at-risk", params={"team": "west"}, headers=manager).json()
    assert [(t["currency"], t["deals_at_risk"]) for t in west["by_currency"]] == [("USD", 1), (None, 1)]
    assert_adds_up(west)
    # ... and only the deals the key may see
    limited = client.get("/v1/deals/at-risk", headers={"X-API-Key": keys["east_manager"]}).json()
    assert [t["currency"] for t in limited["by_currency"]] == ["EUR"] and limited["mixed_currencies"] is False
    assert limited["by_currency"][0]["deals_at_risk"] == limited["total"] == 1
    assert_adds_up(limited)
    # one currency at a time: a ranking and totals in like money (the code in either case)
    for code in ("USD", "usd"):
        usd = client.get("/v1/deals/at-risk", params={"currency": code}, headers=manager).json()
        assert [i["deal_id"] for i in usd["items"]] == ["usd-risk"] and usd["mixed_currencies"] is False
        assert usd["pipeline_value"] == pytest.approx(2000.0) and usd["value_at_risk"] == pytest.approx(600.0)
    bad = client.get("/v1/deals/at-risk", params={"currency": "dollars"}, headers=manager)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["path"] == "query.currency", bad.text
    assert "ISO 4217" in bad.json()["error"]["fields"][0]["fix"]


def assert_adds_up(page: dict[str, Any]) -> None:
    """The per-currency figures add up to the flat ones: a client may show either and they agree."""
    parts = page["by_currency"]
    assert sum(t["deals_at_risk"] for t in parts) == page["total"]
    assert sum(t["open_deals"] for t in parts) == page["open_deals"]
    assert sum(t["pipeline_value"] for t in parts) == pytest.approx(page["pipeline_value"])
    assert sum(t["value_at_risk"] for t in parts) == pytest.approx(page["value_at_risk"])


@pytest.mark.parametrize(
    ("p_wins", "trend"),
    [([0.5], "unknown"), ([0.5, 0.6, 0.7], "improving"), ([0.7, 0.6, 0.5], "declining"), ([0.5, 0.51, 0.49], "steady")],
)
def test_deal_score_history_and_trend(
    make_client: Callable[..., TestClient], keys: dict[str, str], make_result: MakeResult,
    p_wins: list[float], trend: str,
) -> None:
    client = make_client()
    store = client.app.state.services.store
    store.save([ScoreToSave(make_result("d1", p_win=p, as_of=f"2024-05-0{i + 1}"), f"h{i}", True)
                for i, p in enumerate(p_wins)])
    r = client.get("/v1/deals/d1/scores", headers={"X-API-Key": keys["manager"]})
    assert r.status_code == 200
    body = r.json()
    assert body["trend"] == trend
    assert [s["p_win"] for s in body["scores"]] == p_wins
    assert body["latest"]["p_win"] == p_wins[-1]
    assert body["scores"][0]["warnings"] == ["gone_quiet"]


def test_unknown_deal_is_404(make_client: Callable[..., TestClient], keys: dict[str, str]) -> None:
    r = make_client().get("/v1/deals/nope/scores", headers={"X-API-Key": keys["manager"]})
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "NotFoundError" and "POST /v1/score" in r.json()["error"]["fix"]


def test_trend_uses_the_last_five_scores(make_result: MakeResult) -> None:
    def stored(p: float) -> StoredScore:
        r = make_result("d", p_win=p)
        return StoredScore(0, "d", "h", "v", r.as_of, r.as_of, "r1", "east", 1.0, "proposal", "proposal", p, "C",
                           0.0, True, [], r.model_dump(mode="json"))

    # an old high score outside the window does not make a recent rise look like a decline
    assert trend_of([stored(p) for p in (0.9, 0.3, 0.35, 0.4, 0.45, 0.5)]) == ("improving", 20.0)


def test_list_totals_may_lag_by_at_most_their_max_age_while_rows_are_fresh(
    make_client: Callable[..., TestClient], make_result: MakeResult, keys: dict[str, str],
) -> None:
    """Under a stream of scores the totals are reused for ``list_totals_max_age_seconds``, the rows never.

    The cache's clock is a fake one the test moves: on the wall clock a busy machine
    could take over half a second between two requests and the test would fail by chance.
    """
    client = make_client(list_totals_max_age_seconds=0.5)
    store = client.app.state.services.store  # type: ignore[attr-defined]
    now = [time.monotonic() + 1.0]  # already past the start's warm-up of the empty store's totals
    store._derived._clock = lambda: now[0]  # the cache takes its clock; the store builds it with the real one
    manager = {"X-API-Key": keys["manager"]}
    store.add([ScoreToSave(make_result("d1", p_win=0.05), "h1", True)])
    first = client.get("/v1/deals/at-risk", headers=manager).json()
    assert first["open_deals"] == 1
    store.add([ScoreToSave(make_result("d2", p_win=0.04), "h2", True)])
    now[0] += 0.4
    soon = client.get("/v1/deals/at-risk", headers=manager).json()
    assert {i["deal_id"] for i in soon["items"]} == {"d1", "d2"}  # the rows: read fresh
    assert soon["open_deals"] == 1  # the totals: computed before d2, under half a second ago
    now[0] += 0.2
    later = client.get("/v1/deals/at-risk", headers=manager).json()
    assert later["open_deals"] == 2


@pytest.mark.slow
def test_a_deal_id_with_slashes_is_scored_read_and_closed(scoring_client: TestClient, trained_model,
                                                           keys: dict[str, str]) -> None:
    """Starlette decodes %2F before routing: a {deal_id} segment never matched "OPP/2025/17", so the deal
    could be scored but neither read nor closed, and stayed on the at-risk list for good."""
    crm, manager = {"X-API-Key": keys["crm"]}, {"X-API-Key": keys["manager"]}
    deal_id, quoted = "OPP/2025/17", "OPP%2F2025%2F17"
    body = {**trained_model.payload(), "deal_id": deal_id}
    assert scoring_client.post("/v1/score", json=body, headers=crm).status_code == 200
    history = scoring_client.get(f"/v1/deals/{quoted}/scores", headers=manager)
    assert history.status_code == 200, history.text
    assert history.json()["deal_id"] == deal_id and len(history.json()["scores"]) == 1
    assert scoring_client.get("/v1/deals/at-risk", headers=manager).json()["open_deals"] == 1  # not shadowed
    closed = scoring_client.post(f"/v1/deals/{quoted}/outcome", headers=crm,
                                 json={"outcome": "lost", "closed_at": trained_model.as_of})
    assert closed.status_code == 200, closed.text
    assert closed.json()["deal_id"] == deal_id and closed.json()["is_open"] is False
    assert scoring_client.get("/v1/deals/at-risk", headers=manager).json()["open_deals"] == 0
    assert scoring_client.post("/v1/score", json=body, headers=crm).status_code == 409
    # an id ending in a route's own segment is still the whole id; no other deal is found by a prefix
    assert scoring_client.get("/v1/deals/OPP%2F2025/scores", headers=manager).status_code == 404
    assert scoring_client.get("/v1/deals/OPP%2F2025%2F17%2Fscores/scores", headers=manager).status_code == 404


def _as_served(client: TestClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send a request with its path decoded once, as uvicorn does (``dealscore serve``).

    Starlette's TestClient decodes it twice (httpx's ``URL.path`` is decoded already, and it unquotes it
    again), so ``/v1/deals/OPP%252F1/scores`` reached the app as ``OPP/1``: the 404 a review saw for the id
    ``OPP%2F1`` came from the test client, not the service. httpx's ASGI transport decodes once; it runs
    on the TestClient's event loop, where the app's lifespan ran.
    """
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.request(method, url, **kwargs)

    assert client.portal is not None, "the client is started (make_client enters it)"
    return client.portal.call(send)


@pytest.mark.slow
def test_any_deal_id_the_score_accepts_is_read_and_closed_as_one_encoded_segment(
        scoring_client: TestClient, trained_model, keys: dict[str, str]) -> None:
    """Every id that scores is closed and read at ``/v1/deals/{quote(id, safe="")}/...``; ``.`` and ``..``
    cannot be one segment (clients resolve them away before sending), so they are refused where they are
    scored, with nothing stored, rather than left at risk for good."""
    crm, manager = {"X-API-Key": keys["crm"]}, {"X-API-Key": keys["manager"]}
    for deal_id in ("OPP%2F1", "50% off", "a/../b", "OPP?1#2", "..x"):
        body = {**trained_model.payload(), "deal_id": deal_id}
        assert scoring_client.post("/v1/score", json=body, headers=crm).status_code == 200
        segment = quote(deal_id, safe="")
        history = _as_served(scoring_client, "GET", f"/v1/deals/{segment}/scores", headers=manager)
        assert history.status_code == 200 and history.json()["deal_id"] == deal_id, (deal_id, history.text)
        closed = _as_served(scoring_client, "POST", f"/v1/deals/{segment}/outcome", headers=crm,
                            json={"outcome": "lost", "closed_at": trained_model.as_of})
        assert closed.status_code == 200 and closed.json()["deal_id"] == deal_id, (deal_id, closed.text)
    assert scoring_client.get("/v1/deals/at-risk", headers=manager).json()["open_deals"] == 0

    for deal_id in (".", "..", " .. "):
        r = scoring_client.post("/v1/score", json={**trained_model.payload(), "deal_id": deal_id}, headers=crm)
        assert r.status_code == 422, r.text
        (field,) = [f for f in r.json()["error"]["fields"] if f["path"] == "deal_id"]
        assert "'.' or '..'" in field["message"] and "prefix" in field["fix"]
    batch = {"deals": [*trained_model.payloads(1), {**trained_model.payloads(2)[1], "deal_id": ".."}],
             "as_of": trained_model.as_of}
    r = scoring_client.post("/v1/score/batch", json=batch, headers=crm)
    assert r.status_code == 422 and [f["path"] for f in r.json()["error"]["fields"]] == ["deals[1].deal_id"]
    assert scoring_client.get("/v1/deals/at-risk", headers=manager).json()["open_deals"] == 0


@pytest.mark.slow
def test_an_outcome_closes_after_the_deal_was_created_and_not_in_the_future(
        scoring_client: TestClient, trained_model, keys: dict[str, str]) -> None:
    """Any closed_at was kept (2199-01-01, or a time before the deal existed), dating the outcome wrongly in
    monitoring and retraining: a close before the stored creation, or beyond the clock-skew allowance, is a 422
    at ``closed_at`` and the deal stays open."""
    from datetime import UTC, datetime, timedelta

    from dealscore_service.payload import CLOCK_SKEW

    crm, manager = {"X-API-Key": keys["crm"]}, {"X-API-Key": keys["manager"]}
    body = trained_model.payload()
    assert scoring_client.post("/v1/score", json=body, headers=crm).status_code == 200
    url = f"/v1/deals/{quote(body['deal_id'], safe='')}/outcome"
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    ahead = datetime.now(UTC) + CLOCK_SKEW + timedelta(minutes=5)
    for closed_at, said in ((created - timedelta(seconds=1), "before the deal was created"),
                            ("2199-01-01T00:00:00Z", "in the future"), (ahead, "in the future")):
        sent = closed_at if isinstance(closed_at, str) else closed_at.isoformat()
        r = scoring_client.post(url, headers=crm, json={"outcome": "won", "closed_at": sent})
        assert r.status_code == 422, r.text
        (field,) = r.json()["error"]["fields"]
        assert field["path"] == "closed_at" and said in field["message"] and field["fix"], field
    assert scoring_client.get("/v1/deals/at-risk", headers=manager).json()["open_deals"] == 1
    assert scoring_client.app.state.services.store.deal_events(body["deal_id"]) == []
    # at its creation, and within the allowance ahead of the server's clock, are both accepted
    for closed_at in (created, datetime.now(UTC) + CLOCK_SKEW - timedelta(minutes=1)):
        r = scoring_client.post(url, headers=crm, json={"outcome": "lost", "closed_at": closed_at.isoformat()})
        assert r.status_code == 200, r.text
    assert scoring_client.get("/v1/deals/at-risk", headers=manager).json()["open_deals"] == 0
