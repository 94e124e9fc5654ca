"""Response rates: attempts and answers per (stage, episode, role, first engagement), and their lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.data.history import from_frames
from dealscore.models.episodes import EPISODES, STATES, EpisodeModel, episode_weights, touch_days
from dealscore.scoring.response import ResponseRates, shrink
from dealscore.training.response_rates import learn_response_rates


def _history() -> object:
    accounts = pd.DataFrame({"account_id": ["A1"], "industry": ["software"]})
    deals = pd.DataFrame({
        "deal_id": ["D1", "D2"], "account_id": ["A1", "A1"], "owner_id": ["o1", "o1"],
        "created_at": ["2024-01-01", "2024-01-01"], "amount": [1000.0, 1000.0],
        "closed_at": ["2024-04-01", "2024-04-01"], "outcome": ["won", "lost"],
    })
    sh = pd.DataFrame({"deal_id": ["D1", "D2"], "stage": ["discovery", "discovery"],
                       "changed_at": ["2024-01-01", "2024-01-01"]})
    rows = [  # deal, day, direction, role
        ("D1", "2024-01-02", "outbound", "other"), ("D1", "2024-01-04", "inbound", "other"),  # answered
        ("D1", "2024-01-10", "outbound", "decision_maker"), ("D1", "2024-01-12", "inbound", "decision_maker"),
        ("D1", "2024-01-20", "outbound", "decision_maker"),  # known DM, never answered again
        ("D2", "2024-01-02", "outbound", "other"),  # nobody ever answers D2
        ("D2", "2024-02-20", "outbound", "other"),
    ]
    acts = pd.DataFrame(rows, columns=["deal_id", "occurred_at", "direction", "contact_role"]).assign(
        type="email", activity_id=[f"a{i}" for i in range(len(rows))], contact_id="c")
    return from_frames({"accounts": accounts, "deals": deals, "stage_history": sh, "activities": acts},
                       cut_at="2024-06-01")


def test_attempts_and_answers_are_counted_per_cell() -> None:
    h = _history()
    table = learn_response_rates(h, pd.Index(["D1", "D2"]))
    # without an episode model every attempt counts as "before a reply"
    assert {r["episode"] for r in table["rows"]} == {"unreplied"}
    cells = {(r["role"], r["new"]): (r["attempts"], r["answered"], r["deals"]) for r in table["rows"]}
    # outreach to anyone else: D1's first (answered), D2's two (no reply ever)
    assert cells[("other", False)] == (3, 1, 2)
    # before the decision maker first answered (D1, 12 Jan), every attempt counts for the DM's *new* cell:
    # D1 2 Jan and 10 Jan (the DM answered on 12 Jan, within the window of both), D2's two (no DM ever)
    assert cells[("decision_maker", True)] == (4, 2, 2)
    # the 20 Jan e-mail went to a known decision maker: unanswered
    assert cells[("decision_maker", False)] == (1, 0, 1)


def _model() -> EpisodeModel:
    """A hand-made episode model: an active pace and a quiet one (the customer's rate near 0)."""
    rates = np.array([[0.5, 0.4, 0.1], [0.3, 0.2, 0.05], [0.05, 0.05, 0.01], [0.3, 0.005, 0.01]])
    transition = np.full((4, 4), 0.02) + np.diag([0.92] * 4)
    return EpisodeModel(rates=rates, transition=transition / transition.sum(1, keepdims=True),
                        initial=np.array([0.4, 0.4, 0.1, 0.1]))


def test_each_attempt_counts_for_every_episode_by_its_probability_just_before_it() -> None:
    h, model = _history(), _model()
    table = learn_response_rates(h, pd.Index(["D1", "D2"]), model)
    known_dm = {r["episode"]: r["attempts"] for r in table["rows"] if r["role"] == "decision_maker" and not r["new"]}
    # D1's 20 Jan e-mail came after the customer's replies: the filter's probabilities then, from the touches
    # known strictly before it
    want = model.probabilities(touch_days(h, ["D1"], [pd.Timestamp("2024-01-20") - pd.Timedelta(1, "ns")]))[0]
    assert [known_dm.get(e, 0.0) for e in STATES] == pytest.approx(want) and "unreplied" not in known_dm
    # attempts before the deal's first reply (D1's first, D2's two) count as before a reply, whole
    other = {r["episode"]: r for r in table["rows"] if r["role"] == "other"}
    assert set(other) == {"unreplied"} and (other["unreplied"]["attempts"], other["unreplied"]["answered"]) == (3, 1)
    # the weights split attempts, never add or lose one
    plain = learn_response_rates(h, pd.Index(["D1", "D2"]))
    assert sum(r["attempts"] for r in table["rows"]) == pytest.approx(sum(r["attempts"] for r in plain["rows"]))


def test_lookup_weighs_the_episode_cells_and_shrinks_thin_ones() -> None:
    table = learn_response_rates(_history(), pd.Index(["D1", "D2"]))
    rates = ResponseRates.from_stage_stats({"_response_rates": table})
    unreplied = episode_weights(None, 1)[0]
    r = rates.rate("discovery", unreplied, "other")
    assert 0 < r.low <= r.p <= r.high < 1 and r.deals == 2
    # the discovery cell (3 attempts, 1 answer) leans on all stages' cell (the same here) with 10 pseudo-attempts
    assert r.p == pytest.approx((1 + 10 * (1 + 1) / (3 + 2)) / (3 + 10))
    empty = ResponseRates.from_stage_stats({})
    assert empty.rate("discovery", unreplied, "champion").deals == 0
    assert shrink(0) == 0 and shrink(10) == 0.5 and shrink(1000) > 0.99


def test_a_deal_takes_its_own_episodes_rates() -> None:
    rows = [{"stage": "proposal", "episode": "active", "role": "other", "new": False, "attempts": 100.0,
             "answered": 80.0, "deals": 40},
            {"stage": "proposal", "episode": "quiet", "role": "other", "new": False, "attempts": 100.0,
             "answered": 10.0, "deals": 30}]
    rates = ResponseRates.from_stage_stats({"_response_rates": {"rows": rows}})
    w = np.zeros(len(EPISODES))
    w[EPISODES.index("active")], w[EPISODES.index("quiet")] = 0.25, 0.75
    active = (80 + 10 * 81 / 102) / 110
    quiet = (10 + 10 * 11 / 102) / 110
    r = rates.rate("proposal", w, "other")
    assert r.p == pytest.approx(0.25 * active + 0.75 * quiet) and r.deals == round(0.25 * 40 + 0.75 * 30)


def test_a_table_counted_per_silence_still_gives_the_stage_and_role_rate() -> None:
    rows = [{"stage": "proposal", "silence": s, "role": "other", "new": False, "attempts": 10, "answered": a,
             "deals": 5} for s, a in (("never", 2), ("under_7d", 8))]
    rates = ResponseRates.from_stage_stats({"_response_rates": {"rows": rows}})
    for e in EPISODES:
        w = np.zeros(len(EPISODES))
        w[EPISODES.index(e)] = 1.0
        assert rates.rate("proposal", w, "other").p == pytest.approx((10 + 10 * 11 / 22) / 30)


def _logged_late_history(stage_recorded: str | None, reply_recorded: str | None) -> object:
    """One deal: qualification, then a proposal row dated 10 Jan; a decision maker's reply on 15 Jan; an
    outbound attempt to the decision maker on 20 Jan. ``*_recorded``: when the row was entered (None: at once)."""
    accounts = pd.DataFrame({"account_id": ["A1"], "industry": ["software"]})
    deals = pd.DataFrame({"deal_id": ["D"], "account_id": ["A1"], "owner_id": ["o1"], "created_at": ["2024-01-01"],
                          "amount": [1000.0], "closed_at": ["2024-04-01"], "outcome": ["won"]})
    sh = pd.DataFrame({"deal_id": ["D", "D"], "stage": ["qualification", "proposal"],
                       "changed_at": ["2024-01-01", "2024-01-10"],
                       "recorded_at": [None, stage_recorded]})
    acts = pd.DataFrame({
        "deal_id": ["D", "D"], "occurred_at": ["2024-01-15", "2024-01-20"], "direction": ["inbound", "outbound"],
        "contact_role": ["decision_maker", "decision_maker"], "recorded_at": [reply_recorded, None],
        "type": "email", "activity_id": ["a0", "a1"], "contact_id": "c"})
    return from_frames({"accounts": accounts, "deals": deals, "stage_history": sh, "activities": acts},
                       cut_at="2024-06-01")


def _dm_cells(h: object) -> dict[tuple[str, bool], float]:
    rows = learn_response_rates(h, pd.Index(["D"]))["rows"]
    return {(r["stage"], r["new"]): r["attempts"] for r in rows if r["role"] == "decision_maker"}


def test_an_attempt_counts_under_the_stage_the_crm_showed_then() -> None:
    # entered at once: the 20 Jan attempt was made in proposal
    assert _dm_cells(_logged_late_history(None, None)) == {("proposal", False): 1.0}
    # the proposal row was back-dated, entered on 1 Feb: on 20 Jan the CRM still showed qualification,
    # the stage scoring looks the rate up by
    assert _dm_cells(_logged_late_history("2024-02-01", None)) == {("qualification", False): 1.0}


def test_a_reply_logged_after_the_attempt_does_not_make_the_role_known_yet() -> None:
    # the decision maker's 15 Jan reply was logged on 25 Jan: on 20 Jan the rep was still waiting for a first
    # engagement (the features' decision_maker_engaged is 0 then), so the attempt counts for the "new" cell
    assert _dm_cells(_logged_late_history(None, "2024-01-25")) == {("proposal", True): 1.0}
