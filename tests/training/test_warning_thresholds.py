"""Warning thresholds: the lowest one reaching the stated precision, enough support, training slice only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore.data.simulate import simulate
from dealscore.taxonomy import default_taxonomy
from dealscore.training.config import TrainConfig
from dealscore.training.pipeline import _Laps, split_history, training_rows, warning_thresholds
from dealscore.training.warning_thresholds import episode_track_record, learn_warning_thresholds


def _frame(unanswered: np.ndarray, stage: str = "discovery") -> pd.DataFrame:
    n = len(unanswered)
    return pd.DataFrame({"declared_stage": [stage] * n, "n_outbound_unanswered": unanswered.astype(float),
                         "deal_age_days": np.full(n, 30.0), "days_since_last_touch": np.full(n, 2.0),
                         "days_since_last_inbound": np.full(n, 2.0), "n_contacts": np.full(n, 3.0),
                         "n_inbound_total": np.full(n, 5.0)})


def test_lowest_threshold_reaching_the_precision() -> None:
    # 0-1 unanswered: lost half the time; 2: 70%; 3 and more: 90%. Flagged from 1 on: 75% lost; from 2: 83%.
    un = np.repeat([0, 1, 2, 3, 4], 200)
    lost_share = np.select([un <= 1, un == 2], [0.5, 0.7], 0.9)
    won = (np.tile(np.arange(200) / 200, 5) >= lost_share).astype(float)
    t = learn_warning_thresholds(_frame(un), won, np.arange(len(un)).astype(str), target_precision=0.78,
                                 max_win_ratio=1.0, min_support=30)
    got = t["codes"]["ghosting"]["discovery"]
    assert got["threshold"] == 2.0
    assert got["precision"] >= 0.6 and got["support"] == 600
    # a stricter stated precision moves the threshold up
    strict = learn_warning_thresholds(_frame(un), won, np.arange(len(un)).astype(str), target_precision=0.85,
                                      max_win_ratio=1.0, min_support=30)
    assert strict["codes"]["ghosting"]["discovery"]["threshold"] == 3.0


def test_too_few_flagged_deals_give_no_threshold() -> None:
    """Ten closed deals, all lost: precision is perfect but rests on too little, so the fixed rule stays."""
    un = np.arange(10)
    t = learn_warning_thresholds(_frame(un), np.zeros(10), np.arange(10).astype(str), min_support=30)
    got = t["codes"]["ghosting"]["discovery"]
    assert got["threshold"] is None and got["support"] == 10


def test_support_counts_deals_not_snapshots() -> None:
    """Forty weekly snapshots of 4 deals are 4 deals of evidence, below a support of 30."""
    un = np.tile(np.arange(10), 4)
    deals = np.repeat(["a", "b", "c", "d"], 10)
    t = learn_warning_thresholds(_frame(un), np.zeros(40), deals, min_support=5)
    assert t["codes"]["ghosting"]["discovery"]["threshold"] is None


def test_thresholds_do_not_move_when_evaluation_period_facts_change() -> None:
    """Rewriting the outcomes and dropping the touchpoints of every deal outside the training slice leaves
    the learned thresholds exactly as they were, while rewriting the training deals moves them."""
    sim = simulate(1500, seed=3)
    history, cfg, tax = sim.history, TrainConfig(), default_taxonomy()
    split, _ = split_history(history, cfg)
    before = warning_thresholds(training_rows(history, split, cfg, tax, lambda _: None, _Laps()), cfg)

    def rewritten(ids: pd.Index) -> object:
        deals = history.deals.copy()
        flip = deals["deal_id"].isin(ids) & deals["outcome"].notna()
        deals.loc[flip, "outcome"] = deals.loc[flip, "outcome"].map({"won": "lost", "lost": "won"})
        acts = history.activities[~history.activities["deal_id"].isin(ids)]
        return type(history)(**{**history.__dict__, "deals": deals, "activities": acts})

    later = pd.Index([i for s in ("validation", "calibration", "test") for i in split.ids(s)])
    changed = rewritten(later)
    after = warning_thresholds(training_rows(changed, split, cfg, tax, lambda _: None, _Laps()), cfg)
    assert _chosen(after) == _chosen(before)
    moved = warning_thresholds(training_rows(rewritten(pd.Index(split.ids("train"))), split, cfg, tax,
                                             lambda _: None, _Laps()), cfg)
    assert _chosen(moved) != _chosen(before)


def _chosen(table: dict) -> dict:
    """What training chose (threshold and its training figures), without the later slice's count of it."""
    return {code: {s: (v["threshold"], v.get("fit_precision", v["precision"]), v.get("fit_support", v["support"]))
                   for s, v in by_stage.items()} for code, by_stage in table["codes"].items()}


def test_stated_precision_is_counted_on_later_deals() -> None:
    """The threshold is chosen on the training slice (83% lost from 2 unanswered on); later deals flagged the
    same way were lost only half the time, and that later figure is what the warning states."""
    un = np.repeat([0, 1, 2, 3, 4], 200)
    lost_share = np.select([un <= 1, un == 2], [0.5, 0.7], 0.9)
    won = (np.tile(np.arange(200) / 200, 5) >= lost_share).astype(float)
    later_un = np.repeat([0, 1, 2, 3, 4], 40)
    later_won = (np.tile(np.arange(40) / 40, 5) >= 0.5).astype(float)  # every level lost half the time
    later = (_frame(later_un), later_won, np.char.add("L", np.arange(len(later_un)).astype(str)))
    t = learn_warning_thresholds(_frame(un), won, np.arange(len(un)).astype(str), target_precision=0.78,
                                 max_win_ratio=1.0, min_support=30, held_out=later)
    got = t["codes"]["ghosting"]["discovery"]
    assert got["threshold"] == 2.0 and got["checked_on"] == "later deals"
    assert got["fit_precision"] > 0.8 and got["fit_support"] == 600
    assert got["precision"] == 0.5 and got["support"] == 120
    # too few later deals flagged: the training figure is stated and marked as such
    few = (_frame(later_un[:8] + 4), later_won[:8], later[2][:8])
    t = learn_warning_thresholds(_frame(un), won, np.arange(len(un)).astype(str), target_precision=0.78,
                                 max_win_ratio=1.0, min_support=30, held_out=few)
    got = t["codes"]["ghosting"]["discovery"]
    assert got["checked_on"] == "training deals" and got["precision"] == got["fit_precision"]


def test_episode_track_record_counts_losses_among_the_snapshots_each_warning_fires_on() -> None:
    # states: active, slow, stalled, quiet
    p = np.array([[0.1, 0.1, 0.75, 0.05],  # stalled, gone quiet
                  [0.1, 0.1, 0.75, 0.05],  # the same deal a week later
                  [0.0, 0.0, 0.1, 0.9],  # quiet: gone quiet, ghosting
                  [0.9, 0.1, 0.0, 0.0],  # busy: nothing
                  [np.nan] * 4])  # no reply yet: never flagged
    lost = np.array([True, True, False, True, True])
    got = episode_track_record(p, lost, np.array(["D1", "D1", "D2", "D3", "D4"], dtype=object), at=0.7)
    assert got["stalled_in_stage"] == {"at": 0.7, "precision": 1.0, "support": 1, "base_loss_rate": 0.8}
    assert got["gone_quiet"]["precision"] == 2 / 3 and got["gone_quiet"]["support"] == 2
    assert got["ghosting"]["precision"] == 0.0 and got["ghosting"]["support"] == 1
