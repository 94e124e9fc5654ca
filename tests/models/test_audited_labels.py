"""A partial audit teaches the labels of the unaudited deals, and never replaces a labeler it cannot beat."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.data.simulate import simulate
from dealscore.data.simulate.config import STAGES
from dealscore.data.simulate.figures import weekly_snapshots
from dealscore.models.audited_labels import AuditedLabelModel
from dealscore.models.stage_labels import StageLabeler
from dealscore.taxonomy import default_taxonomy


def _truth_at(truth: pd.DataFrame, snaps: pd.DataFrame) -> np.ndarray:
    """The audited stage in force at each snapshot (None before the first row)."""
    f = truth.sort_values("as_of")[["deal_id", "as_of", "stage"]].assign(deal_id=lambda x: x["deal_id"].astype(str))
    q = snaps.assign(i=np.arange(len(snaps)), deal_id=snaps["deal_id"].astype(str)).sort_values("as_of")
    return pd.merge_asof(q, f, on="as_of", by="deal_id").sort_values("i")["stage"].to_numpy(dtype=object)


@pytest.fixture(scope="module")
def audited_history() -> dict[str, object]:
    """A history whose evidence misleads (demos held in discovery, few meetings logged), 30 % of deals audited.

    Weekly snapshots of the closed deals, as training labels them (a label needs the outcome).
    """
    sim = simulate(1500, seed=5, profile="sparse_evidence")
    truth = sim.truth["stage_truth"]
    ids = sim.history.deals["deal_id"].to_numpy(dtype=object)
    audited = set(ids[np.random.default_rng(0).random(len(ids)) < 0.3])
    history = sim.history.replace(stage_truth=truth[truth["deal_id"].isin(audited)].reset_index(drop=True))
    snaps = weekly_snapshots(sim)
    closed = snaps["deal_id"].map(sim.history.deals.set_index("deal_id")["closed_at"]).notna().to_numpy()
    real = _truth_at(truth, snaps)
    keep = pd.notna(real) & closed
    snaps, real = snaps[keep].reset_index(drop=True), real[keep]
    labeler = StageLabeler.for_taxonomy(default_taxonomy()).fit(history)
    given = snaps["deal_id"].isin(audited).to_numpy()
    return {"history": history, "snaps": snaps, "real": real, "given": given, "labeler": labeler,
            "frame": labeler.hindsight_frame(history, snaps)}


def test_partial_audit_moves_the_unaudited_labels_towards_the_truth(audited_history: dict) -> None:
    h = audited_history
    frame, real, given = h["frame"], h["real"], h["given"]
    model = AuditedLabelModel(STAGES).fit(frame[given], real[given], h["snaps"]["deal_id"].to_numpy()[given])
    assert model.used_ and model.n_audited_deals_ > 300
    assert model.holdout_accuracy_["audited_model"] > model.holdout_accuracy_["labeler"]
    labeler_only = h["labeler"].label(h["history"], h["snaps"])["real_stage"].to_numpy(dtype=object)
    taught = model.predict(frame)
    before = float((labeler_only[~given] == real[~given]).mean())
    after = float((taught[~given] == real[~given]).mean())
    assert after > before + 0.03, (before, after)


def test_an_audit_that_agrees_with_the_labeler_leaves_its_labels_alone(audited_history: dict) -> None:
    """Audited stages equal to the labeler's own: nothing to learn, so the labeler's labels stand."""
    h = audited_history
    frame, given = h["frame"], h["given"]
    own = np.asarray(STAGES, dtype=object)[frame["labeler_stage"].to_numpy(dtype=int)]
    model = AuditedLabelModel(STAGES).fit(frame[given], own[given], h["snaps"]["deal_id"].to_numpy()[given])
    assert not model.used_


def test_too_few_audited_deals_teach_nothing(audited_history: dict) -> None:
    h = audited_history
    deals = h["snaps"]["deal_id"].to_numpy()
    few = h["given"] & np.isin(deals, pd.unique(deals[h["given"]])[:20])
    model = AuditedLabelModel(STAGES).fit(h["frame"][few], h["real"][few], deals[few])
    assert not model.used_ and model.n_audited_deals_ == 20 and model.holdout_accuracy_ == {}
