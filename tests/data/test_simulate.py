"""The synthetic CRM: contract, invariants, realism, determinism and the exactness of its oracle."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dealscore.cli import app
from dealscore.data.history import load_history
from dealscore.data.simulate import SimConfig, SimulatedCRM, oracle_win_probability, simulate, write_simulation
from dealscore.data.simulate.config import STAGES, profile_config, profile_names
from dealscore.data.simulate.figures import aggregate_figures, weekly_snapshots
from dealscore.data.simulate.latent import (
    Qualities,
    build_law,
    champion_probs,
    dm_prob,
    extra_probs,
    simulate_paths,
)
from dealscore.data.validate import validate_history
from dealscore.errors import ConfigError, DataValidationError

ORDER = {s: i for i, s in enumerate(STAGES)}


@pytest.fixture(scope="module")
def sim() -> SimulatedCRM:
    return simulate(1500, seed=11)


@pytest.fixture(scope="module")
def big() -> SimulatedCRM:
    """Enough deals for statistical checks of the oracle."""
    return simulate(6000, seed=5)


def _life(sim: SimulatedCRM, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    d = sim.history.deals.set_index("deal_id")
    return frame["deal_id"].map(d["created_at"]), frame["deal_id"].map(d["closed_at"])


def _real_stage_at(sim: SimulatedCRM, deal_ids: pd.Series, times: pd.Series) -> np.ndarray:
    """Order of the audited real stage of each deal at each time (-1 before the deal began)."""
    st = sim.truth["stage_truth"].sort_values("as_of")
    q = pd.DataFrame({"deal_id": pd.Series(deal_ids.to_numpy(), dtype=object), "t": times.to_numpy(),
                      "i": np.arange(len(times))})
    m = pd.merge_asof(q.sort_values("t"), st.rename(columns={"as_of": "t"}), on="t", by="deal_id")
    return m.sort_values("i")["stage"].map(ORDER).fillna(-1).to_numpy()


# --------------------------------------------------------------------------- contract


def test_history_follows_the_contract(sim: SimulatedCRM) -> None:
    _, report = validate_history(sim.history, on_out_of_life="fail")
    assert report.dropped == {}
    assert report.open_deals > 0 and report.won_deals > 0 and report.lost_deals > 0
    assert sim.history.cut_at == pd.Timestamp("2025-06-30")
    assert sim.history.stage_truth is not None and len(sim.history.stage_truth) > 0
    d = sim.history.deals
    assert d["team"].notna().all()
    # every owner sits in exactly one team
    assert (d.groupby("owner_id")["team"].nunique() == 1).all()
    for name, frame in sim.history.tables().items():
        for col in frame.columns:
            if frame[col].dtype == object:
                assert frame[col].map(lambda v: v is None or isinstance(v, str)).all(), (name, col)


def test_written_folder_validates_and_carries_truth(tmp_path: Path, sim: SimulatedCRM) -> None:
    write_simulation(sim, tmp_path)
    loaded = load_history(tmp_path)
    _, report = validate_history(loaded, on_out_of_life="fail")
    assert report.rows["deals"] == 1500
    assert loaded.cut_at == sim.history.cut_at
    for name in ("deal_truth", "latent_path", "stage_truth", "reps"):
        assert (tmp_path / "truth" / f"{name}.csv").is_file()
    assert (tmp_path / "truth" / "params.json").is_file()
    assert (tmp_path / "stage_truth.csv").read_bytes() == (tmp_path / "truth" / "stage_truth.csv").read_bytes()
    dt = pd.read_csv(tmp_path / "truth" / "deal_truth.csv")
    for col in ("will_win", "stalled", "stalled_at", "gone_quiet", "gone_quiet_at", "single_threaded",
                "single_threaded_at", "fit", "champion", "competition", "quality"):
        assert col in dt


def test_no_event_outside_a_deals_life_or_after_the_cut(sim: SimulatedCRM) -> None:
    h = sim.history
    cut = h.data_cut
    for frame, col in ((h.activities, "occurred_at"), (h.stage_history, "changed_at"),
                       (h.stage_truth, "as_of")):
        assert frame is not None
        created, closed = _life(sim, frame)
        assert (frame[col] >= created).all()
        assert (closed.isna() | (frame[col] <= closed)).all()
        assert (frame[col] <= cut).all()
        if "recorded_at" in frame:
            assert (frame["recorded_at"].isna() | (frame["recorded_at"] <= cut)).all()
    d = h.deals
    assert (d["created_at"] < cut).all()
    assert (d["closed_at"].isna() | (d["closed_at"] <= cut)).all()
    acc = h.accounts.set_index("account_id")
    assert (d["account_id"].map(acc["created_at"]) <= d["created_at"]).all()


# --------------------------------------------------------------------------- the latent process


def test_real_stages_only_move_forward(sim: SimulatedCRM) -> None:
    lp = sim.truth["latent_path"]
    order = lp["stage"].map(ORDER)
    same = lp["deal_id"].eq(lp["deal_id"].shift())
    assert (~same | (order >= order.shift()) | ~same).all()
    assert (~same | (lp["entered_at"] > lp["entered_at"].shift())).all()
    st = sim.truth["stage_truth"]
    s_order = st["stage"].map(ORDER)
    s_same = st["deal_id"].eq(st["deal_id"].shift())
    assert (~s_same | (s_order > s_order.shift())).all()
    first = st.groupby("deal_id")["as_of"].min()
    created = sim.history.deals.set_index("deal_id")["created_at"]
    assert (first == created.loc[first.index]).all()
    # the last latent state is won or lost, and matches the exported outcome of deals closed by the cut
    last = lp.groupby("deal_id").tail(1).set_index("deal_id")
    assert last["state"].isin(["won", "lost"]).all()
    d = sim.history.deals.set_index("deal_id")
    closed = d[d["outcome"].notna()]
    assert (last.loc[closed.index, "state"] == closed["outcome"]).all()
    assert (last.loc[closed.index, "entered_at"] == closed["closed_at"]).all()
    truth = sim.truth["deal_truth"].set_index("deal_id")
    assert (truth["open_at_cut"] == d["outcome"].isna()).all()
    # won deals went through negotiation
    won = truth.index[truth["will_win"]]
    reached = st[st["stage"] == "negotiation"]["deal_id"]
    assert set(won[~truth.loc[won, "open_at_cut"]]) <= set(reached)


def test_absorption_probability_matches_simulation() -> None:
    """W from the backward recursion (averaging over later reveals) equals simulated win frequencies."""
    cfg = SimConfig()
    k = 20_000
    rng = np.random.default_rng(0)
    base = Qualities(fit=np.full(k, 0.3), engagement=np.full(k, -0.2), skill=np.full(k, 0.1),
                     segment=np.full(k, 1), competition=np.full(k, 1), speed=np.full(k, 1.0),
                     champion=np.zeros(k, np.int64), dm_access=np.zeros(k, np.int64), extra=np.zeros(k, np.int64))
    champ = (rng.random(k)[:, None] > np.cumsum(champion_probs(cfg, base), axis=1)).sum(axis=1)
    dm = (rng.random(k) < dm_prob(cfg, base, champ)).astype(np.int64)
    extra = (rng.random(k)[:, None] > np.cumsum(extra_probs(cfg, base, champ), axis=1)).sum(axis=1)
    q = dataclasses.replace(base, champion=champ, dm_access=dm, extra=extra)
    law = build_law(cfg, q)
    # prospecting: nothing revealed yet, every copy has the same value
    expected = law.wa[:, 0, 0]
    assert np.ptp(expected) < 1e-12
    paths = simulate_paths(law, rng, np.zeros(k, np.int64), np.zeros(k))
    p = expected[0]
    assert abs(paths.won.mean() - p) < 4 * np.sqrt(p * (1 - p) / k), (paths.won.mean(), p)
    # qualification: the champion level is known, the buying group is not
    paths = simulate_paths(law, rng, np.ones(k, np.int64), np.zeros(k))
    for c in range(3):
        m = champ == c
        expected = law.wa[m, 1, 0]
        assert np.ptp(expected) < 1e-12
        p = expected[0]
        assert abs(paths.won[m].mean() - p) < 4 * np.sqrt(p * (1 - p) / m.sum()), (c, paths.won[m].mean(), p)
    # after discovery everything is revealed: per-deal values, checked on one revealed profile
    one = dataclasses.replace(base, champion=np.full(k, 2), dm_access=np.ones(k, np.int64), extra=np.ones(k, np.int64))
    law1 = build_law(cfg, one)
    paths = simulate_paths(law1, rng, np.full(k, 2), np.zeros(k))
    p = law1.wa[0, 2, 0]
    assert abs(paths.won.mean() - p) < 4 * np.sqrt(p * (1 - p) / k)


def test_oracle_is_calibrated_at_any_time(big: SimulatedCRM) -> None:
    """One snapshot per deal, at a time chosen without looking ahead; predicted vs realised by bin."""
    d = big.history.deals
    truth = big.truth["deal_truth"].set_index("deal_id").loc[d["deal_id"]]
    rng = np.random.default_rng(1)
    as_of = d["created_at"] + pd.to_timedelta(rng.exponential(35.0, len(d)), unit="D").round("s")
    keep = (as_of < truth["true_closed_at"].to_numpy()).to_numpy()
    snaps = pd.DataFrame({"deal_id": d["deal_id"][keep], "as_of": as_of[keep]})
    p = oracle_win_probability(big, snaps)
    y = truth["will_win"].to_numpy()[keep].astype(float)
    assert np.isfinite(p).all()
    edges = np.quantile(p, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    for b in range(10):
        m = bins == b
        pm = p[m].mean()
        tol = 3.5 * np.sqrt(max(pm * (1 - pm), 0.01) / m.sum()) + 0.01
        assert abs(y[m].mean() - pm) < tol, (b, int(m.sum()), pm, y[m].mean())
    ece = sum(abs(y[bins == b].mean() - p[bins == b].mean()) * (bins == b).mean() for b in range(10))
    assert ece < 0.02


def test_oracle_knows_more_than_the_stage(sim: SimulatedCRM) -> None:
    from sklearn.metrics import roc_auc_score

    snaps = weekly_snapshots(sim)
    truth = sim.truth["deal_truth"].set_index("deal_id")
    y = snaps["deal_id"].map(truth["will_win"]).to_numpy().astype(float)
    p = oracle_win_probability(sim, snaps)
    real = _real_stage_at(sim, snaps["deal_id"], snaps["as_of"])
    stage_rate = pd.Series(y).groupby(real).transform("mean").to_numpy()
    assert roc_auc_score(y, p) > roc_auc_score(y, stage_rate) + 0.1


def test_oracle_round_trips_through_the_truth_folder(tmp_path: Path, sim: SimulatedCRM) -> None:
    write_simulation(sim, tmp_path)
    snaps = weekly_snapshots(sim).iloc[::3]
    mem = oracle_win_probability(sim, snaps)
    for where in (tmp_path, tmp_path / "truth", str(tmp_path)):
        disk = oracle_win_probability(where, snaps)
        np.testing.assert_allclose(disk, mem, atol=1e-6)


def test_oracle_edges_and_errors(tmp_path: Path, sim: SimulatedCRM) -> None:
    truth = sim.truth["deal_truth"]
    ids = truth["deal_id"].iloc[:50]
    closed_t = truth["true_closed_at"].iloc[:50]
    after = oracle_win_probability(sim, pd.DataFrame({"deal_id": ids, "as_of": closed_t + pd.Timedelta(days=1)}))
    np.testing.assert_array_equal(after, truth["will_win"].iloc[:50].to_numpy().astype(float))
    created = sim.history.deals.set_index("deal_id").loc[ids, "created_at"]
    before = oracle_win_probability(sim, pd.DataFrame({"deal_id": ids, "as_of": created.to_numpy()
                                                       - np.timedelta64(1, "D")}))
    assert np.isnan(before).all()
    with pytest.raises(DataValidationError, match="D9999999"):
        oracle_win_probability(sim, pd.DataFrame({"deal_id": ["D9999999"], "as_of": [pd.Timestamp("2025-01-01")]}))
    with pytest.raises(DataValidationError, match="as_of"):
        oracle_win_probability(sim, pd.DataFrame({"deal_id": ids}))
    with pytest.raises(DataValidationError, match="truth"):
        oracle_win_probability(tmp_path, pd.DataFrame({"deal_id": ids, "as_of": created.to_numpy()}))


# --------------------------------------------------------------------------- touchpoints follow the real stage


def test_touchpoints_follow_the_real_stage(sim: SimulatedCRM) -> None:
    a = sim.history.activities
    real = _real_stage_at(sim, a["deal_id"], a["occurred_at"])
    assert (real >= 0).all()
    inbound = (a["direction"] == "inbound").to_numpy()
    assert not (inbound & (real == 0)).any(), "a reply while still prospecting"
    typ = a["type"].to_numpy()
    assert (real[typ == "demo"] >= ORDER["discovery"]).all()
    assert (real[typ == "proposal"] >= ORDER["solution"]).all()
    assert (real[typ == "contract"] >= ORDER["negotiation"]).all()
    # the defining evidence is there for most deals that reached a stage
    st = sim.truth["stage_truth"]
    for stage, kind in (("solution", "demo"), ("proposal", "proposal"), ("negotiation", "contract")):
        reached = set(st.loc[st["stage"] == stage, "deal_id"])
        shown = set(a.loc[a["type"] == kind, "deal_id"])
        assert len(reached & shown) / len(reached) > 0.75, stage


def test_quiet_deals_get_no_replies_and_lost_deals_go_quiet_first(sim: SimulatedCRM) -> None:
    lp = sim.truth["latent_path"].copy()
    lp["until"] = lp.groupby("deal_id")["entered_at"].shift(-1)
    quiet = lp[lp["state"] == "quiet"]
    a = sim.history.activities
    inbound = a[a["direction"] == "inbound"].merge(quiet[["deal_id", "entered_at", "until"]], on="deal_id")
    inside = (inbound["occurred_at"] > inbound["entered_at"]) & (inbound["occurred_at"] < inbound["until"])
    assert not inside.any()
    truth = sim.truth["deal_truth"]
    lost_late = truth[~truth["will_win"] & truth["start_stage"].eq("qualification")]
    assert lost_late["gone_quiet"].mean() > 0.4
    assert truth.loc[truth["will_win"], "gone_quiet"].mean() < 0.1


def test_buying_group_shows_in_contacts(sim: SimulatedCRM) -> None:
    a = sim.history.activities
    truth = sim.truth["deal_truth"].set_index("deal_id")
    roles = a.groupby("deal_id")["contact_role"].agg(set)
    has = truth.index.to_series().map(lambda i: roles.get(i, set()))
    no_champion = truth["champion"] == 0
    assert not has[no_champion].map(lambda r: "champion" in r).any()
    reached = set(sim.truth["stage_truth"].query("stage == 'discovery'")["deal_id"])
    dm_deals = truth.index[(truth["dm_access"] == 1) & truth.index.isin(list(reached))]
    assert has[dm_deals].map(lambda r: "decision_maker" in r).mean() > 0.8
    n_contacts = a.groupby("deal_id")["contact_id"].nunique().reindex(truth.index, fill_value=0)
    st = sim.truth["stage_truth"]
    disc = truth.index.isin(list(reached)) & ~truth.index.isin(list(st.loc[st["stage"] == "negotiation", "deal_id"]))
    single = truth["single_threaded"].to_numpy() & disc
    multi = ~truth["single_threaded"].to_numpy() & disc
    assert (n_contacts[single] <= 1).all()
    assert n_contacts[multi].mean() > 2.0
    assert (truth["single_threaded"] == truth["single_threaded_at"].notna()).all()


# --------------------------------------------------------------------------- what reps record


def test_declared_stage_is_not_the_real_stage(sim: SimulatedCRM) -> None:
    f = aggregate_figures(sim)
    assert 0.35 <= f["declared_real_agreement"] <= 0.6
    assert f["declared_ahead"] > 0.1 and f["declared_behind"] > 0.1
    sh = sim.history.stage_history
    order = sh["stage"].map(ORDER)
    same = sh["deal_id"].eq(sh["deal_id"].shift())
    assert (same & (order < order.shift())).any(), "no regressions"
    assert (same & (order > order.shift() + 1)).any(), "no skipped stages"
    assert (sh["recorded_at"] > sh["changed_at"]).any(), "no back-dated stage changes"


def test_stage_history_carries_amounts_and_close_dates(sim: SimulatedCRM) -> None:
    h = sim.history
    sh = h.stage_history
    assert sh["amount"].notna().all() and sh["expected_close_date"].notna().all()
    first = sh.groupby("deal_id")["changed_at"].min()
    assert (first == h.deals.set_index("deal_id")["created_at"].loc[first.index]).all()
    same = sh["deal_id"].eq(sh["deal_id"].shift())
    later = sh["expected_close_date"] > sh["expected_close_date"].shift()
    pushes = same & sh["stage"].eq(sh["stage"].shift()) & later
    assert pushes.sum() > 0.2 * len(h.deals)
    # current values of open deals = last values known at the cut; closed deals were often edited since
    last = sh.sort_values(["deal_id", "changed_at"], kind="stable").groupby("deal_id").tail(1).set_index("deal_id")
    d = h.deals.set_index("deal_id")
    open_ = d[d["outcome"].isna()]
    assert np.allclose(open_["amount"], last.loc[open_.index, "amount"])
    assert (open_["expected_close_date"] == last.loc[open_.index, "expected_close_date"]).all()
    won = d[d["outcome"] == "won"]
    assert (won["expected_close_date"] != last.loc[won.index, "expected_close_date"]).mean() > 0.3
    # larger accounts buy larger deals
    emp = d["account_id"].map(h.accounts.set_index("account_id")["employees"])
    assert np.corrcoef(np.log(emp), np.log(d["amount"]))[0, 1] > 0.3
    a = h.activities
    late = (a["recorded_at"] > a["occurred_at"]).mean()
    assert 0.02 < late < 0.3


def test_aggregate_figures_are_plausible(sim: SimulatedCRM) -> None:
    f = aggregate_figures(sim)
    assert 0.15 <= f["win_rate"] <= 0.40
    assert 30 <= f["median_cycle_days"] <= 120
    assert f["median_cycle_days_won"] > f["median_cycle_days_lost"]
    assert f["touches_share_5_80"] >= 0.95
    assert 0.05 < f["open_deals"] / f["deals"] < 0.25
    assert 0.05 < f["stalled_share"] < 0.3 and 0.02 < f["single_threaded_share"] < 0.2


# --------------------------------------------------------------------------- determinism, options, CLI


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_simulation(simulate(400, seed=3), a)
    write_simulation(simulate(400, seed=3), b)
    write_simulation(simulate(400, seed=4), c)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) >= 11
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "deals.csv").read_bytes() != (c / "deals.csv").read_bytes()


def test_cut_date_and_config_options() -> None:
    s = simulate(300, seed=2, cut_date="2024-01-15")
    assert s.history.cut_at == pd.Timestamp("2024-01-15")
    assert s.history.deals["created_at"].max() < pd.Timestamp("2024-01-15")
    cfg = SimConfig()
    assert SimConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        simulate(0, seed=1)


def test_cli_generate_then_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "h"
    res = runner.invoke(app, ["generate", "--deals", "300", "--seed", "7", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "win rate" in res.output and "truth" in res.output
    res = runner.invoke(app, ["validate", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["generate", "--deals", "10", "--out", str(tmp_path / "x"), "--cut-date", "soon"])
    assert res.exit_code != 0


# --------------------------------------------------------------------------- company presets


@pytest.fixture(scope="module")
def by_profile() -> dict[str, SimulatedCRM]:
    return {name: simulate(900, seed=4, profile=name) for name in profile_names()}


def test_every_preset_gives_a_valid_history(by_profile: dict[str, SimulatedCRM]) -> None:
    assert {"mixed", "disciplined", "laggy", "optimistic", "sparse_evidence"} <= set(by_profile)
    for name, s in by_profile.items():
        _, report = validate_history(s.history, on_out_of_life="fail")
        assert report.dropped == {}, name
        assert report.open_deals > 0 and report.won_deals > 0 and report.lost_deals > 0, name
        assert s.profile == name


def test_presets_differ_in_the_documented_direction(by_profile: dict[str, SimulatedCRM]) -> None:
    f = {name: aggregate_figures(s) for name, s in by_profile.items()}
    mixed = f["mixed"]
    assert f["disciplined"]["declared_real_agreement"] > mixed["declared_real_agreement"] + 0.25
    assert f["laggy"]["declared_behind"] > mixed["declared_behind"] + 0.1
    assert f["laggy"]["declared_ahead"] < mixed["declared_ahead"]
    assert f["optimistic"]["declared_ahead"] > mixed["declared_ahead"] + 0.1
    assert f["optimistic"]["declared_real_agreement"] < mixed["declared_real_agreement"]
    # sparse evidence: the same recording habits, fewer logged touches and more demos held in discovery
    assert f["sparse_evidence"]["declared_real_agreement"] == pytest.approx(mixed["declared_real_agreement"])
    assert f["sparse_evidence"]["touches_median"] < mixed["touches_median"] - 2

    def early_demo_share(s: SimulatedCRM) -> float:
        a = s.history.activities
        demos = a[a["type"] == "demo"]
        real = _real_stage_at(s, demos["deal_id"], demos["occurred_at"])
        return float((real < ORDER["solution"]).mean())

    assert early_demo_share(by_profile["sparse_evidence"]) > early_demo_share(by_profile["mixed"]) + 0.1


def test_default_preset_is_the_default_config(tmp_path: Path) -> None:
    write_simulation(simulate(300, seed=3), tmp_path / "a")
    write_simulation(simulate(300, seed=3, profile="mixed"), tmp_path / "b")
    for rel in ("deals.csv", "stage_history.csv", "activities.csv", "history.yaml", "truth/params.json"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert profile_config("laggy").lag_median_days > SimConfig().lag_median_days
    with pytest.raises(ConfigError, match="disciplined"):
        simulate(10, seed=1, profile="careless")


def test_cli_generate_with_a_profile(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "h"
    res = runner.invoke(app, ["generate", "--deals", "200", "--seed", "2", "--out", str(out), "--profile", "laggy"])
    assert res.exit_code == 0, res.output
    assert "laggy" in res.output
    assert load_history(out).meta.get("profile") == "laggy"
    res = runner.invoke(app, ["generate", "--deals", "20", "--out", str(tmp_path / "x"), "--profile", "nope"])
    assert res.exit_code != 0 and "mixed" in str(res.exception or "") + res.output
