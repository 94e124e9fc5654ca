"""State values: win rates per (real stage, episode, silence, chase) of the training snapshots, and how a response
moves a deal."""

from __future__ import annotations

import numpy as np
import pytest

from dealscore.models.episodes import EPISODES
from dealscore.playbook import CHASE_BUCKETS, SILENCE_BUCKETS, chase_bucket
from dealscore.scoring.stage_values import PRIOR_SNAPSHOTS, StageValues
from dealscore.training.stage_values import learn_stage_values

STAGES = ("discovery", "proposal")
E = {e: i for i, e in enumerate(EPISODES)}


def _weights(**w: float) -> list[float]:
    out = [0.0] * len(EPISODES)
    for k, v in w.items():
        out[E[k]] = v
    return out


def _table() -> dict:
    # (real stage, days since the customer's last inbound touch, unanswered outbound touches since, won, deal,
    #  episode probabilities)
    rows = [("discovery", 2.0, 0, 1, "D1", _weights(active=1.0)), ("discovery", 3.0, 0, 0, "D1", _weights(active=1.0)),
            ("discovery", 40.0, 5, 0, "D2", _weights(quiet=0.75, stalled=0.25)),
            ("proposal", np.nan, 1, 1, "D3", _weights(unreplied=1.0)),
            ("proposal", 1.0, 0, 1, "D4", _weights(active=0.5, slow=0.5)),
            (None, 1.0, 0, 1, "D5", _weights(active=1.0)),  # no label
            ("discovery", 1.0, 0, np.nan, "D6", _weights(active=1.0))]  # no outcome: left out
    stage, days, unanswered, won, deal, w = zip(*rows, strict=True)
    return learn_stage_values(np.array(stage, dtype=object), np.array(days, dtype=float),
                              np.array(unanswered, dtype=float), np.array(won, dtype=float),
                              np.array(deal, dtype=object), STAGES, np.array(w))


def test_snapshots_wins_and_deals_are_counted_per_cell_by_episode_weight() -> None:
    cells = {(r["stage"], r["episode"], r["silence"], r["chase"]): (r["snapshots"], r["won"], r["deals"])
             for r in _table()["rows"]}
    assert cells == {
        ("discovery", "active", "under_7d", "none"): (2.0, 1.0, 1),
        ("discovery", "quiet", "over_30d", "4_to_6"): (0.75, 0.0, 1),  # D2 is most likely quiet: its deal counts there
        ("discovery", "stalled", "over_30d", "4_to_6"): (0.25, 0.0, 0),
        ("proposal", "unreplied", "never", "1"): (1.0, 1.0, 1),
        ("proposal", "active", "under_7d", "none"): (0.5, 0.5, 1),  # a tie: the first episode is the likeliest
        ("proposal", "slow", "under_7d", "none"): (0.5, 0.5, 0),
    }


def test_chase_buckets() -> None:
    got = chase_bucket(np.array([np.nan, 0, 1, 2, 3, 4, 6, 7, 11, 12, 40]))
    assert [CHASE_BUCKETS[i] for i in got] == ["none", "none", "1", "2_to_3", "2_to_3", "4_to_6", "4_to_6",
                                              "7_to_11", "7_to_11", "12_plus", "12_plus"]


def test_nothing_to_learn_gives_no_table() -> None:
    assert learn_stage_values(np.array([None]), np.array([1.0]), np.array([0.0]), np.array([1.0]), np.array(["D"]),
                              STAGES, np.array([_weights(active=1.0)])) == {"rows": []}
    assert StageValues.from_stage_stats({"_stage_values": {"rows": []}}, STAGES) is None
    assert StageValues.from_stage_stats({}, STAGES) is None
    # tables counted before the chase or the episode were: the scorer keeps the re-score rather than misreading them
    for old in ("chase", "episode"):
        rows = [{k: v for k, v in r.items() if k != old} for r in _table()["rows"]]
        assert StageValues.from_stage_stats({"_stage_values": {"rows": rows}}, STAGES) is None


def test_a_thin_cell_leans_on_its_episode_and_silence_then_episode_then_stage_then_all() -> None:
    v = StageValues.from_stage_stats({"_stage_values": _table()}, STAGES)
    assert v is not None and v.rates.shape == (2, len(EPISODES), len(SILENCE_BUCKETS), len(CHASE_BUCKETS))
    k = PRIOR_SNAPSHOTS
    overall = (3.0 + 1) / (5 + 2)
    disc = (1.0 + k * overall) / (3 + k)
    active = (1.0 + k * disc) / (2 + k)  # discovery while active
    quick = (1.0 + k * active) / (2 + k)  # ... and replied within a week
    cell = (1.0 + k * quick) / (2 + k)
    s, c = SILENCE_BUCKETS.index, CHASE_BUCKETS.index
    assert v.rates[0, E["active"], s("under_7d"), c("none")] == pytest.approx(cell)
    assert v.rates[0, E["active"], s("under_7d"), c("12_plus")] == pytest.approx(quick)  # no snapshot: one level up
    assert v.rates[0, E["active"], s("7_to_30d"), c("1")] == pytest.approx(active)
    assert v.rates[0, E["slow"], s("never"), c("none")] == pytest.approx(disc)  # no slow discovery: the stage's rate
    quiet = (0.0 + k * disc) / (0.75 + k)
    assert v.episode_rates[0, E["quiet"]] == pytest.approx(quiet) and quiet < disc  # a lost quiet deal: below
    assert v.rates[1].min() > v.rates[0].max()  # proposal deals won more often here


def test_a_response_moves_the_odds_by_the_ratio_of_the_state_values() -> None:
    rates = np.zeros((2, len(EPISODES), len(SILENCE_BUCKETS), len(CHASE_BUCKETS)))
    rates[0], rates[1] = 0.3, 0.6
    rates[0, E["quiet"], 3, 4], rates[1, E["active"], 1, 0] = 0.1, 0.7
    v = StageValues(rates=rates)
    stage = np.array([[0.75, 0.25], [0.0, 1.0]])
    episodes = np.array([_weights(quiet=1.0), _weights(active=0.5, stalled=0.5)])
    got = v.value(stage, episodes, np.array([3, 1]), np.array([4, 0]))
    assert got == pytest.approx([0.75 * 0.1 + 0.25 * 0.6, 0.5 * 0.7 + 0.5 * 0.6])
    before, after = np.array([0.2]), np.array([0.5])
    moved = v.moved(np.array([0.1]), before, after)
    odds = lambda p: p / (1 - p)  # noqa: E731
    assert odds(moved[0]) == pytest.approx(odds(0.1) * odds(0.5) / odds(0.2))
    assert v.moved(np.array([0.3]), after, after) == pytest.approx([0.3])  # no move, no change
    assert 0 < v.moved(np.array([0.0]), before, after)[0] < 1e-5  # kept off 0 and 1


def test_the_summary_is_the_table_the_actions_are_priced_with() -> None:
    v = StageValues.from_stage_stats({"_stage_values": _table()}, STAGES)
    assert v is not None
    got = v.summary()
    assert got["silence_buckets"] == list(SILENCE_BUCKETS)
    disc, prop = got["stages"]
    assert (disc["stage"], disc["snapshots"], prop["snapshots"]) == ("discovery", 3, 2)
    assert disc["snapshots_by_silence"] == {"never": 0, "under_7d": 2, "7_to_30d": 0, "over_30d": 1}
    assert disc["snapshots_by_episode"] == {"active": 2, "slow": 0, "stalled": 0, "quiet": 1, "unreplied": 0}
    assert disc["win_rates_by_episode"]["quiet"] == pytest.approx(v.episode_rates[0, E["quiet"]])
    # each (stage, silence) rate is the smoothed one over every episode and chase
    s = SILENCE_BUCKETS.index
    assert disc["win_rates"]["under_7d"] == pytest.approx(v.silence_rates[0, s("under_7d")])
    assert disc["win_rates"]["under_7d"] > disc["win_rates"]["over_30d"]
    chase = {c["chase"]: c for c in got["chase"]}
    assert chase["none"]["snapshots"] == 3 and chase["12_plus"] == {"chase": "12_plus", "snapshots": 0,
                                                                      "win_rate": None}
    # the chase's rate: its cells' smoothed rates weighted by their snapshots
    c = CHASE_BUCKETS.index
    want = (2 * v.rates[0, E["active"], s("under_7d"), c("none")] + 0.5 * v.rates[1, E["active"], s("under_7d"),
                                                                                   c("none")]
            + 0.5 * v.rates[1, E["slow"], s("under_7d"), c("none")]) / 3
    assert chase["none"]["win_rate"] == pytest.approx(want)
    assert got["reading"][0].startswith("Silence matters most in discovery:")
    assert "with 4–6 of them past deals won" in got["reading"][1]
    assert got["reading"][2].startswith("A deal gone quiet is worth far less than an active one: in discovery")
    assert StageValues(rates=v.rates).summary() == {}  # a table built by hand has no counts to show
