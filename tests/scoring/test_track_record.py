"""Learned warning thresholds: where one was learned it decides, and the warning says how often it was right."""

from __future__ import annotations

from typing import Any

from dealscore.scoring.columns import Columns
from dealscore.scoring.norms import StageNorms
from dealscore.scoring.result import DealWarning
from dealscore.scoring.track_record import WarningThresholds
from dealscore.scoring.warnings import detect_warnings
from dealscore.training.warning_thresholds import MIN_HELD_OUT_DEALS


def _table(code: str, stage: str, threshold: float, precision: float = 0.7, support: int = 143) -> dict[str, Any]:
    return {"_warning_thresholds": {"target_precision": 0.6, "codes": {code: {stage: {
        "threshold": threshold, "precision": precision, "support": support, "base_loss_rate": 0.64}}}}}


def _warnings(frame: Any, stage_stats: Any, taxonomy: Any, extra: dict[str, Any]) -> list[dict[str, DealWarning]]:
    stats = {**stage_stats, **extra}
    ws = detect_warnings(Columns(frame), StageNorms.from_stage_stats(stats), taxonomy,
                         thresholds=WarningThresholds.from_stage_stats(stats))
    return [{w.code: w for w in row} for row in ws]


def test_learned_gone_quiet_fires_on_customer_silence_and_says_its_track_record(
        make_frame: Any, stage_stats: Any, taxonomy: Any) -> None:
    # recent outbound touches (so the fixed rule on any touchpoint would not fire) but no reply for 20 days
    frame = make_frame({"days_since_last_touch": 1.0, "days_since_last_inbound": 20.0},
                       {"days_since_last_touch": 1.0, "days_since_last_inbound": 11.0})
    got = _warnings(frame, stage_stats, taxonomy, _table("gone_quiet", "discovery", 12.0))
    w = got[0]["gone_quiet"]
    assert "gone_quiet" not in got[1]
    assert (w.precision, w.support) == (0.7, 143)
    assert w.threshold is not None
    assert "followed by a loss 7 times in 10, on 143 closed deals" in w.threshold
    assert "60%" in w.threshold and "discovery" in w.threshold


def test_a_stage_without_a_learned_threshold_keeps_the_fixed_rule(make_frame: Any, stage_stats: Any,
                                                                  taxonomy: Any) -> None:
    """Learned for proposal only (too few flagged deals elsewhere): a discovery deal gets today's rule, no record."""
    frame = make_frame({"days_since_last_touch": 25.0, "days_since_last_inbound": 25.0},
                       {"declared_stage": "proposal", "days_since_last_touch": 25.0, "days_since_last_inbound": 25.0,
                        "pricing_discussed": 1.0})
    got = _warnings(frame, stage_stats, taxonomy, _table("gone_quiet", "proposal", 40.0))
    fixed = got[0]["gone_quiet"]
    assert fixed.precision is None and fixed.support is None
    assert "90th percentile gap" in (fixed.threshold or "")
    # in proposal the learned threshold (40 days without reply) decides: 25 days is not enough
    assert "gone_quiet" not in got[1]


def test_learned_ghosting_and_single_threaded_and_stalled(make_frame: Any, stage_stats: Any, taxonomy: Any) -> None:
    extra = {"_warning_thresholds": {"target_precision": 0.6, "codes": {
        "ghosting": {"discovery": {"threshold": 2.0, "precision": 0.86, "support": 547}},
        "single_threaded": {"discovery": {"threshold": 3.0, "precision": 0.83, "support": 564}},
        "stalled_in_stage": {"discovery": {"threshold": 10.0, "precision": 0.84, "support": 88}},
    }}}
    frame = make_frame(
        {"n_outbound_unanswered": 2.0, "days_since_last_inbound": 3.0},   # two unanswered: learned says ghosting
        {"n_contacts": 1.0, "n_inbound_total": 4.0},                     # one contact after 4 replies
        {"n_contacts": 1.0, "n_inbound_total": 2.0},                     # one contact, 2 replies: not yet
        {"days_since_last_touch": 12.0, "days_since_last_inbound": 12.0},  # nothing moves for 12 days
        {"days_since_last_touch": 12.0, "days_since_last_inbound": 30.0, "n_outbound_unanswered": 6.0},  # chased
    )
    got = _warnings(frame, stage_stats, taxonomy, extra)
    assert got[0]["ghosting"].support == 547
    assert "followed by a loss 9 times in 10" in (got[0]["ghosting"].threshold or "")
    assert got[1]["single_threaded"].precision == 0.83
    assert "after 4 customer replies" in got[1]["single_threaded"].evidence
    assert "single_threaded" not in got[2]
    assert got[3]["stalled_in_stage"].support == 88
    assert "stalled_in_stage" not in got[4]   # being chased is ghosting, not stalling


def test_no_table_means_todays_rules(make_frame: Any, stage_stats: Any, taxonomy: Any) -> None:
    frame = make_frame({"days_since_last_touch": 25.0})
    got = _warnings(frame, stage_stats, taxonomy, {})
    assert got[0]["gone_quiet"].precision is None
    assert WarningThresholds.from_stage_stats({}).get("gone_quiet", "discovery") is None


def test_thresholds_travel_with_the_bundle(trained: Any, small_history: Any, tmp_path: Any) -> None:
    """Training stores the table in the bundle; a saved and reloaded bundle scores with the same numbers."""
    from dealscore.models.bundle import ModelBundle
    from dealscore.scoring import Scorer

    table = trained.bundle.stage_stats["_warning_thresholds"]
    assert table["target_precision"] == 0.6 and set(table["codes"]) == {
        "stalled_in_stage", "gone_quiet", "ghosting", "single_threaded"}
    loaded = ModelBundle.load(trained.bundle.save(tmp_path / "bundle"))
    assert WarningThresholds.from_stage_stats(loaded.stage_stats) == WarningThresholds.from_stage_stats(
        trained.bundle.stage_stats)
    results = Scorer(loaded).score_many(small_history, explain=False, actions=False)
    learned = [w for r in results for w in r.warnings if w.precision is not None]
    assert learned, "some warning of the simulated pipeline should fire on a learned threshold"
    for w in learned:
        # the stated support is the later deals' count (at least MIN_HELD_OUT_DEALS), else the training one (≥ 30)
        assert w.support is not None and w.support >= MIN_HELD_OUT_DEALS
        text = w.threshold or ""
        assert "followed by a loss" in text
        assert f"on {w.support:,} later closed deal" in text or f"on {w.support:,} closed deal" in text
