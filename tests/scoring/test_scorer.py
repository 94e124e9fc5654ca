"""The Scorer end to end on a simulated history with a really trained bundle."""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dealscore.errors import DataValidationError, NotFoundError
from dealscore.features import build_features, scoring_snapshots
from dealscore.models.episodes import EpisodeModel, episode_weights, touch_days
from dealscore.playbook import SILENCE_BUCKETS, chase_bucket, silence_bucket
from dealscore.scoring import Scorer, ScoreResult
from dealscore.scoring.actions import apply_action, candidate_actions
from dealscore.scoring.grading import grade
from dealscore.scoring.stage_values import StageValues


@pytest.fixture(scope="module")
def scorer(trained: Any) -> Scorer:
    return Scorer(trained.bundle)


@pytest.fixture(scope="module")
def explained(small_history: Any, scorer: Scorer) -> list[ScoreResult]:
    return scorer.score_many(small_history, explain=True)


def _action(bundle: Any, stage: str, code: str) -> Any:
    acts = candidate_actions(bundle.playbook, stage if stage != "any_stage" else "prospecting")
    return next(x for a in acts for x in (a, a.follow_up) if x is not None and x.code == code and x.stage == stage)


def test_score_one_deal_gives_a_complete_valid_result(trained: Any, small_history: Any, scorer: Scorer) -> None:
    deal = scoring_snapshots(small_history)["deal_id"].iloc[0]
    r = scorer.score(small_history, deal)
    again = ScoreResult.model_validate(r.model_dump())  # every field passes the declared validation
    assert again == r
    assert 0 < r.p_win < 1 and r.grade == grade(r.p_win)
    assert r.model_version == trained.bundle.version and r.as_of == small_history.data_cut
    assert set(r.stage_probabilities) == set(trained.bundle.taxonomy.names)
    assert sum(r.stage_probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert r.inferred_stage == max(r.stage_probabilities, key=r.stage_probabilities.__getitem__)
    assert r.mismatch_explanation.startswith(f"recorded as {r.declared_stage}")
    assert len(r.reasons_up) <= 5 and len(r.reasons_down) <= 5 and (r.reasons_up or r.reasons_down)
    assert len(r.actions) <= 3  # empty when no playbook touchpoint raises the model's estimate
    assert r.owner_id is not None and r.account_id is not None


def test_reasons_add_up_to_the_score(explained: list[ScoreResult]) -> None:
    for r in explained:
        total = r.base_points + sum(x.points for x in r.reasons_up + r.reasons_down) + r.other_points
        assert total == pytest.approx(100 * r.p_win, abs=1e-6)
        assert all(x.points > 0 for x in r.reasons_up) and all(x.points < 0 for x in r.reasons_down)
        assert [x.points for x in r.reasons_up] == sorted((x.points for x in r.reasons_up), reverse=True)
    bases = {round(r.base_points, 9) for r in explained}
    assert len(bases) == 1  # the base is the model's, not the deal's


def test_contributions_sum_to_the_raw_score_and_fast_path_matches(trained: Any, small_history: Any) -> None:
    b = trained.bundle
    X = build_features(small_history, scoring_snapshots(small_history), spec=b.spec, taxonomy=b.taxonomy)
    contrib = b.win_model.contributions(X)
    np.testing.assert_allclose(contrib.sum(axis=1), b.win_model.predict_raw(X), atol=1e-9)
    fast, slow = Scorer(b), Scorer(b, fast_path=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        a = fast.score_many(small_history, explain=True)
    assert not [w for w in seen if "fast prediction path disagrees" in str(w.message)]
    c = slow.score_many(small_history, explain=True)
    for x, y in zip(a, c, strict=True):
        assert x.p_win == pytest.approx(y.p_win, abs=1e-12)
        assert [r.text for r in x.reasons_down] == [r.text for r in y.reasons_down]
        assert [(z.code, round(z.expected_change, 9)) for z in x.actions] == \
            [(z.code, round(z.expected_change, 9)) for z in y.actions]


def test_reason_wording_names_the_deal_facts(explained: list[ScoreResult], trained: Any, small_history: Any) -> None:
    X = build_features(small_history, scoring_snapshots(small_history), spec=trained.bundle.spec,
                       taxonomy=trained.bundle.taxonomy).set_index("deal_id")
    seen = 0
    for r in explained:
        for reason in r.reasons_up + r.reasons_down:
            if reason.group == "customer_response":
                days = X.loc[r.deal_id, "days_since_last_inbound"]
                if not np.isnan(days) and days >= 7:
                    assert f"No reply from the customer in {round(days)} days" in reason.text
                    seen += 1
            if reason.group == "decision_maker":
                engaged = X.loc[r.deal_id, "decision_maker_engaged"] >= 1
                assert reason.text.startswith("Decision maker" if engaged else "No decision maker")
                seen += 1
    assert seen > 0


def test_actions_are_valid_for_the_inferred_stage(explained: list[ScoreResult]) -> None:
    with_actions = [r for r in explained if r.actions]
    assert len(with_actions) > 0.5 * len(explained)
    for r in explained:
        assert len(r.actions) <= 3
        assert all(a.stage in (r.inferred_stage, "any_stage") for a in r.actions)
        changes = [a.expected_change for a in r.actions]
        assert changes == sorted(changes, reverse=True) and all(c >= 0.05 for c in changes)
        assert all(a.reason.startswith("If ") and "similar past deal" in a.reason for a in r.actions)
        for a in r.actions:  # the expected change is the documented mix of its two parts, inside its interval
            assert a.change_if_unanswered == 0.0  # an unanswered attempt changes nothing
            assert a.p_respond is not None and a.similar_deals is not None and 0 <= a.p_respond <= 1
            mix = a.p_respond * a.change_if_responds + (1 - a.p_respond) * a.change_if_unanswered
            assert a.expected_change == pytest.approx(a.similar_deals / (a.similar_deals + 10) * mix, abs=1e-9)
            assert a.interval_low <= a.expected_change <= a.interval_high
            # the reason names the deal's own move, and its two probabilities agree with the change it states
            move = re.search(r"takes this deal from (<1|>99|\d+)% to (<1|>99|\d+)%", a.reason)
            assert move is not None, a.reason
            if "<" not in move[0] and ">" not in move[0]:
                assert int(move[2]) - int(move[1]) == pytest.approx(a.change_if_responds, abs=1.01)
                assert int(move[1]) == pytest.approx(100 * r.p_win, abs=0.51)


def test_an_action_already_done_is_not_suggested(small_history: Any, explained: list[ScoreResult]) -> None:
    """A proposal, demo, contract, decision-maker meeting or champion already in the history is followed up, not
    repeated."""
    acts = small_history.activities
    once = {"send_proposal": acts["type"] == "proposal", "run_demo": acts["type"] == "demo",
            "send_contract": acts["type"] == "contract",
            "meet_decision_maker": acts["contact_role"] == "decision_maker",
            "book_first_meeting": acts["type"] == "meeting",
            # "identify a champion" was offered on deals whose champion was already on the emails
            "find_champion": acts["contact_role"] == "champion"}
    done = {code: set(acts.loc[mask, "deal_id"]) for code, mask in once.items()}
    follow_ups = 0
    for r in explained:
        for a in r.actions:
            assert r.deal_id not in done.get(a.code, set()), f"{a.code} suggested for {r.deal_id}, already done"
            follow_ups += a.code in ("follow_up_proposal", "follow_up_contract", "demo_follow_up",
                                     "decision_maker_check_in", "follow_up_meeting", "champion_check_in")
    assert follow_ups > 0  # the done ones became follow-ups


def test_two_actions_never_share_rationale_and_effect(explained: list[ScoreResult]) -> None:
    n = 0
    for r in explained:
        reasons = [a.reason for a in r.actions]
        effects = [(round(a.change_if_responds, 6), round(a.change_if_unanswered, 6)) for a in r.actions]
        assert len(set(reasons)) == len(reasons) and len(set(effects)) == len(effects)
        n += len(r.actions) > 1
    assert n > 10


def _state(scorer: Scorer, h: Any, deal: str, at: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The deal's episode probabilities (the bundle's episode filter on the history) and its silence and chase
    buckets at ``at``, from its features."""
    snaps = pd.DataFrame({"deal_id": [deal], "as_of": [at]})
    f = build_features(h, snaps, spec=scorer.bundle.spec, taxonomy=scorer.bundle.taxonomy)
    model = EpisodeModel.from_dict(scorer.bundle.stage_stats.get("_episodes"))
    proba = model.probabilities(touch_days(h, [deal], [at])) if model is not None else None
    return (episode_weights(proba, 1), silence_bucket(f["days_since_last_inbound"].to_numpy(dtype=float)),
            chase_bucket(f["n_outbound_unanswered"].to_numpy(dtype=float)))


@pytest.mark.parametrize("path", ["one_deal", "batch"])
def test_adding_the_suggested_touchpoint_gives_the_predicted_change(trained: Any, small_history: Any, scorer: Scorer,
                                                                    explained: list[ScoreResult], path: str) -> None:
    """Apply the top action's response to the real history and score it.

    The response's part is the move of the deal's state: its real-stage and episode probabilities
    before and after (the episode filter run on the history with the response added), valued by the
    bundle's win rates per state among deals with the same silence and chase so far, and applied to
    its odds. An unanswered
    attempt changes nothing (docs/scoring.md says why).
    """
    h = small_history
    values = StageValues.from_stage_stats(trained.bundle.stage_stats, trained.bundle.taxonomy.names)
    assert values is not None
    assert trained.bundle.stage_stats.get("_episodes")  # the episode model is part of the state here
    names = list(trained.bundle.taxonomy.names)
    # deals whose owner and account have other deals: the cross-deal aggregates are not trivial
    deals = h.deals.set_index("deal_id")
    busy = [r for r in explained if r.actions and (deals["owner_id"] == deals.at[r.deal_id, "owner_id"]).sum() > 3]
    assert len(busy) >= 5
    for r in busy[:6]:
        base = scorer.score(h, r.deal_id) if path == "one_deal" else r
        if not base.actions:
            continue
        top = base.actions[0]
        action = _action(trained.bundle, top.stage, top.code)
        responded = apply_action(h, r.deal_id, action, base.as_of)
        after = scorer.score(responded, r.deal_id, base.as_of, explain=False, actions=False)
        episodes, silence, chase = _state(scorer, h, r.deal_id, base.as_of)
        v_now = values.value(np.array([[base.stage_probabilities[s] for s in names]]), episodes, silence, chase)
        state_after = _state(scorer, responded, r.deal_id, base.as_of)
        # the real stage and the episode move; silence and chase are the deal's behaviour so far: they stay
        v_after = values.value(np.array([[after.stage_probabilities[s] for s in names]]), state_after[0], silence,
                               chase)
        moved = values.moved(np.array([base.p_win]), v_now, v_after)[0]
        # (a result's stage probabilities are rounded to 6 decimals: agreement to 1e-3 points)
        assert 100 * (moved - base.p_win) == pytest.approx(top.change_if_responds, abs=1e-3)
        # the response ends the customer's silence and the rep's chase in the history, and the deal has a reply now
        assert (state_after[1][0], state_after[2][0], state_after[0][0, -1]) == (SILENCE_BUCKETS.index("under_7d"),
                                                                                 0, 0.0)
        assert top.change_if_unanswered == 0.0


def test_one_deal_payload_uses_the_bundle_context(trained: Any, small_history: Any) -> None:
    """The API sends one open deal: owner/account figures come from the bundle, not from nothing."""
    h = small_history
    deal = scoring_snapshots(h)["deal_id"].iloc[3]
    one = h.for_deals([deal])
    scorer = Scorer(trained.bundle)
    assert scorer.feature_context(one) is trained.bundle.context
    r = scorer.score(one)
    assert r.deal_id == deal and 0 < r.p_win < 1
    # the full history's own context is refitted on it and gives a score in the same ballpark
    full = scorer.score(h, deal)
    assert abs(full.p_win - r.p_win) < 0.25


def test_single_and_batch_scores_agree(small_history: Any, scorer: Scorer, explained: list[ScoreResult]) -> None:
    for r in explained[:5]:
        one = scorer.score(small_history, r.deal_id)
        assert one.p_win == pytest.approx(r.p_win, abs=1e-12)
        assert [(a.code, round(a.expected_change, 9)) for a in one.actions] == \
            [(a.code, round(a.expected_change, 9)) for a in r.actions]
        assert [w.code for w in one.warnings] == [w.code for w in r.warnings]


def test_score_frame_and_restricting_to_deals(small_history: Any, scorer: Scorer) -> None:
    frame = scorer.score_frame(small_history, explain=True)
    open_ids = scoring_snapshots(small_history)["deal_id"]
    assert list(frame["deal_id"]) == list(open_ids)
    assert {"p_win", "grade", "inferred_stage", "value_at_risk", "reasons_down", "top_action"} <= set(frame.columns)
    some = scorer.score_many(small_history, deal_ids=list(open_ids[:3]))
    assert [r.deal_id for r in some] == list(open_ids[:3])
    with pytest.raises(NotFoundError, match="not open"):
        scorer.score_many(small_history, deal_ids=["no-such-deal"])


def test_scoring_in_the_past_sees_only_the_past(small_history: Any, scorer: Scorer) -> None:
    h = small_history
    t = h.data_cut - pd.Timedelta(days=60)
    past = scorer.score_many(h, t)
    truncated = scorer.score_many(h.as_known_at(t), t)
    assert [r.deal_id for r in past] == [r.deal_id for r in truncated]
    # same facts known: the scores agree (the context is refitted on each history; it only uses deals closed before t)
    np.testing.assert_allclose([r.p_win for r in past], [r.p_win for r in truncated], atol=1e-9)
    # the close date shown is the one in force then, not one typed in later (it was the deal's current column)
    assert [r.expected_close_date for r in past] == [r.expected_close_date for r in truncated]
    now = h.deals.set_index("deal_id")["expected_close_date"].dt.date
    assert any(r.expected_close_date != now[r.deal_id] for r in past)


def test_bad_requests_get_clear_errors(small_history: Any, scorer: Scorer) -> None:
    h = small_history
    closed = h.deals.loc[h.deals["outcome"] == "won", "deal_id"].iloc[0]
    with pytest.raises(DataValidationError, match=r"closed \(won\).*only open deals"):
        scorer.score(h, closed)
    with pytest.raises(NotFoundError, match="nope"):
        scorer.score(h, "nope")
    with pytest.raises(DataValidationError, match="say which one"):
        scorer.score(h)
    young = h.deals.sort_values("created_at")["deal_id"].iloc[-1]
    with pytest.raises(DataValidationError, match="after the scoring time"):
        scorer.score(h, young, h.data_cut - pd.Timedelta(days=3650))


def test_scoring_time_with_a_zone_and_an_empty_pipeline(small_history: Any, scorer: Scorer) -> None:
    h = small_history
    deal = scoring_snapshots(h)["deal_id"].iloc[0]
    naive = scorer.score(h, deal, "2025-06-01T12:00:00", explain=False, actions=False)
    zoned = scorer.score(h, deal, "2025-06-01T14:00:00+02:00", explain=False, actions=False)
    assert zoned.as_of == naive.as_of and zoned.p_win == naive.p_win
    with pytest.raises(DataValidationError, match="not a date"):
        scorer.score(h, deal, "next tuesday")
    before_all = h.deals["created_at"].min() - pd.Timedelta(days=1)
    assert scorer.score_many(h, before_all) == []
    empty = scorer.score_frame(h, before_all)
    assert len(empty) == 0 and {"deal_id", "p_win", "grade"} <= set(empty.columns)


def test_the_scorer_values_risk_by_the_at_risk_rule(explained: list[ScoreResult]) -> None:
    from dealscore.scoring.at_risk import value_at_risk

    assert any(r.value_at_risk for r in explained)
    for r in explained:
        assert r.value_at_risk == pytest.approx(value_at_risk(r.amount, r.p_win, r.stage_typical_p_win))
        assert 0 <= r.value_at_risk <= (r.amount or 0.0)
