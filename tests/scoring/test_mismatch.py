"""Mismatch verdicts and their one-line explanations."""

from __future__ import annotations

from typing import Any

import numpy as np

from dealscore.scoring.columns import Columns
from dealscore.scoring.mismatch import judge


def test_ahead_of_evidence_names_the_missing_touchpoint(make_frame: Any, stage_proba: Any, taxonomy: Any) -> None:
    frame = make_frame({"declared_stage": "negotiation", "has_demo": 1.0, "has_proposal": 0.0, "has_contract": 0.0})
    res = judge(Columns(frame), stage_proba(["solution"], 0.7), taxonomy)
    assert res.verdict[0] == "ahead_of_evidence"
    assert res.inferred_stage[0] == "solution"
    assert res.explanation[0].startswith("recorded as negotiation, but no proposal has been sent")
    assert "solution (70%)" in res.explanation[0]


def test_behind_evidence_names_what_already_happened(make_frame: Any, stage_proba: Any, taxonomy: Any) -> None:
    frame = make_frame({"declared_stage": "qualification", "has_demo": 1.0, "has_proposal": 1.0})
    res = judge(Columns(frame), stage_proba(["proposal"]), taxonomy)
    assert res.verdict[0] == "behind_evidence"
    assert res.explanation[0].startswith("recorded as qualification, but a proposal has been sent")


def test_consistent(make_frame: Any, stage_proba: Any, taxonomy: Any) -> None:
    res = judge(Columns(make_frame({})), stage_proba(["discovery"]), taxonomy)
    assert res.verdict[0] == "consistent"
    assert res.explanation[0] == "recorded as discovery, and the evidence agrees (discovery, 80%)"


def test_split_probabilities_stay_consistent(make_frame: Any, taxonomy: Any) -> None:
    # argmax is qualification, but only 45% lies below the declared discovery stage
    p = np.array([[0.0, 0.45, 0.40, 0.15, 0.0, 0.0]])
    res = judge(Columns(make_frame({})), p, taxonomy)
    assert res.inferred_stage[0] == "qualification"
    assert res.verdict[0] == "consistent"
    assert "not clearly enough" in res.explanation[0]


def test_unknown_without_declared_stage(make_frame: Any, stage_proba: Any, taxonomy: Any) -> None:
    frame = make_frame({"declared_stage": None})
    res = judge(Columns(frame), stage_proba(["qualification"]), taxonomy)
    assert res.verdict[0] == "unknown"


def test_many_rows_at_once(make_frame: Any, stage_proba: Any, taxonomy: Any) -> None:
    frame = make_frame({"declared_stage": "proposal"}, {}, {"declared_stage": "prospecting"})
    res = judge(Columns(frame), stage_proba(["discovery", "discovery", "discovery"]), taxonomy)
    assert list(res.verdict) == ["ahead_of_evidence", "consistent", "behind_evidence"]
    assert "no demo has been given" in res.explanation[0]


def test_a_batch_words_each_row_as_it_would_be_worded_alone(make_frame: Any, taxonomy: Any) -> None:
    # the batch words each distinct case once: no row may take another case's text
    rng = np.random.default_rng(3)
    flags = ("has_meeting", "has_demo", "has_proposal", "has_contract", "decision_maker_engaged", "pricing_discussed")
    stages = [*taxonomy.names, None, "no such stage"]
    rows = [{"declared_stage": stages[rng.integers(len(stages))], **{f: float(rng.integers(2)) for f in flags}}
            for _ in range(120)]
    frame = make_frame(*rows)
    proba = rng.dirichlet(np.full(len(taxonomy.names), 0.4), size=len(rows))
    batch = judge(Columns(frame), proba, taxonomy)
    assert len(set(batch.verdict)) == 4
    for i in range(len(rows)):
        alone = judge(Columns(frame.iloc[[i]].reset_index(drop=True)), proba[[i]], taxonomy)
        assert (batch.verdict[i], batch.explanation[i], batch.inferred_stage[i]) == (
            alone.verdict[0], alone.explanation[0], alone.inferred_stage[0])
        assert batch.inferred_probability[i] == alone.inferred_probability[0]


def test_a_near_certain_stage_reads_above_99_not_100(make_frame: Any, stage_proba: Any, taxonomy: Any) -> None:
    """"the evidence points to prospecting (100%)": a stage model is never certain, and the page's rule for
    every other probability is ">99%"; one row alone and a batch word it alike."""
    one = judge(Columns(make_frame({})), stage_proba(["discovery"], 0.997), taxonomy)
    assert one.explanation[0] == "recorded as discovery, and the evidence agrees (discovery, >99%)"
    many = judge(Columns(make_frame(*[{}] * 80)), stage_proba(["discovery"] * 80, 0.997), taxonomy)  # > SMALL_BLOCK
    assert set(many.explanation) == {one.explanation[0]}
