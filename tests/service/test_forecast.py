"""GET /v1/forecast: the same numbers as the CLI from the same scores; team-limited keys see only their groups."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dealscore.cli import app
from dealscore.data.history import write_history

from .conftest import TrainedModel


def _score_all_open(client: TestClient, trained_model: TrainedModel, keys: dict[str, str]) -> int:
    bodies = trained_model.payloads(len(trained_model.open_ids))
    r = client.post("/v1/score/batch", json={"deals": bodies, "as_of": trained_model.as_of},
                    headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text[:500]
    return len(bodies)


def test_api_forecast_equals_the_cli_forecast_from_the_same_history(
    scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str], tmp_path
) -> None:
    n = _score_all_open(scoring_client, trained_model, keys)
    r = scoring_client.get("/v1/forecast", params={"sims": 500, "seed": 4}, headers={"X-API-Key": keys["manager"]})
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    api = pd.DataFrame(body["rows"])
    assert api.loc[api["group"] == "company", "open_deals"].iloc[0] == n
    assert body["fan"] and body["drivers"] and any("recorded through the service" in note for note in body["notes"])

    folder = write_history(trained_model.history, tmp_path / "history")
    out = tmp_path / "cli.csv"
    res = CliRunner().invoke(app, ["forecast", str(folder), "--model", str(trained_model.bundle_dir), "--sims", "500",
                                   "--seed", "4", "--chart", str(tmp_path / "fan.png"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    cli = pd.read_csv(out)
    both = cli.merge(api, on=["group", "period"], suffixes=("_cli", "_api"))
    assert set(api["group"]) <= set(cli["group"]) and len(both) == len(api)
    # exact expectations: the stored scores keep each bucket probability to 6 decimals, which moves them by up to
    # ~1e-5 of their value (the Monte Carlo mean reported before hid it: the same numbers fell the same way)
    for col in ("open_expected", "new_expected"):
        np.testing.assert_allclose(both[f"{col}_cli"], both[f"{col}_api"], rtol=1e-4, atol=1e-6)
    # the next period has nothing booked yet on either side, so the whole range must agree
    nxt = both[both["period"] == both["period"].max()]
    for col in ("p10", "p50", "p90"):
        np.testing.assert_allclose(nxt[f"{col}_cli"], nxt[f"{col}_api"], rtol=1e-6, atol=1e-6)


def test_team_limited_key_gets_only_its_teams(scoring_client: TestClient, trained_model: TrainedModel,
                                              keys: dict[str, str]) -> None:
    _score_all_open(scoring_client, trained_model, keys)
    r = scoring_client.get("/v1/forecast", params={"sims": 200}, headers={"X-API-Key": keys["east_manager"]})
    assert r.status_code == 200
    rows = r.json()["rows"]
    assert {row["group"] for row in rows} == {"company"}  # no team called "east" in this history
    assert all(row["p90"] == 0 and row["open_deals"] == 0 for row in rows)
    assert r.json()["drivers"] == []


def test_a_team_limited_key_gets_the_figures_of_its_team_in_the_unlimited_keys_forecast(
        scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str]) -> None:
    """The review's case: the same team, model, scores and seed gave an unlimited key 69,145 from open deals and
    P50 125,951, a key limited to that team 69,644 and 128,009 (one random stream over whichever deals the key
    reads). Now the limited key's rows are the unlimited key's rows of its team, to the last bit."""
    from dealscore_service.auth import Principal, Scope
    from dealscore_service.forecasting import compute_forecast, forecast_response

    _score_all_open(scoring_client, trained_model, keys)
    params = {"sims": 300, "seed": 6}
    everyone = pd.DataFrame(scoring_client.get("/v1/forecast", params=params,
                                               headers={"X-API-Key": keys["manager"]}).json()["rows"])
    services = scoring_client.app.state.services  # type: ignore[attr-defined]
    team = Principal("na_mm", frozenset({Scope.read}), teams=frozenset({NA_MM}))
    mine = pd.DataFrame(forecast_response(compute_forecast(services, team, **params), "v").model_dump()["rows"])
    assert set(mine["group"]) == {"company", NA_MM} and (mine["open_deals"] > 0).all()
    columns = ["period", "open_deals", "booked", "open_expected", "new_expected", "expected", "p10", "p50", "p90"]
    want = everyone.loc[everyone["group"] == NA_MM, columns].reset_index(drop=True)
    assert (want["p90"] > want["p10"]).any()
    for group in (NA_MM, "company"):  # the key's company row is its one team
        got = mine.loc[mine["group"] == group, columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_bad_parameters_are_422_with_the_field(scoring_client: TestClient, keys: dict[str, str]) -> None:
    r = scoring_client.get("/v1/forecast", params={"period": "week"}, headers={"X-API-Key": keys["manager"]})
    assert r.status_code == 422
    assert "period" in r.text
    r = scoring_client.get("/v1/forecast", params={"as_of": "0719-12-30T19:56:16+02:09"},
                           headers={"X-API-Key": keys["manager"]})
    assert r.status_code == 422 and "as_of" in r.text
    assert scoring_client.get("/v1/forecast").status_code == 401


def test_a_forecast_time_the_stored_scores_cannot_answer_is_422_at_as_of(
    scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str],
) -> None:
    """As of 2024 it counted deals created in 2025; as of 2031 it drew every deal as if nothing had moved."""
    h = {"X-API-Key": keys["manager"]}
    r = scoring_client.post("/v1/score/batch", json={"deals": trained_model.payloads(3), "as_of": trained_model.as_of},
                            headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    newest = scoring_client.get("/v1/forecast", headers=h).json()["as_of"]
    for when, said in (("2000-01-01T00:00:00Z", "before the newest fact the score store holds"),
                       ("2199-01-01T00:00:00Z", "in the future")):
        bad = scoring_client.get("/v1/forecast", params={"as_of": when}, headers=h)
        assert bad.status_code == 422, bad.text
        (field,) = bad.json()["error"]["fields"]
        assert field["path"] == "query.as_of" and said in field["message"] and field["fix"]
    assert scoring_client.get("/v1/forecast", params={"as_of": newest}, headers=h).status_code == 200
    plus = scoring_client.get("/v1/forecast?as_of=2025-06-30T00:00:00+05:00", headers=h)  # "+" unencoded
    assert plus.status_code == 422 and "2025-06-30T00:00:00%2B05:00" in plus.json()["error"]["fields"][0]["fix"]
    words = scoring_client.get("/v1/forecast", params={"as_of": "5th of January"}, headers=h)
    assert words.status_code == 422 and "%2B" not in words.json()["error"]["fields"][0]["fix"]  # no lost "+" here


def test_a_repeated_forecast_is_served_from_the_cache_until_a_score_changes(
    scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dealscore_service import forecasting

    computed: list[int] = []
    real = forecasting.forecast_pipeline

    def counting(*args: Any, **kwargs: Any) -> Any:
        computed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(forecasting, "forecast_pipeline", counting)
    _score_all_open(scoring_client, trained_model, keys)
    params, auth = {"sims": 300, "seed": 9}, {"X-API-Key": keys["manager"]}
    first = scoring_client.get("/v1/forecast", params=params, headers=auth)
    assert first.status_code == 200
    before = len(computed)
    again = scoring_client.get("/v1/forecast", params=params, headers=auth)
    assert first.json() == again.json() and len(computed) == before  # not computed again: a hit
    # one deal rescored later: its as_of changes, so does the key, and the forecast is computed afresh
    body = trained_model.payloads(1)[0]
    later = (trained_model.history.data_cut + pd.Timedelta(days=1)).isoformat()
    r = scoring_client.post("/v1/score/batch", json={"deals": [body], "as_of": later},
                            headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text[:300]
    third = scoring_client.get("/v1/forecast", params=params, headers=auth)
    assert third.status_code == 200 and len(computed) == before + 1
    assert third.json()["as_of"] != first.json()["as_of"]


def test_cache_key_changes_with_the_model_the_stored_rows_and_the_request() -> None:
    from dealscore_service.forecasting import cache_key

    base = cache_key("v1", (3, 10, 6), period="quarter", sims=100)
    assert cache_key("v1", (3, 10, 6), sims=100, period="quarter") == base
    assert cache_key("v2", (3, 10, 6), period="quarter", sims=100) != base
    assert cache_key("v1", (3, 13, 7), period="quarter", sims=100) != base
    assert cache_key("v1", (3, 10, 6), period="month", sims=100) != base


def test_defaults_are_one_number_for_the_cli_the_api_and_the_engine() -> None:
    import inspect

    from dealscore.cli.forecast import forecast
    from dealscore.forecast.engine import DEFAULT_SIMS
    from dealscore_service.routers.forecast import get_forecast

    assert inspect.signature(forecast).parameters["sims"].default == DEFAULT_SIMS
    assert inspect.signature(get_forecast).parameters["sims"].default == DEFAULT_SIMS


def test_the_response_carries_the_forecasts_tables_value_for_value() -> None:
    """The JSON rows are built column by column: the same JSON as from the tables' records, NaN amount included."""
    from dealscore.forecast.close_time import BUCKET_EDGES
    from dealscore.forecast.engine import OpenPipeline, forecast_pipeline
    from dealscore_service.forecasting import forecast_response
    from dealscore_service.schemas import ForecastDriver, ForecastFanPoint, ForecastRow

    t = pd.Timestamp("2025-07-07")
    pmf = np.full((3, len(BUCKET_EDGES) - 1), 1.0 / (len(BUCKET_EDGES) - 1))
    pipe = OpenPipeline(deal_id=np.array(["a", "b", "c"], dtype=object), team=np.array(["x", None, "y"], dtype=object),
                        owner_id=np.array(["o1", "o2", "o2"], dtype=object), amount=np.array([100.0, np.nan, 40.0]),
                        p_win=np.array([0.5, 0.9, 0.2]), pmf=pmf, scored_at=np.full(3, t.asm8, dtype="datetime64[ns]"))
    fc = forecast_pipeline(pipe, t, n_sims=200, seed=1)
    body = forecast_response(fc, "v1")

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:  # the former form: row by row through pandas
        return [{k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()}
                for r in frame.to_dict("records")]

    assert body.rows == [ForecastRow(**r) for r in records(fc.table)]
    assert body.fan == [ForecastFanPoint(**r) for r in records(fc.fan.drop(columns="end"))]
    assert len(body.drivers) == 3 and body.model_dump_json() == body.model_copy(update={
        "drivers": [ForecastDriver(**r) for r in records(fc.drivers)]}).model_dump_json()


def test_a_mix_of_currencies_is_told_in_the_answer_not_in_the_cached_forecast() -> None:
    """The figures add amounts as given: the answer names the currencies, says when they mix (a deal without one
    counting as another) and adds a note, leaving the forecast the cache shares untouched."""
    from dealscore.forecast.close_time import BUCKET_EDGES
    from dealscore.forecast.engine import OpenPipeline, forecast_pipeline
    from dealscore_service.forecasting import forecast_response

    t = pd.Timestamp("2025-07-07")
    pmf = np.full((2, len(BUCKET_EDGES) - 1), 1.0 / (len(BUCKET_EDGES) - 1))
    pipe = OpenPipeline(deal_id=np.array(["a", "b"], dtype=object), team=np.array(["x", "y"], dtype=object),
                        owner_id=np.array(["o1", "o2"], dtype=object), amount=np.array([100.0, 40.0]),
                        p_win=np.array([0.5, 0.2]), pmf=pmf, scored_at=np.full(2, t.asm8, dtype="datetime64[ns]"))
    fc = forecast_pipeline(pipe, t, n_sims=100, seed=1)
    notes = list(fc.notes)
    mixed = forecast_response(fc, "v1", ["EUR", None])
    assert mixed.currencies == ["EUR", None] and mixed.mixed_currencies
    assert mixed.notes[:-1] == notes and "EUR, no currency given" in mixed.notes[-1] and fc.notes == notes
    one = forecast_response(fc, "v1", ["EUR"]).model_dump()
    assert one["currencies"] == ["EUR"] and one["mixed_currencies"] is False and one["notes"] == notes


@pytest.mark.slow
def test_the_forecast_names_the_currencies_of_the_deals_it_adds(
        scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str]) -> None:
    """An EUR and a USD deal scored through the API: the forecast adds both amounts, and says so."""
    crm, manager = {"X-API-Key": keys["crm"]}, {"X-API-Key": keys["manager"]}
    later = (trained_model.history.data_cut + pd.Timedelta(days=100)).isoformat()  # the EUR deal: a later quarter
    for deal_id, currency in zip(trained_model.open_ids[:2], ["EUR", "usd"], strict=True):
        body = trained_model.payload(deal_id, currency=currency, **({"as_of": later} if currency == "EUR" else {}))
        r = scoring_client.post("/v1/score", json=body, headers=crm)
        assert r.status_code == 200, r.text[:300]
    body = scoring_client.get("/v1/forecast", params={"sims": 200}, headers=manager).json()
    assert sorted(body["currencies"]) == ["EUR", "USD"] and body["mixed_currencies"] is True
    assert any("several currencies" in note for note in body["notes"])
    listed = scoring_client.get("/v1/deals/at-risk", headers=manager).json()
    assert sorted(t["currency"] for t in listed["by_currency"]) == ["EUR", "USD"]
    assert all(i["currency"] in ("EUR", "USD") for i in listed["items"])
    # one currency at a time: its open deal only, like money, and no future pipeline (it has no currency)
    usd = scoring_client.get("/v1/forecast", params={"sims": 200, "currency": "usd"}, headers=manager).json()
    rows = pd.DataFrame(usd["rows"])
    assert usd["currencies"] == ["USD"] and usd["mixed_currencies"] is False
    assert (rows.loc[rows["group"] == "company", "open_deals"] == 1).all() and (rows["new_expected"] == 0).all()
    assert any("only the open deals in USD" in note for note in usd["notes"])
    assert not any("no pipeline creation model" in note for note in usd["notes"])  # the bundle has one
    assert usd["as_of"] == body["as_of"]  # the same forecast time, whichever currency is asked
    assert not any("several currencies" in note for note in usd["notes"])
    both = pd.DataFrame(body["rows"])
    assert (both.loc[both["group"] == "company", "open_deals"] == 2).all() and both["new_expected"].sum() > 0
    bad = scoring_client.get("/v1/forecast", params={"currency": "US"}, headers=manager)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["path"] == "query.currency"
    # the page offers the same choice (its session cookie is Secure: the same app over https)
    page = TestClient(scoring_client.app, base_url="https://testserver", follow_redirects=False)
    signed_in = page.post("/ui/login", data={"api_key": keys["manager"], "next": "/ui"})
    assert signed_in.status_code == 303, signed_in.text[:300]
    mixed = page.get("/ui/forecast").text
    assert '<select name="currency">' in mixed and 'data-testid="mixed-currencies"' in mixed
    usd_page = page.get("/ui/forecast?currency=usd").text
    assert '<option value="USD" selected>USD</option>' in usd_page
    assert "only the open deals in USD" in usd_page and 'data-testid="mixed-currencies"' not in usd_page
    assert "open deals in USD are likely to book" in usd_page
    none = page.get("/ui/forecast?currency=gbp").text  # the form keeps what the URL asked, not "All"
    assert '<option value="GBP" selected>GBP (no open deal you can see)</option>' in none


def test_an_owner_limited_key_forecasts_by_owner_and_is_told_so_by_team(
        scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str]) -> None:
    """A key limited to owners has no team row: by=team answered 200 with a company row of 0 open deals while
    by=owner showed its deals. Its forecast is by owner by default, and asking by=team is a 422 at ``by`` saying
    which grouping it may ask for."""
    _score_all_open(scoring_client, trained_model, keys)
    mine = {**trained_model.payload(), "deal_id": "MINE-1", "owner_id": "r1"}
    assert scoring_client.post("/v1/score", json=mine, headers={"X-API-Key": keys["crm"]}).status_code == 200
    rep = {"X-API-Key": keys["rep_r1"]}
    for params in ({"sims": 200, "by": "owner"}, {"sims": 200}):  # by owner is its default
        by_owner = scoring_client.get("/v1/forecast", params=params, headers=rep)
        assert by_owner.status_code == 200, by_owner.text
        assert by_owner.json()["by"] == "owner"
        company = [row for row in by_owner.json()["rows"] if row["group"] == "company"]
        assert company and all(row["open_deals"] == 1 for row in company)
    r = scoring_client.get("/v1/forecast", params={"sims": 200, "by": "team"}, headers=rep)
    assert r.status_code == 422, r.text
    (field,) = r.json()["error"]["fields"]
    assert field["path"] == "query.by" and "by=owner" in field["fix"] and "'rep_r1'" in field["message"]
    # an unlimited key still forecasts by team by default
    assert scoring_client.get("/v1/forecast", params={"sims": 200},
                              headers={"X-API-Key": keys["manager"]}).json()["by"] == "team"


# ---------------------------------------------------------------------- by owner: owners the creation model does not
# know as the store does (a new rep; a rep whose team changed since the training history)

NA_MM = "North America Mid-Market"


def test_two_stores_written_in_the_same_order_do_not_share_a_forecast(
        make_client, trained_model: TrainedModel, keys: dict[str, str], tmp_path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache key holds the stored rows' ids, which two stores written in the same order share: the cache was
    one per process, so the second app answered with the first store's forecast (other deals, other amounts)."""
    import weakref

    from dealscore_service import forecasting

    params = {"sims": 200, "seed": 3}
    every = trained_model.payloads(len(trained_model.open_ids))
    half = len(every) // 2
    answers = []
    for n, bodies in enumerate((every[:half], every[half:2 * half])):  # other deals, the same number of rows
        client = make_client(model_path=trained_model.bundle_dir, database_url=f"sqlite:///{tmp_path / f'{n}.db'}")
        r = client.post("/v1/score/batch", json={"deals": bodies, "as_of": trained_model.as_of},
                        headers={"X-API-Key": keys["crm"]})
        assert r.status_code == 200, r.text[:500]
        f = client.get("/v1/forecast", params=params, headers={"X-API-Key": keys["manager"]})
        assert f.status_code == 200, f.text[:500]
        answers.append(pd.DataFrame(f.json()["rows"]))
    assert not np.allclose(answers[0]["open_expected"].sum(), answers[1]["open_expected"].sum())
    monkeypatch.setattr(forecasting, "_caches", weakref.WeakKeyDictionary())  # what a fresh process answers
    fresh = client.get("/v1/forecast", params=params, headers={"X-API-Key": keys["manager"]})
    pd.testing.assert_frame_equal(answers[1], pd.DataFrame(fresh.json()["rows"]))


def _moved_store(client: TestClient, trained_model: TrainedModel, keys: dict[str, str]) -> tuple[str, list[str]]:
    """Every open deal scored; owner R0004's (North America Mid-Market in the training history, where the
    creation model learned their rate) now in team east; a new rep's deal in east.

    Returns the moved owner and the ids of east's deals.
    """
    moved = "R0004"
    deals = trained_model.history.deals.set_index("deal_id")
    bodies = trained_model.payloads(len(trained_model.open_ids))
    for b in bodies:
        if deals.at[b["deal_id"], "owner_id"] == moved:
            b["team"] = "east"
    r = client.post("/v1/score/batch", json={"deals": bodies, "as_of": trained_model.as_of},
                    headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text[:500]
    new = {**trained_model.payload(), "deal_id": "NEW-REP-1", "owner_id": "N-NEW", "team": "east"}
    assert client.post("/v1/score", json=new, headers={"X-API-Key": keys["crm"]}).status_code == 200
    return moved, [*(b["deal_id"] for b in bodies if b["team"] == "east"), "NEW-REP-1"]


def test_a_team_key_by_owner_gets_its_owners_as_the_store_places_them(
        scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str]) -> None:
    """A team-limited key by owner: every owner of its teams' open deals has a row (a new rep with their open deals
    and no future pipeline, named in a note; a rep moved into the team with their future pipeline too), the
    company row counts all its deals, and an owner's row has the figures the unlimited key's has."""
    moved, east_ids = _moved_store(scoring_client, trained_model, keys)
    params = {"sims": 300, "seed": 3, "by": "owner"}
    east = scoring_client.get("/v1/forecast", params=params, headers={"X-API-Key": keys["east_manager"]})
    assert east.status_code == 200, east.text
    rows = pd.DataFrame(east.json()["rows"])
    assert set(rows["group"]) == {"company", moved, "N-NEW"}
    company = rows[rows["group"] == "company"]
    assert (company["open_deals"] == len(east_ids)).all()
    new = rows[rows["group"] == "N-NEW"]
    assert (new["open_deals"] == 1).all() and (new["new_expected"] == 0).all()
    mover = rows[rows["group"] == moved]
    assert (mover["open_deals"] == len(east_ids) - 1).all() and mover["new_expected"].sum() > 0
    assert any("N-NEW" in note and "does not know" in note for note in east.json()["notes"])
    # the same figures as in the unlimited key's rows: each deal draws from its own stream, each owner's future
    # pipeline from theirs, so the deals and owners drawn beside them change nothing
    everyone = pd.DataFrame(scoring_client.get("/v1/forecast", params=params,
                                               headers={"X-API-Key": keys["manager"]}).json()["rows"])
    columns = ["group", "period", "open_deals", "booked", "open_expected", "new_expected", "expected", "p10", "p50",
               "p90"]
    same = everyone[everyone["group"].isin([moved, "N-NEW"])][columns].sort_values(["group", "period"])
    mine = rows[rows["group"] != "company"][columns].sort_values(["group", "period"])
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), same.reset_index(drop=True))
    # the mover moves on, to west (a deal scored later): east's own deals are unchanged, its answer is not cached
    later = (trained_model.history.data_cut + pd.Timedelta(days=1)).isoformat()
    west = {**trained_model.payload(), "deal_id": "WEST-1", "owner_id": moved, "team": "west", "as_of": later}
    assert scoring_client.post("/v1/score", json=west, headers={"X-API-Key": keys["crm"]}).status_code == 200
    again = scoring_client.get("/v1/forecast", params=params, headers={"X-API-Key": keys["east_manager"]}).json()
    # one forecast time for every key: the store's newest fact, the west deal's score, though east cannot see it
    assert pd.Timestamp(again["as_of"]) == pd.Timestamp(later, tz="UTC") > pd.Timestamp(east.json()["as_of"])
    mover = pd.DataFrame(again["rows"]).query("group == @moved")
    assert (mover["open_deals"] == len(east_ids) - 1).all() and (mover["new_expected"] == 0).all()
    assert any(moved in note and "now works in another team" in note for note in again["notes"])


def test_a_team_key_by_owner_does_not_get_the_future_pipeline_of_an_owner_who_left_its_team(
        scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str]) -> None:
    """The owner's training-time team is not theirs any more: its key gets neither a row nor future pipeline for
    them (their deals not created yet count in the team the store has them in now)."""
    from dealscore_service.auth import Principal, Scope
    from dealscore_service.client import deal_payload
    from dealscore_service.forecasting import compute_forecast

    moved, _ = _moved_store(scoring_client, trained_model, keys)
    services = scoring_client.app.state.services  # type: ignore[attr-defined]
    na_mm = Principal("na_mm", frozenset({Scope.read}), teams=frozenset({NA_MM}))
    fc = compute_forecast(services, na_mm, by="owner", sims=300, seed=3)
    deals = trained_model.history.deals
    open_na_mm = deals["outcome"].isna() & (deals["team"] == NA_MM) & (deals["owner_id"] != moved)
    stayed = set(deals.loc[open_na_mm, "owner_id"])
    assert stayed and set(fc.table["group"]) == {"company", *stayed}
    assert (fc.table.loc[fc.table["group"] == "company", "open_deals"] == int(open_na_mm.sum())).all()
    # the mover's deal scored in the team before the move (earlier than their east deals): the team's key sees it,
    # in a row of that deal only, told why it has no future pipeline
    cut = trained_model.history.data_cut
    old = sorted(deals.loc[deals["outcome"].isna() & (deals["created_at"] < cut - pd.Timedelta(days=60)), "deal_id"])[0]
    before = {**deal_payload(trained_model.history, old, cut - pd.Timedelta(days=20)), "deal_id": "BEFORE-MOVE",
              "owner_id": moved, "team": NA_MM}
    assert scoring_client.post("/v1/score", json=before, headers={"X-API-Key": keys["crm"]}).status_code == 200
    fc = compute_forecast(services, na_mm, by="owner", sims=300, seed=3)
    assert set(fc.table["group"]) == {"company", *stayed, moved}
    mover = fc.table[fc.table["group"] == moved]
    assert (mover["open_deals"] == 1).all() and (mover["new_expected"] == 0).all()
    assert any(moved in note and "now works in another team" in note for note in fc.notes)
    # the east key still has the mover's future pipeline (their team now), told they moved since training
    east = compute_forecast(services, Principal("east", frozenset({Scope.read}), teams=frozenset({"east"})),
                            by="owner", sims=300, seed=3)
    assert east.table.loc[east.table["group"] == moved, "new_expected"].sum() > 0
    assert any(moved in note and "before the move" in note for note in east.notes)


def test_a_deal_won_this_period_is_booked_not_dropped(
    scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str],
) -> None:
    """Winning a deal lowered the current quarter's forecast: it left the open deals, and the store's forecast
    booked nothing ("'booked' is 0"). Its amount is now booked in its period, for its team and the company."""
    _score_all_open(scoring_client, trained_model, keys)
    h = {"X-API-Key": keys["manager"]}
    before = pd.DataFrame(scoring_client.get("/v1/forecast", params={"sims": 300}, headers=h).json()["rows"])
    body = next(b for b in trained_model.payloads(len(trained_model.open_ids)) if b.get("amount"))
    closed_at = pd.Timestamp(trained_model.as_of).isoformat()
    r = scoring_client.post(f"/v1/deals/{body['deal_id']}/outcome", json={"outcome": "won", "closed_at": closed_at},
                            headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    after = scoring_client.get("/v1/forecast", params={"sims": 300}, headers=h).json()
    rows = pd.DataFrame(after["rows"])
    current = rows["period"].min()
    company = rows[(rows["group"] == "company") & (rows["period"] == current)].iloc[0]
    was = before[(before["group"] == "company") & (before["period"] == current)].iloc[0]
    assert company["booked"] == pytest.approx(body["amount"]) and was["booked"] == 0
    assert company["open_deals"] == was["open_deals"] - 1
    assert company["p10"] >= body["amount"]  # booked is certain: every draw holds it
    team = rows[(rows["group"] == body["team"]) & (rows["period"] == current)].iloc[0]
    assert team["booked"] == pytest.approx(body["amount"])
    nxt = rows[(rows["group"] == "company") & (rows["period"] == rows["period"].max())].iloc[0]
    assert nxt["booked"] == 0


def test_every_key_forecasts_the_same_moment(
    scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str],
) -> None:
    """Each key forecast as of its own newest score: a team key and the company key forecast different moments,
    even different quarters, once another team's deal was scored later."""
    from dealscore_service.auth import Principal, Scope
    from dealscore_service.forecasting import compute_forecast

    _score_all_open(scoring_client, trained_model, keys)
    services = scoring_client.app.state.services  # type: ignore[attr-defined]
    other = next(b for b in trained_model.payloads(len(trained_model.open_ids)) if b.get("team") != NA_MM)
    later = (pd.Timestamp(trained_model.as_of) + pd.Timedelta(days=5)).isoformat()
    r = scoring_client.post("/v1/score", json=other | {"as_of": later}, headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    team = Principal("na_mm", frozenset({Scope.read}), teams=frozenset({NA_MM}))
    everyone = Principal("all", frozenset({Scope.read}))
    assert compute_forecast(services, team, sims=100).as_of == compute_forecast(services, everyone, sims=100).as_of


def test_a_win_in_another_currency_is_named_among_the_forecasts_currencies(
    scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str],
) -> None:
    """Booked wins in USD were added to EUR open deals while the answer said one currency, EUR."""
    bodies = [b | {"currency": "EUR"} for b in trained_model.payloads(len(trained_model.open_ids))]
    usd = next(b for b in bodies if b.get("amount"))
    usd["currency"] = "USD"
    r = scoring_client.post("/v1/score/batch", json={"deals": bodies, "as_of": trained_model.as_of},
                            headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text[:500]
    h = {"X-API-Key": keys["manager"]}
    assert scoring_client.get("/v1/forecast", headers=h).json()["currencies"] == ["EUR", "USD"]
    r = scoring_client.post(f"/v1/deals/{usd['deal_id']}/outcome",
                            json={"outcome": "won", "closed_at": pd.Timestamp(trained_model.as_of).isoformat()},
                            headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    body = scoring_client.get("/v1/forecast", headers=h).json()
    assert body["currencies"] == ["EUR", "USD"] and body["mixed_currencies"]
    eur = scoring_client.get("/v1/forecast", params={"currency": "EUR"}, headers=h).json()
    assert {row["booked"] for row in eur["rows"]} == {0.0}


def test_a_team_key_by_owner_books_the_win_of_a_rep_with_no_open_deal(
    scoring_client: TestClient, trained_model: TrainedModel, keys: dict[str, str],
) -> None:
    """A rep new since training, whose one deal in the team was won, had no row by owner: the win vanished."""
    from dealscore_service.auth import Principal, Scope
    from dealscore_service.forecasting import compute_forecast

    _score_all_open(scoring_client, trained_model, keys)
    new = trained_model.payload() | {"deal_id": "NEWREP-1", "owner_id": "NEWREP", "team": NA_MM}
    scored = scoring_client.post("/v1/score", json=new, headers={"X-API-Key": keys["crm"]})
    assert scored.status_code == 200 and scored.json()["amount"] > 0
    r = scoring_client.post("/v1/deals/NEWREP-1/outcome", json={"outcome": "won", "closed_at": new["as_of"]},
                            headers={"X-API-Key": keys["crm"]})
    assert r.status_code == 200, r.text
    services = scoring_client.app.state.services  # type: ignore[attr-defined]
    team = Principal("na_mm", frozenset({Scope.read}), teams=frozenset({NA_MM}))
    table = compute_forecast(services, team, by="owner", sims=100).table
    first = table["period"].min()
    rows = table[(table["group"] == "NEWREP") & (table["period"] == first)]
    assert len(rows) == 1 and rows["booked"].iloc[0] == pytest.approx(scored.json()["amount"])
