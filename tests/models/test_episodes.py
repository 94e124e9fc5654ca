"""The episode model: EM recovers a known process, the filter is a plain forward pass, and it reads only what
was known at the snapshot."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from dealscore.data.history import DealHistory, from_frames
from dealscore.models.episodes import (
    EPISODES,
    PAIRWISE_ROWS,
    STATES,
    EpisodeModel,
    TouchDays,
    episode_weights,
    touch_days,
)
from dealscore.times import DAY_NS

#: A known process: per day, touches from the rep / the customer / undirected, in each state of STATES.
RATES = np.array([[0.6, 0.6, 0.2], [0.25, 0.2, 0.1], [0.06, 0.03, 0.02], [0.4, 0.0005, 0.01]])
TRANSITION = np.array([[0.90, 0.07, 0.02, 0.01],
                       [0.06, 0.90, 0.03, 0.01],
                       [0.02, 0.02, 0.93, 0.03],
                       [0.005, 0.005, 0.0, 0.99]])
INITIAL = np.array([0.6, 0.4, 0.0, 0.0])


def _sample(n_deals: int, days: int, seed: int) -> tuple[TouchDays, np.ndarray]:
    """Sequences drawn from the known process, as TouchDays (each starting on a day with a customer reply)."""
    rng = np.random.default_rng(seed)
    states = np.zeros((n_deals, days), dtype=int)
    counts = np.zeros((n_deals, days, 3))
    for i in range(n_deals):
        s = rng.choice(4, p=INITIAL)
        for t in range(days):
            if t:
                s = rng.choice(4, p=TRANSITION[s])
            states[i, t] = s
            counts[i, t] = rng.poisson(RATES[s])
        counts[i, 0, 1] = max(counts[i, 0, 1], 1)  # the sequence starts with the customer's first reply
    return _as_touch_days(counts), states


def _as_touch_days(counts: np.ndarray, start_day: int = 20_000) -> TouchDays:
    n, days, _ = counts.shape
    offsets, day, rows = [0], [], []
    for i in range(n):
        busy = np.flatnonzero(counts[i].sum(1) > 0)
        day.extend((start_day + busy).tolist())
        rows.append(counts[i, busy])
        offsets.append(offsets[-1] + len(busy))
    return TouchDays(start=np.full(n, start_day, dtype=np.int64), end=np.full(n, start_day + days - 1, dtype=np.int64),
                     offsets=np.asarray(offsets), day=np.asarray(day, dtype=np.int64),
                     counts=np.vstack(rows) if rows else np.zeros((0, 3)))


def _model() -> EpisodeModel:
    return EpisodeModel(rates=RATES.copy(), transition=TRANSITION.copy(), initial=INITIAL.copy())


def _forward_day_by_day(model: EpisodeModel, counts: np.ndarray) -> np.ndarray:
    """The textbook forward pass over every day (the reference the event-by-event filter must equal)."""
    def emission(x: np.ndarray) -> np.ndarray:
        return np.exp(x @ np.log(model.rates).T - model.rates.sum(1))

    alpha = model.initial * emission(counts[0])
    alpha /= alpha.sum()
    for x in counts[1:]:
        alpha = (alpha @ model.transition) * emission(x)
        alpha /= alpha.sum()
    return alpha


def test_em_recovers_the_rates_and_persistence_of_a_known_process() -> None:
    days, _ = _sample(400, 150, seed=1)
    fitted = EpisodeModel.fit(days, iterations=30)
    assert fitted is not None
    # the customer's rate tells quiet apart, the rates order the rest
    np.testing.assert_allclose(fitted.rates[:, :2], RATES[:, :2], rtol=0.3, atol=0.02)
    assert fitted.rates[STATES.index("quiet"), 1] < 0.01
    np.testing.assert_allclose(np.diag(fitted.transition), np.diag(TRANSITION), atol=0.05)


@pytest.mark.parametrize("n_rows", [5, 80])  # pairwise products (few rows) and steps through the days (many)
def test_the_filter_equals_a_day_by_day_forward_pass(n_rows: int) -> None:
    assert 5 <= PAIRWISE_ROWS < 80
    model = _model()
    counts = np.random.default_rng(3).poisson(0.3, size=(n_rows, 90, 3)).astype(float)
    counts[:, 0, 1] = 1
    counts[2, 40:] = 0  # a long silence: the empty days go in one step
    counts[4, 10:, 1] = 0  # replies stop, the rep keeps writing
    counts[3, 1:] = 0  # one day with touches, then silence
    got = model.probabilities(_as_touch_days(counts))
    for i in range(len(counts)):
        np.testing.assert_allclose(got[i], _forward_day_by_day(model, counts[i]), atol=1e-10)


def test_gaps_beyond_the_first_table_grow_it_consistently_under_threads() -> None:
    """A silence longer than the precomputed tables (512 days) grows them; a service's threads share one model,
    so every thread must read a grown pair of tables, never one grown and the other not."""
    counts = np.zeros((2, 1400, 3))
    counts[:, 0, 1] = 1
    counts[0, 700, 0] = 1  # a rep's touch after 699 empty days, then 699 more
    counts[1, 1300, 1] = 1
    days = _as_touch_days(counts)
    reference = [_forward_day_by_day(_model(), c) for c in counts]
    model = _model()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: model.probabilities(days), range(32)))
    for got in results:
        for i in range(len(counts)):
            np.testing.assert_allclose(got[i], reference[i], atol=1e-10)


def test_the_filter_tells_a_quiet_customer_from_a_busy_deal() -> None:
    model = _model()
    busy = np.zeros((60, 3))
    busy[:, 0], busy[:, 1] = 1, 1
    quiet = busy.copy()
    quiet[20:, 1] = 0  # the customer stopped answering 40 days ago; the rep writes every other day
    quiet[20:, 0] = np.arange(40) % 2
    p = model.probabilities(_as_touch_days(np.stack([busy, quiet])))
    assert p[0, STATES.index("active")] > 0.9
    assert p[1, STATES.index("quiet")] > 0.9


def test_a_reply_today_moves_the_probabilities_as_the_filter_would_read_it() -> None:
    model = _model()
    quiet = np.zeros((60, 3))
    quiet[:20, 1], quiet[:, 0] = 1, np.arange(60) % 2  # replies for 20 days, then the rep alone
    answered = quiet.copy()
    answered[-1, 1] += 1  # the customer answers on the snapshot's day
    before, after = model.probabilities(_as_touch_days(np.stack([quiet, answered])))
    assert before[STATES.index("quiet")] > 0.9
    got = model.after_reply(episode_weights(before[None, :], 1))[0]
    np.testing.assert_allclose(got, [*after, 0.0], atol=1e-12)
    assert got[STATES.index("quiet")] < 0.5  # a quiet deal that answers is most likely revived
    # a deal without a reply so far: the filter's first day, with this reply alone
    first = model.probabilities(_as_touch_days(np.array([[[0.0, 1.0, 0.0]]])))[0]
    np.testing.assert_allclose(model.after_reply(episode_weights(None, 1))[0], [*first, 0.0], atol=1e-12)


def test_episode_weights_put_rows_without_a_reply_or_a_model_on_unreplied() -> None:
    p = np.array([[0.7, 0.1, 0.1, 0.1], [np.nan] * 4])
    w = episode_weights(p, 2)
    assert w.shape == (2, len(EPISODES)) and EPISODES[-1] == "unreplied"
    np.testing.assert_allclose(w, [[0.7, 0.1, 0.1, 0.1, 0.0], [0, 0, 0, 0, 1]])
    np.testing.assert_allclose(episode_weights(None, 3), np.tile([0, 0, 0, 0, 1.0], (3, 1)))


def test_states_are_named_by_their_rates_whatever_order_em_left_them_in() -> None:
    order = np.array([3, 1, 0, 2])
    shuffled = EpisodeModel(rates=RATES[order], transition=TRANSITION[np.ix_(order, order)], initial=INITIAL[order])
    named = shuffled._named()
    np.testing.assert_allclose(named.rates, RATES)
    np.testing.assert_allclose(named.transition, TRANSITION)


def test_round_trip_through_the_bundle_dict() -> None:
    model = _model()
    back = EpisodeModel.from_dict(model.to_dict())
    assert back is not None
    np.testing.assert_allclose(back.rates, model.rates)
    assert EpisodeModel.from_dict({}) is None
    assert len(model.summary()) == len(STATES)


def test_too_few_deals_with_a_reply_give_no_model() -> None:
    days, _ = _sample(10, 30, seed=2)
    assert EpisodeModel.fit(days) is None


def _history(extra: list[dict[str, str]] | None = None) -> DealHistory:
    deals = pd.DataFrame({"deal_id": ["D1", "D2"], "account_id": ["A1", "A1"], "owner_id": ["o1", "o1"],
                          "created_at": ["2024-01-01", "2024-01-01"], "amount": [1000.0, 1000.0]})
    sh = pd.DataFrame({"deal_id": ["D1", "D2"], "stage": ["discovery", "prospecting"],
                       "changed_at": ["2024-01-01", "2024-01-01"]})
    rows = [
        {"deal_id": "D1", "occurred_at": "2024-01-02 10:00", "direction": "outbound", "type": "email"},
        {"deal_id": "D1", "occurred_at": "2024-01-03 09:00", "direction": "inbound", "type": "email"},
        {"deal_id": "D1", "occurred_at": "2024-01-03 15:00", "direction": "outbound", "type": "email"},
        {"deal_id": "D1", "occurred_at": "2024-01-05 11:00", "type": "meeting"},
        {"deal_id": "D2", "occurred_at": "2024-01-02 10:00", "direction": "outbound", "type": "email"},
        *(extra or []),
    ]
    acts = pd.DataFrame(rows)
    acts.insert(0, "activity_id", [f"a{i}" for i in range(len(acts))])
    accounts = pd.DataFrame({"account_id": ["A1"], "industry": ["software"]})
    return from_frames({"accounts": accounts, "deals": deals, "stage_history": sh, "activities": acts},
                       cut_at="2024-03-01")


def test_touch_days_start_at_the_first_reply_and_count_per_day_and_stream() -> None:
    days = touch_days(_history(), np.array(["D1", "D2"], dtype=object),
                      np.array(["2024-01-10", "2024-01-10"], dtype="datetime64[ns]"))
    first_reply = pd.Timestamp("2024-01-03").value // DAY_NS
    assert days.start.tolist() == [first_reply, -1]  # D2's customer never replied: no episode yet
    assert days.end[0] == pd.Timestamp("2024-01-10").value // DAY_NS
    lo, hi = days.offsets[0], days.offsets[1]
    assert (days.day[lo:hi] - first_reply).tolist() == [0, 2]  # the e-mail before the reply is not read
    assert days.counts[lo:hi].tolist() == [[1, 1, 0], [0, 0, 1]]
    p = _model().probabilities(days)
    assert np.isnan(p[1]).all() and np.isclose(p[0].sum(), 1.0)


def test_a_snapshot_reads_only_touches_that_happened_and_were_logged_by_then() -> None:
    as_of = np.array(["2024-01-20"], dtype="datetime64[ns]")
    ids = np.array(["D1"], dtype=object)
    model = _model()
    before = model.probabilities(touch_days(_history(), ids, as_of))
    later = [
        {"deal_id": "D1", "occurred_at": "2024-01-25 10:00", "direction": "inbound", "type": "email"},  # after
        {"deal_id": "D1", "occurred_at": "2024-01-15 10:00", "direction": "inbound", "type": "call",
         "recorded_at": "2024-01-28 10:00"},  # happened before, logged after the snapshot
    ]
    after = model.probabilities(touch_days(_history(later), ids, as_of))
    np.testing.assert_array_equal(before, after)
    logged = model.probabilities(touch_days(_history(later), ids, np.array(["2024-01-29"], dtype="datetime64[ns]")))
    assert not np.allclose(logged, model.probabilities(touch_days(_history(), ids,
                                                                  np.array(["2024-01-29"], dtype="datetime64[ns]"))))


@pytest.mark.parametrize("n_rows", [1, 3])
def test_many_snapshots_of_one_deal_each_read_their_own_past(n_rows: int) -> None:
    times = pd.date_range("2024-01-04", periods=n_rows, freq="7D").to_numpy(dtype="datetime64[ns]")
    ids = np.array(["D1"] * n_rows, dtype=object)
    together = _model().probabilities(touch_days(_history(), ids, times))
    for i, t in enumerate(times):
        alone = _model().probabilities(touch_days(_history(), ids[:1], np.array([t])))
        np.testing.assert_allclose(together[i], alone[0])
