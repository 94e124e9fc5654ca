"""The forecast on a trained bundle: the bundle carries its models, scores carry an outlook, rows add up."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dealscore.cli import app
from dealscore.errors import DataValidationError, ModelNotReadyError
from dealscore.forecast.calibration import OpenDealCalibration, fit_open_calibration
from dealscore.forecast.close_time import pmf_bytes
from dealscore.forecast.creation import PipelineCreationModel
from dealscore.forecast.engine import (
    OpenPipeline,
    forecast_history,
    forecast_notes,
    forecast_pipeline,
    pipeline_from_columns,
    pipeline_from_results,
)
from dealscore.models.bundle import ModelBundle
from dealscore.scoring import Scorer
from dealscore.times import naive_utc

from .conftest import Trained


def test_training_fits_the_time_to_close_model_beside_its_stage_peer(trained: Trained) -> None:
    section = trained.report["time_to_close"]
    assert section["train_rows"] > 100
    test = section["test"]
    assert test["log_loss"] < test["log_loss_stage_baseline"]
    loaded = ModelBundle.load(trained.bundle_dir)
    assert loaded.time_to_close is not None and set(loaded.pipeline_creation) == {"team", "owner"}


def test_scores_carry_a_close_outlook_that_the_forecast_reads_back(trained: Trained) -> None:
    t = pd.Timestamp("2025-05-12")
    results = Scorer(trained.bundle).score_many(trained.history, t)
    outlook = results[0].close_outlook
    assert outlook is not None and outlook.text.startswith("likely to close: ")
    assert abs(sum(outlook.bucket_probabilities) - 1) < 1e-4
    assert outlook.this_quarter == "2025-Q2"
    # the stored-score path and the history path give the same numbers (same deals, same seed)
    fc = forecast_history(trained.history, trained.bundle, t, n_sims=400, seed=2)
    creation = trained.bundle.pipeline_creation["team"]  # the service's creation model (fitted at the data cut)
    # t is before the bundle's cut: the history path learns its calibration from windows that ended by t
    calibration = fit_open_calibration(trained.history, Scorer(trained.bundle), t)
    assert calibration.as_of_ == t and calibration.as_of_ < trained.bundle.forecast_calibration.as_of_
    assert any(f"{calibration.windows_} past windows" in n for n in fc.notes)
    again = forecast_pipeline(pipeline_from_results(results), t, creation=creation, n_sims=400, seed=2,
                              calibration=calibration)
    fresh = forecast_history(trained.history, trained.bundle, t, n_sims=400, seed=2, creation=creation)
    cols = ["group", "period", "open_expected", "new_expected"]
    both = fresh.table[cols].merge(again.table[cols], on=["group", "period"], suffixes=("", "_stored"))
    assert len(both) == len(again.table)  # the history path only adds teams with bookings and no open deal
    np.testing.assert_allclose(both["open_expected"], both["open_expected_stored"], rtol=1e-5)
    np.testing.assert_allclose(both["new_expected"], both["new_expected_stored"], rtol=1e-5)
    assert fc.table["open_deals"].iloc[0] == len(results)


def test_company_row_is_the_sum_of_the_teams(trained: Trained) -> None:
    fc = forecast_history(trained.history, trained.bundle, "2025-03-03", kind="month", by="owner", n_sims=300)
    for _period, rows in fc.table.groupby("period"):
        company = rows[rows["group"] == "company"].iloc[0]
        owners = rows[rows["group"] != "company"]
        assert company["expected"] == pytest.approx(owners["expected"].sum(), rel=1e-9)
        assert company["booked"] == pytest.approx(owners["booked"].sum())
        assert company["p10"] <= company["p50"] <= company["p90"]
    assert list(fc.table["period"].unique()) == ["2025-03", "2025-04"]
    assert np.isclose(fc.drivers["share_of_variance"].sum(), 1.0) or len(fc.drivers) == 10


def test_cli_prints_the_table_and_writes_the_fan_chart(trained: Trained, tmp_path) -> None:
    chart, out = tmp_path / "fan.png", tmp_path / "fc.csv"
    res = CliRunner().invoke(app, ["forecast", str(trained.folder), "--model", str(trained.bundle_dir), "--as-of",
                                   "2025-05-12", "--sims", "300", "--chart", str(chart), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Bookings forecast" in res.output and "company" in res.output
    assert chart.stat().st_size > 10_000
    table = pd.read_csv(out)
    direct = forecast_history(trained.history, trained.bundle, "2025-05-12", n_sims=300).table
    np.testing.assert_allclose(table["p50"], direct["p50"])


def test_a_forecast_after_the_data_cut_is_refused(trained: Trained, tmp_path) -> None:
    """Deals won or created after the cut are not in the export: a later forecast would miss them silently."""
    cut = pd.Timestamp(trained.history.data_cut)
    later = cut + pd.Timedelta(days=46)
    with pytest.raises(DataValidationError, match="data cut") as err:
        forecast_history(trained.history, trained.bundle, later, n_sims=50)
    assert "--as-of" in err.value.detail["fix"]
    assert forecast_history(trained.history, trained.bundle, cut, n_sims=50).as_of == cut  # the cut itself is fine
    out = tmp_path / "fc.csv"
    res = CliRunner().invoke(app, ["forecast", str(trained.folder), "--model", str(trained.bundle_dir), "--as-of",
                                   f"{later:%Y-%m-%d}", "--sims", "100", "--out", str(out)])
    # a product error (the console entry point prints it and exits 2), and nothing written
    assert isinstance(res.exception, DataValidationError) and "data cut" in str(res.exception)
    assert not out.exists()


def test_stored_columns_in_compact_form_are_the_same_pipeline_as_the_results(trained: Trained) -> None:
    """The store's columns (probabilities as float64 bytes, as-of times as ISO text) read back the exact numbers."""
    t = pd.Timestamp("2025-05-12")
    results = Scorer(trained.bundle).score_many(trained.history, t)
    want = pipeline_from_results(results)
    columns = {"deal_id": [r.deal_id for r in results], "team": [r.team for r in results],
               "owner_id": [r.owner_id for r in results], "amount": [r.amount for r in results],
               "p_win": [r.p_win for r in results],
               "as_of": [naive_utc(r.as_of).strftime("%Y-%m-%d %H:%M:%S.%f") for r in results],  # as SQLite keeps it
               "pmf": [pmf_bytes(r.close_outlook.bucket_probabilities) for r in results]}
    for got in (pipeline_from_columns(columns),
                pipeline_from_columns({**columns, "pmf": [*columns["pmf"][:-1],  # one row not kept compactly
                                                          results[-1].close_outlook.bucket_probabilities]})):
        for name in ("deal_id", "team", "owner_id", "amount", "p_win", "pmf", "scored_at"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    with pytest.raises(ModelNotReadyError, match="1 stored score"):
        pipeline_from_columns({**columns, "pmf": [b"", *columns["pmf"][1:]]})
    # another bucket layout (compact or as a list) is named, not a reshape error (the API would answer 500)
    for other in (columns["pmf"][0][:-8], columns["pmf"][0] + b"\0\0\0", [0.5, 0.5]):  # +3 bytes: not float64s
        with pytest.raises(ModelNotReadyError, match=f"1 stored score.*another bucket layout.*{results[0].deal_id}"):
            pipeline_from_columns({**columns, "pmf": [other, *columns["pmf"][1:]]})


def test_each_rows_range_is_the_quantiles_of_its_own_draws(trained: Trained) -> None:
    """Table and fan quantiles are computed for all groups at once: each must equal its own draws' quantiles."""
    fc = forecast_history(trained.history, trained.bundle, "2025-03-03", by="owner", n_sims=300, seed=5)
    for r in fc.table.to_dict("records"):
        q = np.quantile(fc.draws[f"{r['group']}|{r['period']}"], (0.1, 0.5, 0.9))
        assert (r["p10"], r["p50"], r["p90"]) == tuple(float(v) for v in q)
    assert len(fc.fan) == len(fc.table["group"].unique()) * len(fc.fan["month"].unique())


def test_the_notes_say_which_uncertainties_the_range_carries() -> None:
    """Without a calibration or a creation model the notes say what is missing; with them, what is drawn."""
    bare = forecast_notes(None, None)
    assert "correlated risk is not modelled" in bare[0] and "not created yet are not included" in bare[1]
    cal = OpenDealCalibration.neutral()
    cal.ratio_, cal.ratio_sd_, cal.spread_, cal.windows_ = 0.9, 0.05, 0.02, 7
    full = forecast_notes(PipelineCreationModel(), cal)
    assert full[0].startswith("open deals calibrated on 7 past windows: probabilities × 0.900")
    assert "shared error of that factor (5.0%" in full[0] and "per-group spread (2.0%" in full[0]
    assert "not modelled" not in " ".join(full) and "uncertain by its counts" in full[1]
    # left out on purpose (a one-currency forecast): the reason given, not "no model"
    why = forecast_notes(None, cal, new_left_out="only the open deals in EUR are forecast")
    assert why[1] == "bookings from deals not created yet are not included: only the open deals in EUR are forecast"


def test_an_owner_the_creation_model_does_not_know_has_open_deals_only_and_a_note() -> None:
    """By owner, the rows a key gets and the owners whose future pipeline it gets are two lists: an owner left out
    of ``new_groups`` keeps their open deals and draws no future pipeline (the others' draws unchanged), and an
    owner with open deals the creation model never saw (a new rep) is a row of open deals named in the notes."""
    from dealscore.data.simulate import simulate
    from dealscore.data.validate import validate_history
    from dealscore.forecast.close_time import BUCKET_EDGES

    history, _ = validate_history(simulate(300, seed=3).history)
    creation = PipelineCreationModel(group="owner_id", pool="team").fit(history)
    busy = sorted(creation.rate_per_day_, key=lambda o: -creation.rate_per_day_[o])[:2]
    t = pd.Timestamp(history.data_cut)
    owners = np.array([*busy, "NEW-REP"], dtype=object)
    pmf = np.full((3, len(BUCKET_EDGES) - 1), 1.0 / (len(BUCKET_EDGES) - 1))
    pipe = pipeline_from_columns({"deal_id": ["a", "b", "c"], "team": ["x", "x", "x"], "owner_id": list(owners),
                                  "amount": [100.0, 200.0, 300.0], "p_win": [0.5, 0.5, 0.5],
                                  "as_of": np.full(3, t.asm8), "pmf": list(pmf)})
    rows = [*busy, "NEW-REP"]
    full = forecast_pipeline(pipe, t, by="owner", creation=creation, n_sims=300, seed=5, groups=rows)
    part = forecast_pipeline(pipe, t, by="owner", creation=creation, n_sims=300, seed=5, groups=rows,
                             new_groups=[busy[0]])

    def new(fc: object, group: str) -> float:
        return float(fc.table.loc[fc.table["group"] == group, "new_expected"].sum())  # type: ignore[attr-defined]

    assert new(full, busy[1]) > 0 and new(part, busy[1]) == 0 and new(part, busy[0]) == new(full, busy[0]) > 0
    for fc in (full, part):
        assert set(fc.table["group"]) == {"company", *rows}
        assert (fc.table.loc[fc.table["group"] == "company", "open_deals"] == 3).all()
        assert new(fc, "NEW-REP") == 0
        (note,) = [n for n in fc.notes if "does not know" in n]
        assert "owner NEW-REP " in note and busy[0] not in note and "until the model is retrained" in note


# ---------------------------------------------------------------------- a group's figures depend on its own deals only


def _only(pipe: OpenPipeline, keep: np.ndarray) -> OpenPipeline:
    return OpenPipeline(**{name: getattr(pipe, name)[keep] for name in PIPELINE_FIELDS})


def _with(pipe: OpenPipeline, extra: OpenPipeline) -> OpenPipeline:
    return OpenPipeline(**{name: np.concatenate([getattr(pipe, name), getattr(extra, name)])
                           for name in PIPELINE_FIELDS})


PIPELINE_FIELDS = ("deal_id", "team", "owner_id", "amount", "p_win", "pmf", "scored_at")
#: Every figure of a row; compared exactly (a group's sums add the same numbers in the same order either way).
FIGURES = ["group", "period", "booked", "open_deals", "open_expected", "new_expected", "expected", "p10", "p50", "p90"]


@pytest.fixture(scope="module")
def scored(trained: Trained) -> tuple[pd.Timestamp, OpenPipeline, OpenDealCalibration]:
    """The open deals scored at a time, and a calibration whose shared and per-group factors both spread."""
    t = pd.Timestamp("2025-05-12")
    pipe = pipeline_from_results(Scorer(trained.bundle).score_many(trained.history, t))
    calibration = OpenDealCalibration.neutral()
    calibration.ratio_, calibration.ratio_sd_, calibration.spread_ = 0.9, 0.08, 0.15
    return t, pipe, calibration


def _rows(fc: Any, group: str) -> pd.DataFrame:
    return fc.table.loc[fc.table["group"] == group, FIGURES].reset_index(drop=True)


@pytest.mark.parametrize("by", ["team", "owner"])
def test_a_groups_figures_are_the_same_with_every_deal_or_only_its_own(
        trained: Trained, scored: tuple[pd.Timestamp, OpenPipeline, OpenDealCalibration], by: str) -> None:
    """A team-limited API key reads its team's deals only, the CLI every deal: with one stream over all the deals
    drawn, the same team's range and "from open deals" differed between the two (69,145 vs 69,644 from open
    deals, P50 125,951 vs 128,009 in the review). Each deal's own stream makes them the same to the last bit."""
    t, pipe, calibration = scored
    keys = pipe.keys(by)
    kw: dict[str, Any] = {"by": by, "creation": trained.bundle.pipeline_creation[by], "calibration": calibration,
                          "n_sims": 300, "seed": 4}
    full = forecast_pipeline(pipe, t, **kw)
    names, counts = np.unique(keys, return_counts=True)
    chosen = [str(g) for g in names[np.argsort(-counts, kind="stable")][:3]]  # the busiest groups
    assert len(chosen) == 3 and counts.max() > 5
    for g in chosen:
        whole = _rows(full, g)
        assert (whole["p90"] > whole["p10"]).any() and (whole["open_expected"] > 0).any()
        for fc in (forecast_pipeline(_only(pipe, keys == g), t, groups=[g], **kw),  # the key's deals only (the API)
                   forecast_pipeline(pipe, t, groups=[g], **kw)):  # every deal, rows of the group only
            pd.testing.assert_frame_equal(_rows(fc, g), whole, check_exact=True)
            for p in fc.periods:
                np.testing.assert_array_equal(fc.draws[f"{g}|{p.label}"], full.draws[f"{g}|{p.label}"])
            # the company of that key is the group
            pd.testing.assert_frame_equal(_rows(fc, "company").drop(columns="group"), whole.drop(columns="group"))


def test_a_deal_added_or_closed_in_another_group_changes_nothing_elsewhere(
        trained: Trained, scored: tuple[pd.Timestamp, OpenPipeline, OpenDealCalibration]) -> None:
    """One deal added to the store moved other owners' figures, and one closed moved the company's median: the
    draws were one stream over the deals in id order, so every deal after it drew other numbers."""
    t, pipe, calibration = scored
    kw: dict[str, Any] = {"creation": trained.bundle.pipeline_creation["team"], "calibration": calibration,
                          "n_sims": 300, "seed": 4}
    before = forecast_pipeline(pipe, t, **kw)
    teams = pipe.keys("team")
    names, counts = np.unique(teams, return_counts=True)
    busy, other = (str(g) for g in names[np.argsort(-counts, kind="stable")][:2])
    first = int(np.flatnonzero(teams == other)[0])
    # a new deal of the other team whose id sorts before every other (so it would shift every deal's numbers), and
    # one of the other team's deals closed
    added = _only(pipe, np.array([first]))
    added.deal_id = np.array(["0-NEW"], dtype=object)
    added.amount = added.amount * 0 + 250_000.0
    changed = [_with(pipe, added), _only(pipe, np.arange(len(pipe)) != first)]
    for after in (forecast_pipeline(p, t, **kw) for p in changed):
        for g in names:
            if g != other:
                pd.testing.assert_frame_equal(_rows(after, str(g)), _rows(before, str(g)), check_exact=True)
        assert not _rows(after, other)["open_expected"].equals(_rows(before, other)["open_expected"])
        assert not _rows(after, "company")["p50"].equals(_rows(before, "company")["p50"])
    assert busy != other


def test_a_forecast_is_reproducible_for_a_seed_whatever_the_order_of_its_deals(
        trained: Trained, scored: tuple[pd.Timestamp, OpenPipeline, OpenDealCalibration]) -> None:
    t, pipe, calibration = scored
    kw: dict[str, Any] = {"creation": trained.bundle.pipeline_creation["team"], "calibration": calibration,
                          "n_sims": 300}
    one = forecast_pipeline(pipe, t, seed=7, **kw)
    shuffled = _only(pipe, np.random.default_rng(0).permutation(len(pipe)))
    for again in (forecast_pipeline(pipe, t, seed=7, **kw), forecast_pipeline(shuffled, t, seed=7, **kw)):
        pd.testing.assert_frame_equal(again.table, one.table, check_exact=True)
        pd.testing.assert_frame_equal(again.fan, one.fan, check_exact=True)
        assert again.draws.keys() == one.draws.keys()
        for k, v in one.draws.items():
            np.testing.assert_array_equal(again.draws[k], v)
    other = forecast_pipeline(pipe, t, seed=8, **kw)
    assert not other.table["p50"].equals(one.table["p50"])
    # the expectations are exact: the same for every seed (the draws average to them)
    pd.testing.assert_frame_equal(other.table[["open_expected", "new_expected", "expected"]],
                                  one.table[["open_expected", "new_expected", "expected"]], check_exact=True)


def test_not_yet_created_is_the_creation_models_exact_expectation(
        trained: Trained, scored: tuple[pd.Timestamp, OpenPipeline, OpenDealCalibration]) -> None:
    """Like "from open deals", the new pipeline's column is its expectation (what the draws average to)."""
    from dealscore.forecast.periods import day_offsets

    t, pipe, calibration = scored
    creation = trained.bundle.pipeline_creation["team"]
    fc = forecast_pipeline(pipe, t, creation=creation, calibration=calibration, n_sims=300, seed=4)
    rows = fc.table[fc.table["group"] != "company"]
    assert (rows["new_expected"] > 0).any()
    for r in rows.to_dict("records"):
        (period,) = [p for p in fc.periods if p.label == r["period"]]
        want = creation.expected(r["group"], day_offsets(t, [period]))[0]
        assert r["new_expected"] == pytest.approx(want, rel=1e-9, abs=1e-9)
        assert r["expected"] == r["booked"] + r["open_expected"] + r["new_expected"]
