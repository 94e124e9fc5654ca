"""The label-free real-stage estimator: learned habits match known ones, labels beat the declared stage."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dealscore.data.simulate import SimConfig, SimulatedCRM, simulate
from dealscore.data.simulate.config import STAGES
from dealscore.data.simulate.figures import weekly_snapshots
from dealscore.errors import ConfigError
from dealscore.models.stage_labels import StageLabeler, describe_habits
from dealscore.taxonomy import default_taxonomy
from dealscore.training.stage_checks import label_free_checks

#: reps who never type a stage ahead, never skip one and create every deal in prospecting
CAREFUL = {"optimism_beta": (0.01, 100.0), "skip_beta": (0.01, 100.0), "start_qualified_beta": (0.01, 100.0),
           "backdate_prob": 0.0}


def _stage_at(frame: pd.DataFrame, time_col: str, snaps: pd.DataFrame) -> np.ndarray:
    """Stage order in force at each snapshot (-1 before the first row)."""
    f = frame.sort_values(time_col)[["deal_id", time_col, "stage"]].rename(columns={time_col: "t"})
    f["deal_id"] = f["deal_id"].astype(str)
    q = snaps.assign(t=snaps["as_of"], i=np.arange(len(snaps)), deal_id=snaps["deal_id"].astype(str)).sort_values("t")
    m = pd.merge_asof(q, f, on="t", by="deal_id").sort_values("i")
    return pd.Index(STAGES).get_indexer(m["stage"].fillna("?"))


def _without_truth(sim: SimulatedCRM) -> SimulatedCRM:
    return dataclasses.replace(sim, history=sim.history.replace(stage_truth=None))


def _fit(sim: SimulatedCRM) -> StageLabeler:
    return StageLabeler.for_taxonomy(default_taxonomy()).fit(sim.history)


def _accuracy(sim: SimulatedCRM, truth: pd.DataFrame) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Inferred and declared stage against the withheld truth at weekly snapshots, and both arrays."""
    snaps = weekly_snapshots(sim)
    real = _stage_at(truth, "as_of", snaps)
    sh = sim.history.stage_history
    declared = _stage_at(sh.assign(seen=sh[["changed_at", "recorded_at"]].max(axis=1)), "seen", snaps)
    inferred = pd.Index(STAGES).get_indexer(_fit(sim).label(sim.history, snaps)["real_stage"].fillna("?"))
    ok = real >= 0
    return float((inferred[ok] == real[ok]).mean()), float((declared[ok] == real[ok]).mean()), inferred, declared


def test_learned_lag_matches_a_known_lag() -> None:
    cfg = dataclasses.replace(SimConfig(), lag_median_days=10.0, lag_sigma=0.0, **CAREFUL)
    sim = _without_truth(simulate(1500, seed=3, config=cfg))
    lab = _fit(sim)
    assert lab.company_lag_days_ == pytest.approx(10.0, abs=2.5)
    assert lab.company_ahead_share_ < 0.15
    assert lab.habits_["lag_days"].between(6.0, 14.0).mean() > 0.9


def test_each_reps_lag_is_learned() -> None:
    cfg = dataclasses.replace(SimConfig(), lag_median_days=8.0, lag_sigma=0.8, **CAREFUL)
    sim = _without_truth(simulate(3000, seed=4, config=cfg))
    habits = _fit(sim).habits_.set_index("rep_id")
    true = sim.truth["reps"].set_index("rep_id")["lag_median_days"]
    both = habits.join(true, how="inner")
    both = both[both["stage_entries"] >= 30]
    assert len(both) >= 8
    assert np.corrcoef(np.log1p(both["lag_days"]), np.log1p(both["lag_median_days"]))[0, 1] > 0.8


@pytest.mark.parametrize("profile", ["mixed", "laggy", "optimistic"])
def test_inferred_stage_beats_the_declared_one_without_truth(profile: str) -> None:
    sim = simulate(1500, seed=6, profile=profile)
    inferred, declared, _, _ = _accuracy(_without_truth(sim), sim.truth["stage_truth"])
    assert inferred > declared + 0.15, (inferred, declared)


def test_careful_reps_are_read_by_their_record_and_checks_show_no_gain() -> None:
    """Where the declared stage is the real one, the estimator follows it and the label-free checks stay flat."""
    cfg = dataclasses.replace(SimConfig(), lag_median_days=0.05, lag_sigma=0.0, regress_beta=(100.0, 0.01), **CAREFUL)
    sim = simulate(1500, seed=8, config=cfg)
    inferred_acc, declared_acc, inferred, declared = _accuracy(_without_truth(sim), sim.truth["stage_truth"])
    assert declared_acc > 0.97
    assert inferred_acc > declared_acc - 0.01
    snaps = weekly_snapshots(sim)
    d = sim.history.deals.set_index("deal_id")
    closed = snaps["deal_id"].map(d["outcome"]).notna().to_numpy() & (declared >= 0)
    names = np.asarray(STAGES, dtype=object)
    frame = {
        "inferred": names[np.maximum(inferred, 0)], "declared": names[np.maximum(declared, 0)],
        "won": (snaps["deal_id"].map(d["outcome"]) == "won").to_numpy(dtype=float),
        "days_left": ((snaps["deal_id"].map(d["closed_at"]) - snaps["as_of"]).dt.total_seconds() / 86400).to_numpy(),
        "deal": snaps["deal_id"].to_numpy(dtype=object),
    }
    early = (snaps["deal_id"].map(d["created_at"]) < pd.Timestamp("2024-09-01")).to_numpy()
    train = {k: v[closed & early] for k, v in frame.items()}
    test = {k: v[closed & ~early] for k, v in frame.items()}
    checks = label_free_checks(train, test, n_boot=50)
    auc = checks["win_rate_table_auc"]
    assert abs(auc["gain"]) < 0.01 and auc["gain_interval_95"][0] <= 0.0 + 1e-9 <= auc["gain_interval_95"][1] + 2e-9
    assert abs(checks["time_to_close_mae_days"]["gain"]) < 1.0


def test_label_free_checks_reward_a_stage_that_explains_the_outcome() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    real = rng.integers(0, 6, n)
    won = (rng.random(n) < 0.1 + 0.12 * real).astype(float)
    noisy = np.where(rng.random(n) < 0.5, rng.integers(0, 6, n), real)
    names = np.asarray(STAGES, dtype=object)
    frame = {"inferred": names[real], "declared": names[noisy], "won": won, "days_left": 60.0 - 8 * real,
             "deal": np.arange(n).astype(str).astype(object)}
    half = np.arange(n) < n // 2
    checks = label_free_checks({k: v[half] for k, v in frame.items()}, {k: v[~half] for k, v in frame.items()},
                               n_boot=30)
    assert checks["win_rate_table_auc"]["gain"] > 0.03 and checks["win_rate_table_auc"]["gain_interval_95"][0] > 0
    assert checks["time_to_close_mae_days"]["gain"] > 2.0


def test_habits_summary_and_parameters() -> None:
    sim = _without_truth(simulate(600, seed=2))
    lab = _fit(sim)
    summary = lab.habits_summary(top=3)
    assert set(summary["company"]) == {"lag_days", "ahead_share", "offset_days"}
    assert len(summary["reps"]) == 3 and {"rep_id", "lag_days", "ahead_share", "skipped_share"} <= set(
        summary["reps"][0])
    assert lab.get_params() if hasattr(lab, "get_params") else lab.lag_shrinkage == 10.0
    with pytest.raises(ConfigError):
        StageLabeler(STAGES, lag_shrinkage=-1).fit(sim.history)


def test_the_habit_sentences_skip_reps_with_nothing_compared() -> None:
    """A history without evidence for a rep printed "records stage changes 0 days late (0 stage entries compared)"."""
    summary = {"company": {"lag_days": 3.0, "ahead_share": 0.1},
               "reps": [{"rep_id": "Anna", "lag_days": 0.0, "ahead_share": 0.0, "stage_entries": 0},
                        {"rep_id": "Bo", "lag_days": 9.0, "ahead_share": 0.2, "stage_entries": 12}]}
    lines = describe_habits(summary)
    assert lines[0].startswith("The company typically records stage changes about 3 days late")
    assert [line.split()[0] for line in lines[1:]] == ["Bo"]


def test_the_habit_sentences_say_typically_their_and_when_the_lag_leans_on_the_company_s() -> None:
    """The lag is a median shrunk towards the company's, yet read "58 days late on average"; and "17% of its
    stages" for a person."""
    summary = {"company": {"lag_days": 10.0, "ahead_share": 0.25},
               "reps": [{"rep_id": "R0011", "lag_days": 58.0, "ahead_share": 0.17, "stage_entries": 58,
                         "lag_weight": 0.85},
                        {"rep_id": "R0030", "lag_days": 14.0, "ahead_share": 0.2, "stage_entries": 4,
                         "lag_weight": 0.286}]}
    lines = describe_habits(summary)
    assert lines[0] == ("The company typically records stage changes about 10 days late; 25% of stages are typed "
                        "in ahead of their evidence.")
    assert lines[1] == ("R0011 typically records stage changes about 58 days late; 17% of their stages are typed in "
                        "ahead of their evidence (58 stage entries compared).")
    assert lines[2] == ("R0030 typically records stage changes about 14 days late; 20% of their stages are typed in "
                        "ahead of their evidence (4 stage entries compared; too few to stand alone, so the lag "
                        "leans on the company's 10 days).")


def test_each_rep_s_lag_weight_is_the_share_of_their_own_entries() -> None:
    sim = _without_truth(simulate(600, seed=2))
    habits = _fit(sim).habits_
    assert habits["lag_weight"].between(0, 1).all()
    few, many = habits.nsmallest(1, "stage_entries").iloc[0], habits.nlargest(1, "stage_entries").iloc[0]
    assert few["lag_weight"] < many["lag_weight"]
