"""Each warning: a hand-built deal that triggers it and one that does not."""

from __future__ import annotations

from typing import Any

import pytest

from dealscore.scoring.columns import Columns
from dealscore.scoring.norms import DEFAULT_GAP_DAYS, StageNorms
from dealscore.scoring.track_record import LearnedThreshold, WarningThresholds
from dealscore.scoring.warnings import WARNING_CODES, detect_warnings, find_warnings


def _codes(frame: Any, stats: Any, taxonomy: Any, **kw: Any) -> list[set[str]]:
    ws = detect_warnings(Columns(frame), StageNorms.from_stage_stats(stats), taxonomy, **kw)
    return [{w.code for w in row} for row in ws]


def test_healthy_deal_has_no_warning(make_frame: Any, stage_stats: Any, taxonomy: Any) -> None:
    assert _codes(make_frame({}), stage_stats, taxonomy) == [set()]


# (code, row that triggers it, row that is similar but does not)
CASES = [
    ("gone_quiet", {"days_since_last_touch": 25.0}, {"days_since_last_touch": 8.0}),
    ("gone_quiet", {"days_since_last_touch": float("nan"), "deal_age_days": 20.0},
     {"days_since_last_touch": float("nan"), "deal_age_days": 5.0}),
    ("ghosting", {"n_outbound_unanswered": 4.0, "days_since_last_inbound": 20.0}, {"n_outbound_unanswered": 2.0}),
    ("ghosting", {"declared_stage": "prospecting", "n_outbound_unanswered": 5.0,
                  "days_since_last_inbound": float("nan")},
     {"declared_stage": "prospecting", "n_outbound_unanswered": 4.0, "days_since_last_inbound": float("nan")}),
    # unanswered outreach, but the customer replied recently: not ghosting (yet)
    ("ghosting", {"n_outbound_unanswered": 3.0, "days_since_last_inbound": 19.0},
     {"n_outbound_unanswered": 3.0, "days_since_last_inbound": 10.0}),
    ("single_threaded", {"n_contacts": 1.0}, {"n_contacts": 2.0}),
    ("single_threaded", {"n_contacts": 1.0, "declared_stage": "solution"},
     {"n_contacts": 1.0, "declared_stage": "qualification"}),
    ("no_decision_maker", {"decision_maker_engaged": 0.0},
     {"decision_maker_engaged": 0.0, "declared_stage": "qualification"}),
    ("close_date_passed", {"days_to_expected_close": -12.0}, {"days_to_expected_close": 3.0}),
    ("close_date_pushed", {"close_date_pushes": 2.0}, {"close_date_pushes": 1.0}),
    ("stalled_in_stage", {"days_in_stage": 45.0}, {"days_in_stage": 29.0}),
    ("pricing_not_discussed", {"declared_stage": "proposal", "pricing_discussed": 0.0, "has_demo": 1.0},
     {"declared_stage": "proposal", "pricing_discussed": 1.0, "has_proposal": 1.0, "has_demo": 1.0}),
]


@pytest.mark.parametrize(("code", "hit", "miss"), CASES)
def test_warning_triggers_and_not(code: str, hit: dict[str, Any], miss: dict[str, Any], make_frame: Any,
                                  stage_stats: Any, taxonomy: Any) -> None:
    got = _codes(make_frame(hit, miss), stage_stats, taxonomy)
    assert code in got[0]
    assert code not in got[1]


def test_stage_ahead_of_evidence_comes_from_the_mismatch_verdict(make_frame: Any, stage_stats: Any,
                                                                 taxonomy: Any) -> None:
    frame = make_frame({}, {})
    got = _codes(frame, stage_stats, taxonomy, mismatch_verdict=["ahead_of_evidence", "consistent"],
                 mismatch_text=["recorded as discovery, but no meeting has happened", "ok"])
    assert "stage_ahead_of_evidence" in got[0] and "stage_ahead_of_evidence" not in got[1]


def test_thresholds_are_learned_per_stage(make_frame: Any, stage_stats: Any, taxonomy: Any) -> None:
    # 14 quiet days: beyond twice negotiation's learned gap (6) but within twice discovery's (9)
    frame = make_frame({"declared_stage": "negotiation", "days_since_last_touch": 14.0, "has_proposal": 1.0,
                        "pricing_discussed": 1.0, "has_contract": 1.0},
                       {"days_since_last_touch": 14.0})
    ws = detect_warnings(Columns(frame), StageNorms.from_stage_stats(stage_stats), taxonomy)
    quiet = [w for w in ws[0] if w.code == "gone_quiet"]
    assert quiet and quiet[0].threshold.startswith("more than 12 days")
    assert "learned from the training history" in quiet[0].threshold
    assert not [w for w in ws[1] if w.code == "gone_quiet"]


def test_default_threshold_when_stage_has_no_stats(make_frame: Any, taxonomy: Any) -> None:
    frame = make_frame({"days_since_last_touch": 2 * DEFAULT_GAP_DAYS + 1})
    ws = detect_warnings(Columns(frame), StageNorms.from_stage_stats({}), taxonomy)
    quiet = [w for w in ws[0] if w.code == "gone_quiet"]
    assert quiet and quiet[0].threshold.startswith(f"more than {int(2 * DEFAULT_GAP_DAYS)} days")
    assert "default" in quiet[0].threshold


def test_evidence_names_the_facts(make_frame: Any, stage_stats: Any, taxonomy: Any) -> None:
    frame = make_frame({"days_in_stage": 70.0, "n_outbound_unanswered": 4.0, "days_since_last_inbound": 19.0,
                        "days_to_expected_close": -40.0, "close_date_pushes": 3.0})
    ws = {w.code: w for w in detect_warnings(Columns(frame), StageNorms.from_stage_stats(stage_stats), taxonomy)[0]}
    assert ws["stalled_in_stage"].evidence == "70 days in discovery; won deals needed a median of 14 days"
    assert ws["stalled_in_stage"].severity == "high"  # more than twice the learned 30 days
    assert ws["ghosting"].evidence == "4 outbound touches since the last customer reply; the customer last " \
        "replied 19 days ago"
    assert "passed 40 days ago" in ws["close_date_passed"].evidence and ws["close_date_passed"].severity == "high"
    assert ws["close_date_pushed"].evidence == "the expected close date was pushed 3 times"


def test_warnings_are_sorted_by_severity(make_frame: Any, stage_stats: Any, taxonomy: Any) -> None:
    frame = make_frame({"days_in_stage": 90.0, "close_date_pushes": 2.0, "n_contacts": 1.0})
    ws = detect_warnings(Columns(frame), StageNorms.from_stage_stats(stage_stats), taxonomy)[0]
    sev = [w.severity for w in ws]
    assert sev == sorted(sev, key={"high": 0, "medium": 1, "low": 2}.__getitem__)
    assert {w.code for w in ws} <= set(WARNING_CODES)


def test_missing_columns_do_not_crash(taxonomy: Any, stage_stats: Any) -> None:
    import pandas as pd

    frame = pd.DataFrame({"declared_stage": ["proposal"]})
    got = _codes(frame, stage_stats, taxonomy)
    # nothing known: the presence rules (decision maker, contacts, pricing) still speak, numeric ones stay silent
    assert got[0] == {"no_decision_maker", "single_threaded", "pricing_not_discussed"}


def test_crm_without_touchpoints_gets_no_touchpoint_warnings(make_frame: Any, stage_stats: Any,
                                                             taxonomy: Any) -> None:
    """An export of deals and stages only (e.g. Maven): silence would be flagged on every deal."""
    nan = float("nan")
    frame = make_frame({"days_since_last_touch": nan, "days_since_last_inbound": nan, "n_contacts": 0.0,
                        "decision_maker_engaged": 0.0, "deal_age_days": 300.0, "days_in_stage": 300.0,
                        "days_to_expected_close": -5.0})
    norms = StageNorms.from_stage_stats(stage_stats)
    with_touch = {w.code for w in detect_warnings(Columns(frame), norms, taxonomy)[0]}
    without = {w.code for w in detect_warnings(Columns(frame), norms, taxonomy, touchpoints=False)[0]}
    assert {"gone_quiet", "single_threaded", "no_decision_maker"} <= with_touch
    assert without == {"stalled_in_stage", "close_date_passed"}


def test_joined_codes_of_a_batch_are_each_rows_warnings_in_order(make_frame: Any, stage_stats: Any,
                                                                  taxonomy: Any) -> None:
    # a file's batch words each combination of warnings once; every row must still get its own, ordered
    rows = [hit for _, hit, _ in CASES] + [miss for _, _, miss in CASES] + [
        {"days_in_stage": 90.0, "close_date_pushes": 2.0, "n_contacts": 1.0, "days_to_expected_close": -40.0},
        {"days_in_stage": 45.0, "days_since_last_touch": 60.0, "decision_maker_engaged": 0.0}, {}]
    verdict = ["ahead_of_evidence" if i % 3 == 0 else "consistent" for i in range(len(rows))]
    hits = find_warnings(Columns(make_frame(*rows)), StageNorms.from_stage_stats(stage_stats), taxonomy,
                         mismatch_verdict=verdict, mismatch_text=["recorded as proposal"] * len(rows))
    counts, joined = hits.joined_codes()
    listed = hits.lists()
    assert [len(ws) for ws in listed] == counts.tolist()
    assert ["; ".join(w.code for w in ws) for ws in listed] == joined.tolist()
    assert max(counts) >= 4 and min(counts) == 0


def test_the_episode_model_decides_the_episode_warnings(make_frame: Any, stage_stats: Any, taxonomy: Any) -> None:
    """With episode probabilities (active, slow, stalled, quiet) the three episode warnings fire at the stated
    probability, whatever the single measures say, and not at all before the customer's first reply."""
    import numpy as np

    # every row has a long silence and unanswered touches: the rules on one measure would flag them all
    frame = make_frame(*[{"days_since_last_touch": 40.0, "days_since_last_inbound": 40.0,
                          "n_outbound_unanswered": 6.0, "days_in_stage": 80.0}] * 4)
    episodes = np.array([[0.9, 0.1, 0.0, 0.0],  # busy by its own pace: nothing
                         [0.1, 0.1, 0.75, 0.05],  # stalled, and stalled or quiet
                         [0.0, 0.02, 0.02, 0.96],  # quiet: ghosting and gone quiet, high severity
                         [np.nan] * 4])  # the customer never replied: no episode
    rules = find_warnings(Columns(frame), StageNorms.from_stage_stats(stage_stats), taxonomy, episodes=episodes)
    got = [{w.code: w for w in row if w.code in ("stalled_in_stage", "gone_quiet", "ghosting")}
           for row in rules.lists()]
    assert [set(row) for row in got] == [set(), {"stalled_in_stage", "gone_quiet"}, {"gone_quiet", "ghosting"},
                                         set()]
    assert got[1]["stalled_in_stage"].severity == "medium" and got[2]["ghosting"].severity == "high"
    assert "(75% likely)" in got[1]["stalled_in_stage"].evidence
    assert "the customer last replied 40 days ago" in got[2]["ghosting"].evidence
    assert got[2]["ghosting"].threshold.startswith("at least 70% likely ghosted (the customer stopped answering)")
    assert got[2]["ghosting"].evidence.startswith(
        "The deal's touch pattern looks ghosted (the customer stopped answering) (96% likely)")
    assert "6 outbound touches since the last reply" in got[2]["ghosting"].evidence
    assert got[1]["stalled_in_stage"].precision is None  # no track record in these thresholds
    # with the record training counted on later deals, each warning says how often it was right
    record = WarningThresholds(episodes={"stalled_in_stage": LearnedThreshold(0.7, 0.78, 120, later=True)})
    again = find_warnings(Columns(frame), StageNorms.from_stage_stats(stage_stats), taxonomy, episodes=episodes,
                          thresholds=record).lists()
    stalled = next(w for w in again[1] if w.code == "stalled_in_stage")
    assert stalled.precision == 0.78 and stalled.support == 120
    assert stalled.threshold.endswith("stalled warnings like this were followed by a loss 8 times in 10, on 120 "
                                      "later closed deals than the ones it was set on")
    # without touchpoints in the CRM the touch pattern says nothing
    none = find_warnings(Columns(frame), StageNorms.from_stage_stats(stage_stats), taxonomy, episodes=episodes,
                         touchpoints=False).codes()
    assert not any(c in ("gone_quiet", "ghosting") for row in none for c in row)


def test_single_threaded_follows_the_real_stage_when_the_stage_model_gives_it(make_frame: Any, stage_stats: Any,
                                                                               taxonomy: Any) -> None:
    """One contact is a risk from the real discovery stage on: a rep typing discovery early does not make the
    deal single-threaded, a rep recording it late does not hide it."""
    frame = make_frame({"declared_stage": "discovery", "n_contacts": 1.0},
                       {"declared_stage": "qualification", "n_contacts": 1.0},
                       {"declared_stage": "discovery", "n_contacts": 1.0})
    norms = StageNorms.from_stage_stats(stage_stats)
    real = ["qualification", "discovery", "discovery"]
    got = find_warnings(Columns(frame), norms, taxonomy, inferred_stage=real).lists()
    single = [next((w for w in row if w.code == "single_threaded"), None) for row in got]
    assert single[0] is None and single[1] is not None and single[2] is not None
    assert single[1].evidence == "only one contact involved in discovery (its real stage; declared qualification)"
    assert single[2].evidence == "only one contact involved in discovery"
    # without the estimate the declared stage decides, as before
    assert [any(w.code == "single_threaded" for w in row) for row in
            find_warnings(Columns(frame), norms, taxonomy).lists()] == [True, False, True]
