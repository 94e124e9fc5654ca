"""Playbook candidates and the what-if touchpoints they add to a deal's history."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from dealscore.errors import ConfigError, NotFoundError
from dealscore.playbook import load_playbook
from dealscore.scoring.actions import (
    Action,
    action_reason,
    add_touchpoints,
    apply_action,
    candidate_actions,
    contact_ids,
    contacts_of_rows,
    describe_change,
    state_text,
)


def test_candidates_are_the_stage_actions_plus_any_stage(taxonomy: Any) -> None:
    pb = load_playbook(taxonomy=taxonomy)
    got = candidate_actions(pb, "discovery")
    codes = [a.code for a in got]
    assert codes[:2] == ["meet_decision_maker", "multithread"]
    assert "re_engage_champion" in codes
    assert {a.stage for a in got} == {"discovery", "any_stage"}
    assert candidate_actions(pb, "not_a_stage") == [a for a in got if a.stage == "any_stage"]
    for s in taxonomy.names:
        assert candidate_actions(pb, s), f"no playbook action for {s}"


def test_action_without_touchpoint_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"touchpoint\.type"):
        candidate_actions({"stages": {"discovery": [{"code": "x", "text": "y", "touchpoint": {}}]}}, "discovery")


def test_apply_action_reuses_the_known_contact_in_that_role(tiny_history: Any) -> None:
    call = Action("re_engage_champion", "call", "any_stage", "call", "inbound", "champion")
    h = apply_action(tiny_history, "D1", call)
    added = h.activities.iloc[-1]
    assert len(h.activities) == len(tiny_history.activities) + 1
    assert added["deal_id"] == "D1" and added["contact_id"] == "c2" and added["type"] == "call"
    assert added["occurred_at"] == tiny_history.data_cut == added["recorded_at"]
    # a role never met (decision maker) means a new contact
    meet = Action("meet_decision_maker", "meet", "discovery", "meeting", "inbound", "decision_maker")
    added = apply_action(tiny_history, "D1", meet, "2024-02-15").activities.iloc[-1]
    assert added["contact_id"] not in set(tiny_history.activities["contact_id"])
    assert added["occurred_at"] == pd.Timestamp("2024-02-15")
    forced = Action("multithread", "m", "discovery", "meeting", "inbound", "champion", new_contact=True)
    assert apply_action(tiny_history, "D1", forced).activities.iloc[-1]["contact_id"] != "c2"


def test_apply_action_to_unknown_deal(tiny_history: Any) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        apply_action(tiny_history, "nope", Action("x", "x", "any_stage", "call"))


def test_add_touchpoints_adds_one_row_per_item(tiny_history: Any) -> None:
    a = Action("re_engage_champion", "call", "any_stage", "call", "inbound", "champion")
    b = Action("follow_up_outreach", "call", "prospecting", "call", "outbound", "other")
    t = pd.Timestamp("2024-03-01")
    h = add_touchpoints(tiny_history, [("D1", a, t), ("D2", b, t)])
    assert len(h.activities) == len(tiny_history.activities) + 2
    assert h.activities["activity_id"].is_unique
    new = h.activities.iloc[-2:]
    assert list(new["deal_id"]) == ["D1", "D2"] and list(new["type"]) == ["call", "call"]
    assert h.activities["occurred_at"].dtype == tiny_history.activities["occurred_at"].dtype
    # the same rows apply_action adds one at a time
    one = apply_action(tiny_history, "D1", a, t).activities.iloc[-1]
    for col in ("occurred_at", "type", "direction", "contact_id", "contact_role", "recorded_at"):
        assert one[col] == new.iloc[0][col]
    assert add_touchpoints(tiny_history, []) is tiny_history


def test_describe_change_words_the_feature_deltas() -> None:
    before = {"decision_maker_engaged": 0.0, "n_contacts": 1.0, "days_since_last_inbound": 21.0,
              "n_outbound_unanswered": 3.0, "days_since_last_touch": 10.0, "has_meeting": 1.0}
    after = {"decision_maker_engaged": 1.0, "n_contacts": 2.0, "days_since_last_inbound": 0.0,
             "n_outbound_unanswered": 0.0, "days_since_last_touch": 0.0, "has_meeting": 1.0}
    facts = describe_change(before, after)
    assert facts == ["engages a decision maker for the first time", "brings the deal to 2 contacts",
                     "ends 21 days without a customer reply"]
    text = action_reason(4.2, 18.0, -1.0, 0.26, "the decision maker takes the call", (1.0, 8.0), 140, facts)
    assert text == ("If the decision maker takes the call (about 1 in 4 for deals like this): +18 pts; if not: "
                    "−1 pt; expected +4 pts (80%: +1 pt to +8 pts), from 140 similar past deals; it engages a "
                    "decision maker for the first time, brings the deal to 2 contacts and ends 21 days without a "
                    "customer reply")
    assert "about 7 in 10" in action_reason(0.5, 1.0, 0.0, 0.7, "x", (0.0, 1.0), 1, [])
    assert "; if not: no change; " in action_reason(0.5, 1.0, 0.0, 0.7, "x", (0.0, 1.0), 1, [])
    priced = action_reason(4.2, 18.0, -1.0, 0.26, "x", (1.0, 8.0), 140, facts[-1:], state_text(0.082, 0.311))
    assert priced.endswith("; it ends 21 days without a customer reply; past deals in the state it is in won 8% of "
                           "the time, in the state a response leads to 31%")
    assert "won <1% of the time" in state_text(0.001, 0.2)
    # the deal's own move by the same odds ratio: a deal above its state's rate lands above the new state's
    assert state_text(0.003, 0.42, 0.0076, 0.655).endswith(
        "in the state a response leads to 42%; the same change of odds takes this deal from <1% to 66%")


def test_once_only_actions_carry_their_follow_up(taxonomy: Any) -> None:
    pb = load_playbook(taxonomy=taxonomy)
    send = next(a for a in candidate_actions(pb, "proposal") if a.code == "send_proposal")
    assert not send.repeat and send.done_when == ("has_proposal",)
    assert send.follow_up is not None and send.follow_up.code == "follow_up_proposal" and send.follow_up.repeat
    # the attempt is the rep's outbound touchpoint, the response the customer's inbound one
    assert (send.attempt_type, send.attempt_role, send.attempt_new_contact) == ("proposal", "decision_maker", False)
    assert send.direction == "inbound"
    # the old one-touchpoint format still loads: the touchpoint is the response, the attempt an outbound e-mail
    old = Action.from_playbook({"code": "x", "text": "y", "touchpoint": {"type": "meeting", "direction": "inbound",
                                                                        "contact_role": "champion"}}, "discovery")
    assert (old.attempt_type, old.attempt_role, old.attempt_new_contact) == ("email", "champion", False) and old.repeat
    with pytest.raises(ConfigError, match="needs done_when"):
        Action.from_playbook({"code": "x", "text": "y", "repeat": False, "touchpoint": {"type": "call"}}, "discovery")


def test_contacts_from_read_arrays_equal_contact_ids(trained: Any, small_history: Any) -> None:
    """The scorer's lookup in the feature pass's arrays names the same contact as :func:`contact_ids`."""
    from dealscore.features import WhatIf, scoring_snapshots

    history, bundle = small_history, trained.bundle
    acts = history.activities.copy()
    rng = np.random.default_rng(3)
    # logged later than it happened for some touchpoints, and ties in time, so "known at" and the order matter
    late = rng.random(len(acts)) < 0.2
    acts.loc[late, "recorded_at"] = acts.loc[late, "occurred_at"] + pd.Timedelta(days=3)
    acts.loc[acts.index[1::7], "occurred_at"] = acts["occurred_at"].shift(1).iloc[1::7].to_numpy()
    history = history.replace(activities=acts)
    snaps = scoring_snapshots(history)
    what_if = WhatIf(history, snaps, spec=bundle.spec, taxonomy=bundle.taxonomy, context=bundle.context)
    actions = [a for s in bundle.taxonomy.names for a in candidate_actions(bundle.playbook or {}, s)]
    deals = history.activities["deal_id"].drop_duplicates().to_numpy()
    times = history.activities["occurred_at"].sample(40, random_state=1).to_numpy()
    items = [(str(d), a, pd.Timestamp(t)) for d, t in zip(rng.choice(deals, 40), times, strict=True)
             for a in actions[:: 3]]
    items.append(("no-such-deal", actions[0], pd.Timestamp(times[0])))
    known_at = np.array([t.value for _, _, t in items], dtype=np.int64)
    got = contacts_of_rows(what_if.acts, what_if.deals.index.lookup, what_if.plan.roles.lookup, items, known_at)
    assert got == contact_ids(history, items)  # many items: the join path
    assert got[:60] == contact_ids(history, items[:60])  # a few: the array-mask path
    assert sum(not c.startswith(f"{d}:") for c, (d, _, _) in zip(got, items, strict=True)) > 10  # contacts reused
