"""The intervention oracle changes the latent process as docs/simulator.md documents, and its figures are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dealscore.data.simulate import simulate
from dealscore.data.simulate.config import ACTIVE, LOST, N_STAGES, QUIET, STALLED, WON
from dealscore.data.simulate.core import SimulatedCRM
from dealscore.data.simulate.intervention import (
    Intervention,
    intervention_effect,
    next_state,
    reachability,
    respond_probability,
)
from dealscore.data.simulate.latent import simulate_paths, win_probability
from dealscore.data.simulate.oracle import latent_state_at, load_truth

DEMO = Intervention(frozenset({"email", "demo"}), "decision_maker")
CALL = Intervention(frozenset({"call"}), "champion")
NEW = Intervention(frozenset({"email", "meeting"}), "user", new_contact=True)


@pytest.fixture(scope="module")
def sim() -> SimulatedCRM:
    return simulate(1500, seed=4)


def test_a_response_moves_the_latent_state_as_documented() -> None:
    kind = np.array([QUIET, QUIET, STALLED, ACTIVE, ACTIVE, ACTIVE, ACTIVE, WON, LOST])
    stage = np.array([2, 3, 4, 3, 2, N_STAGES - 1, 4, 5, 3])
    rev = np.array([0, 1, 0, 0, 0, 0, 1, 0, 0])
    nk, ns, nr, eff = next_state(DEMO, kind, stage, rev)
    # quiet revives (one revival more, capped), stalled resumes in its stage
    assert (nk[:3] == ACTIVE).all() and list(ns[:3]) == [2, 3, 4] and list(nr[:3]) == [1, 1, 0]
    # a demo is solution's key step: the deal advances; discovery needs the decision maker, which a demo with
    # the decision maker also is; elsewhere a response refreshes the state
    assert (nk[3], ns[3]) == (ACTIVE, 4) and (nk[4], ns[4]) == (ACTIVE, 3)
    assert (nk[5], ns[5]) == (ACTIVE, N_STAGES - 1) and (nk[6], ns[6], nr[6]) == (ACTIVE, 4, 1)
    assert [int(e) for e in eff] == [1, 1, 2, 3, 3, 4, 4, 0, 0]  # revive, resume, advance, refresh, none
    assert list(nk[-2:]) == [WON, LOST] and list(ns[-2:]) == [5, 3]  # closed deals do not change
    # the contract is negotiation's key step: a response wins the deal
    nk, _, _, eff = next_state(Intervention(frozenset({"contract"})), np.array([ACTIVE]), np.array([5]), np.array([0]))
    assert nk[0] == WON and eff[0] == 3


def test_response_needs_someone_to_respond() -> None:
    dm, champ, extra = np.array([0, 1]), np.array([0, 2]), np.array([0, 1])
    assert reachability(DEMO, dm, champ, extra).tolist() == [0.0, 1.0]
    assert reachability(CALL, dm, champ, extra).tolist() == [0.25, 1.0]
    assert reachability(NEW, dm, champ, extra).tolist() == [0.3, 1.0]
    p = respond_probability(np.array([ACTIVE, STALLED, QUIET, QUIET, WON]), np.array([0, 0, 0, 1, 0]),
                            np.zeros(5), np.ones(5))
    assert p.tolist() == pytest.approx([0.60, 0.35, 0.15, 0.08, 0.0])
    # more engaged buyers answer more often
    assert respond_probability(np.array([ACTIVE]), np.array([0]), np.array([1.0]), np.ones(1))[0] > 0.6


def test_oracle_effect_is_the_documented_closed_form(sim: SimulatedCRM) -> None:
    d = sim.history.deals
    open_ids = d.loc[d["closed_at"].isna(), "deal_id"].to_numpy()[:60]
    snaps = pd.DataFrame({"deal_id": open_ids, "as_of": sim.history.data_cut})
    got = intervention_effect(sim, snaps, [DEMO] * len(snaps))
    law, ids, origin, path, truth = load_truth(sim)
    idx, kind, stage, rev, tau, ok = latent_state_at(ids, origin, path, snaps)
    assert ok.all()
    np.testing.assert_allclose(got["p_now"], win_probability(law, idx, kind, stage, rev, tau))
    nk, ns, nr, _ = next_state(DEMO, kind, stage, rev)
    after = win_probability(law, idx, nk, ns, nr, np.zeros(len(idx)))
    np.testing.assert_allclose(got["change_if_responds"], 100 * (after - got["p_now"]))
    np.testing.assert_allclose(got["expected_change"], got["p_respond"] * got["change_if_responds"])
    # the decision maker cannot answer where the buyer has no decision-maker access
    no_dm = truth["dm_access"].to_numpy()[idx] == 0
    assert no_dm.any() and (got.loc[no_dm, "p_respond"] == 0).all()
    assert set(got["effect"]) <= {"revive", "resume", "advance", "refresh"}


def test_new_state_value_matches_re_simulating_the_process(sim: SimulatedCRM) -> None:
    """An advanced deal's win probability (state entered now) equals its frequency when the process is re-run."""
    law = sim.law
    deal = np.flatnonzero(law.wa[:, 3, 0] > 0.2)[0]  # a deal worth following from solution
    copies = 20_000
    rng = np.random.default_rng(0)
    sub = _one_deal_law(law, deal, copies)
    paths = simulate_paths(sub, rng, np.full(copies, 3), np.zeros(copies))
    exact = win_probability(law, np.array([deal]), np.array([ACTIVE]), np.array([3]), np.array([0]), np.zeros(1))[0]
    assert paths.won.mean() == pytest.approx(exact, abs=0.015)


def _one_deal_law(law: object, deal: int, copies: int) -> object:
    """The law of one deal repeated ``copies`` times (each copy runs its own future)."""
    from dataclasses import fields, replace

    take = np.full(copies, deal)
    per_deal = {f.name: getattr(law, f.name)[take] for f in fields(law) if not f.name.endswith("_shape")}
    return replace(law, **per_deal)
