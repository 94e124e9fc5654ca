"""Next-best actions: playbook touchpoints, and the what-if copies of a deal that value them.

An action is an attempt the customer may take up. Its what-ifs are the deal's
history with the customer's response, or with the rep's attempt alone, added at
the scoring time, through the very same feature code as any other history. The
scorer values the response by the state it moves the deal to (the real stage the
what-if reads as, the silence it ends: :mod:`dealscore.scoring.stage_values`) and
the unanswered attempt by the model's re-score. Both are estimates from past
deals, not causal guarantees (docs/scoring.md).

All candidates of all deals of a block are scored in one feature pass:
:class:`dealscore.features.WhatIf` turns each (deal, action) pair into a virtual
copy of the deal with the action's touchpoint added at the scoring time, on the
same vectorised code path as any history. The touchpoint is the one
:func:`apply_action` adds (same type, direction, role and contact, see
:func:`contact_ids`), so a copy's features are exactly those of the edited
history, and tests check the changes against scoring that history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dealscore._compat import column_array
from dealscore.data.history import DealHistory, known_time
from dealscore.errors import NotFoundError
from dealscore.playbook import normalise_action
from dealscore.wording import percent_text, points_text

#: Up to this many what-ifs, contacts are found with array masks rather than a join.
SMALL_ITEMS = 64


@dataclass(frozen=True)
class Action:
    """One playbook action as the touchpoint its what-if adds.

    The fields ``type`` … ``new_contact`` are the customer's *response* (what
    happens when the action is taken up: its what-if is what the action is valued
    by); the ``attempt_*`` fields are the rep's outbound touch. An attempt nobody
    answers changes nothing in the deal
    (:data:`dealscore.scoring.scorer.UNANSWERED_CHANGE`), so it has no what-if of
    its own. ``repeat`` False marks a
    once-only action: when any ``done_when`` feature is already 1, ``follow_up``
    is suggested instead (see :func:`dealscore.playbook.normalise_action`).
    """

    code: str
    text: str
    stage: str
    type: str
    direction: str | None = None
    contact_role: str | None = None
    new_contact: bool = False
    attempt_type: str | None = None
    attempt_role: str | None = None
    attempt_new_contact: bool = False
    response_text: str = "the customer takes it up"
    repeat: bool = True
    done_when: tuple[str, ...] = ()
    follow_up: Action | None = None

    @classmethod
    def from_playbook(cls, raw: Mapping[str, Any], stage: str) -> Action:
        a = normalise_action(raw, stage)
        tp, at = a["response"], a["attempt"]
        follow = a["follow_up"]
        return cls(
            code=a["code"], text=a["text"], stage=stage, type=str(tp["type"]), direction=tp.get("direction"),
            contact_role=tp.get("contact_role"), new_contact=bool(tp.get("new_contact", False)),
            attempt_type=str(at["type"]), attempt_role=at.get("contact_role"),
            attempt_new_contact=bool(at.get("new_contact", False)), response_text=a["response_text"],
            repeat=a["repeat"], done_when=tuple(a["done_when"]),
            follow_up=None if follow is None else cls.from_playbook(follow, stage),
        )

    def touch_key(self) -> tuple[Any, ...]:
        """What the what-if adds: two actions with the same key have the same effect on the deal's features."""
        return (self.type, self.direction, self.contact_role, self.new_contact)


def candidate_actions(playbook: Mapping[str, Any], stage: str) -> list[Action]:
    """Actions valid for ``stage``: that stage's playbook entries plus the ``any_stage`` ones."""
    stages = playbook.get("stages") or {}
    out = [Action.from_playbook(a, stage) for a in stages.get(stage) or []]
    out += [Action.from_playbook(a, "any_stage") for a in playbook.get("any_stage") or []]
    seen: set[str] = set()
    return [a for a in out if not (a.code in seen or seen.add(a.code))]  # type: ignore[func-returns-value]


def contact_ids(history: DealHistory, items: Sequence[tuple[str, Action, pd.Timestamp]]) -> list[str]:
    """The contact each item's touchpoint is with (see :func:`_contacts_for`); what :func:`apply_action` records."""
    return _contacts_for(history.activities, items)


def column_values(frame: pd.DataFrame, name: str, dtype: Any = None) -> np.ndarray:
    """One column as a NumPy array without building a Series (that costs more than the one-deal lookups)."""
    loc = frame.columns.get_loc(name)
    if isinstance(loc, int):
        values = column_array(frame, loc)
        if isinstance(values, pd.arrays.DatetimeArray) and values.tz is None:
            values = np.asarray(values)
        out = values if isinstance(values, np.ndarray) else values.to_numpy()
    else:
        out = frame[name].to_numpy()
    return out if dtype is None or out.dtype == np.dtype(dtype) else out.astype(dtype)


def _contacts_for(acts: pd.DataFrame, items: Sequence[tuple[str, Action, pd.Timestamp]]) -> list[str]:
    """The contact each item's touchpoint is with: the deal's known contact in that role, else a new one.

    "Call the champion" means the champion already met (the latest one known at
    the item's time); "meet the decision maker" when none was met means a new
    contact. ``new_contact`` forces a new one. One vectorised join for all items.
    """
    roles = [a.contact_role or "other" for _, a, _ in items]
    out = [f"{d}:{a.code}:{r}" for (d, a, _), r in zip(items, roles, strict=True)]
    reuse = [k for k, (_, a, _) in enumerate(items) if not a.new_contact]
    if not reuse or not len(acts) or "contact_role" not in acts or "contact_id" not in acts:
        return out
    if len(reuse) <= SMALL_ITEMS:
        return _contacts_small(acts, items, roles, reuse, out)
    want = pd.DataFrame({
        "item": np.asarray(reuse, dtype=np.int64),
        "deal_id": np.array([items[k][0] for k in reuse], dtype=object),
        "contact_role": np.array([roles[k] for k in reuse], dtype=object),
        "at": pd.DatetimeIndex([items[k][2] for k in reuse]).as_unit("ns"),
    })
    have = acts.loc[acts["deal_id"].isin(want["deal_id"]) & acts["contact_id"].notna(),
                    ["deal_id", "contact_role", "contact_id", "occurred_at"]]
    if not len(have):
        return out
    have = have.assign(known=known_time(acts.loc[have.index], "occurred_at").to_numpy(),
                       order=np.arange(len(have)))
    m = want.merge(have, on=["deal_id", "contact_role"], how="inner")
    m = m[m["known"] <= m["at"]].sort_values(["item", "occurred_at", "order"], kind="stable")
    last = m.groupby("item", sort=False)["contact_id"].last()
    for k, c in zip(last.index.to_numpy(), last.to_numpy(), strict=True):
        out[int(k)] = str(c)
    return out


def contacts_of_rows(rows: Any, deal_codes: Mapping[str, int], role_codes: Mapping[str, int],
                     items: Sequence[tuple[str, Action, Any]], known_at: np.ndarray) -> list[str]:
    """:func:`contact_ids` for a few items, from a history already read into arrays.

    ``rows`` are the history's touchpoints as :class:`dealscore.features.inputs.ActivityRows`
    (deal, role and contact codes, times in ns, all in table order), ``deal_codes``
    and ``role_codes`` the vocabularies they were coded with, ``known_at`` each
    item's time in ns. The scorer has these arrays from its feature pass, and
    matching codes costs less than reading the activity table's columns again.
    The answer is :func:`contact_ids`'s (tested): the latest contact in the
    role known at the item's time (``seen``: happened and logged), ties in
    table order, else a new contact.
    """
    out = [f"{d}:{a.code}:{a.contact_role or 'other'}" for d, a, _ in items]
    reuse = [k for k, (_, a, _) in enumerate(items) if not a.new_contact]
    if not reuse or not len(rows.deal):
        return out
    has = rows.contact >= 0
    mine: dict[int, np.ndarray] = {}
    by_role: dict[int, np.ndarray] = {}
    for k in reuse:
        d, a, _ = items[k]
        deal, role = deal_codes.get(d, -2), role_codes.get(a.contact_role or "other", -2)
        if deal not in mine:
            mine[deal] = (rows.deal == deal) & has
        if role not in by_role:
            by_role[role] = rows.role == role
        m = (mine[deal] & by_role[role] & (rows.seen <= known_at[k])).nonzero()[0]
        if len(m):
            # latest by occurrence; ties keep the row order (a stable sort, like contact_ids)
            out[k] = str(rows.contact_names[rows.contact[m[np.argsort(rows.occurred[m], kind="stable")[-1]]]])
    return out


def _contacts_small(acts: pd.DataFrame, items: Sequence[tuple[str, Action, pd.Timestamp]], roles: list[str],
                    reuse: list[int], out: list[str]) -> list[str]:
    """:func:`_contacts_for` for a few items (one deal scored now): array masks instead of a join."""
    deal = column_values(acts, "deal_id", object)
    role = column_values(acts, "contact_role", object)
    contact = column_values(acts, "contact_id", object)
    occurred = column_values(acts, "occurred_at", "datetime64[ns]")
    if "recorded_at" in acts.columns:  # when a touchpoint became known: the later of occurred_at and recorded_at
        recorded = column_values(acts, "recorded_at", "datetime64[ns]")
        known = np.where(np.isnat(recorded) | (recorded < occurred), occurred, recorded)
    else:
        known = occurred
    has = pd.notna(contact)
    mine = {d: deal == d for d in {items[k][0] for k in reuse}}
    by_role = {r: role == r for r in {roles[k] for k in reuse}}
    for k in reuse:
        d, _, at = items[k]
        m = np.flatnonzero(mine[d] & by_role[roles[k]] & has & (known <= np.datetime64(pd.Timestamp(at), "ns")))
        if len(m):
            # latest by occurrence; ties keep the row order (a stable sort, like the join path)
            out[k] = str(contact[m[np.argsort(occurred[m], kind="stable")[-1]]])
    return out


def touchpoint_columns(history: DealHistory, items: Sequence[tuple[str, Action, pd.Timestamp]],
                       deal_ids: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Activity columns (arrays) for ``(deal_id, action, at)`` items: the touchpoint happening (and logged) at ``at``.

    ``deal_ids`` renames the deal the rows belong to (the what-if copies), while
    contacts are still looked up in the item's own deal.
    """
    times = np.array([pd.Timestamp(t).as_unit("ns").asm8 for _, _, t in items], dtype="datetime64[ns]")
    owners = [d for d, _, _ in items] if deal_ids is None else list(deal_ids)
    return {
        "activity_id": np.array([f"{d}:action:{a.code}:{pd.Timestamp(t).isoformat()}" for d, a, t in items],
                                dtype=object),
        "deal_id": np.array(owners, dtype=object),
        "occurred_at": times,
        "type": np.array([a.type for _, a, _ in items], dtype=object),
        "direction": np.array([a.direction for _, a, _ in items], dtype=object),
        "contact_id": np.array(_contacts_for(history.activities, items), dtype=object),
        "contact_role": np.array([a.contact_role for _, a, _ in items], dtype=object),
        "recorded_at": times,
    }


def touchpoint_rows(history: DealHistory, items: Sequence[tuple[str, Action, pd.Timestamp]],
                    deal_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`touchpoint_columns` as activity rows with the history's columns and dtypes."""
    acts = history.activities
    data = touchpoint_columns(history, items, deal_ids)
    dtypes = dict(acts.dtypes.items()) if len(acts.columns) else {c: np.asarray(v).dtype for c, v in data.items()}
    index = pd.RangeIndex(len(items))
    return pd.DataFrame({
        c: _typed(np.asarray(data[c]), dt, index) if c in data
        else _typed(np.full(len(items), None, dtype=object), object, index) for c, dt in dtypes.items()
    }, index=index, copy=False)


def add_touchpoints(history: DealHistory, items: Sequence[tuple[str, Action, pd.Timestamp]]) -> DealHistory:
    """The history with each item's touchpoint added to its deal (a what-if, nothing is written)."""
    if not items:
        return history
    rows = touchpoint_rows(history, items)
    acts = pd.concat([history.activities, rows], ignore_index=True) if len(history.activities) else rows
    latest = max(pd.Timestamp(t) for _, _, t in items)
    cut = history.cut_at if history.cut_at is None or history.cut_at >= latest else latest
    return history.replace(activities=acts, cut_at=cut)


def apply_action(history: DealHistory, deal_id: str, action: Action, at: pd.Timestamp | str | None = None
                 ) -> DealHistory:
    """The history with the action's touchpoint added to one deal at ``at`` (default: the data cut).

    This is the what-if the action ranking evaluates; re-scoring its result at
    ``at`` gives the action's expected change.
    """
    if not (history.deals["deal_id"] == deal_id).any():
        raise NotFoundError(f"deal {deal_id!r} is not in the history; pass one of its deal_id values")
    t = history.data_cut if at is None else pd.Timestamp(at)
    return add_touchpoints(history, [(deal_id, action, t)])


def _gained(before: float, after: float) -> bool:
    return not (before >= 1) and after >= 1


def describe_change(before: Mapping[str, float], after: Mapping[str, float]) -> list[str]:
    """What the added touchpoint changes in the deal's features, in a rep's words."""
    facts: list[str] = []
    if _gained(before.get("decision_maker_engaged", np.nan), after.get("decision_maker_engaged", np.nan)):
        facts.append("engages a decision maker for the first time")
    if _gained(before.get("champion_engaged", np.nan), after.get("champion_engaged", np.nan)):
        facts.append("engages a champion")
    c0, c1 = before.get("n_contacts", np.nan), after.get("n_contacts", np.nan)
    if c1 > c0 or (np.isnan(c0) and c1 >= 1):
        facts.append(f"brings the deal to {int(c1)} contact{'s' if c1 != 1 else ''}")
    for col, text in (("has_meeting", "holds a first meeting"), ("has_demo", "runs a first demo"),
                      ("has_proposal", "puts a proposal on the table"), ("has_contract", "sends the contract")):
        if _gained(before.get(col, np.nan), after.get(col, np.nan)):
            facts.append(text)
    if _gained(before.get("pricing_discussed", np.nan), after.get("pricing_discussed", np.nan)) and not any(
        "proposal" in f or "contract" in f for f in facts
    ):
        facts.append("gets pricing discussed")
    r0, r1 = before.get("days_since_last_inbound", np.nan), after.get("days_since_last_inbound", np.nan)
    u0 = before.get("n_outbound_unanswered", np.nan)
    if np.isnan(r0) and not np.isnan(r1):
        facts.append("gets the customer's first reply")
    elif r0 >= 3 and r1 < r0:
        facts.append(f"ends {round(r0)} days without a customer reply")
    elif u0 >= 1 and after.get("n_outbound_unanswered", np.nan) < u0:
        facts.append(f"answers {round(u0)} unanswered outreach touch{'es' if u0 != 1 else ''}")
    t0 = before.get("days_since_last_touch", np.nan)
    if t0 >= 7 and not any("reply" in f for f in facts):
        facts.append(f"ends {round(t0)} days without a touchpoint")
    return facts


def state_text(won_now: float, won_after: float, p_now: float | None = None, p_after: float | None = None) -> str:
    """The state move behind a response's change, as the company's own history priced it (StageValues), and
    this deal's own move by the same change of odds (``p_now`` → ``p_after``, when given).

    The deal keeps what the win model knows about it beyond its state, so it need not land on the new state's
    rate: a deal scored above its state's past deals lands above theirs. Saying both probabilities lets the
    reader check the points against the prices instead of taking them on trust.
    """
    text = (f"past deals in the state it is in won {percent_text(won_now)} of the time, "
            f"in the state a response leads to {percent_text(won_after)}")
    if p_now is None or p_after is None:
        return text
    return text + f"; the same change of odds takes this deal from {percent_text(p_now)} to {percent_text(p_after)}"


def odds_text(p: float) -> str:
    """A chance as a manager says it: "about 1 in 4", "about 7 in 10"."""
    if p >= 0.5:
        return f"about {min(10, max(5, round(10 * p)))} in 10"
    return f"about 1 in {max(2, round(1 / max(p, 0.01)))}"


def action_reason(expected: float, if_responds: float, if_unanswered: float, p_respond: float, response_text: str,
                  interval: tuple[float, float], deals: int, facts: Sequence[str], priced: str | None = None) -> str:
    """Both parts of the expected change in words, its interval, what it rests on and what it changes
    (``priced``: how the history prices the state move behind the change, :func:`state_text`)."""
    what = f"; it {', '.join(facts[:-1]) + ' and ' + facts[-1] if len(facts) > 1 else facts[0]}" if facts else ""
    what += f"; {priced}" if priced else ""
    if_not = points_text(if_unanswered) if abs(if_unanswered) >= 0.05 else "no change"
    return (f"If {response_text} ({odds_text(p_respond)} for deals like this): {points_text(if_responds)}; "
            f"if not: {if_not}; expected {points_text(expected)} (80%: {points_text(interval[0])} to "
            f"{points_text(interval[1])}), from {deals:,} similar past deal{'s' if deals != 1 else ''}{what}")


def _typed(values: np.ndarray, dtype: Any, index: pd.Index | None = None) -> pd.Series | np.ndarray:
    """A column keeping the history's dtype: text stays ``object`` (pandas 3 would infer ``str``).

    Only text needs a typed Series (sharing one index, so the frame needs no
    alignment); numbers and times go in as arrays of their own dtype.
    """
    if isinstance(dtype, np.dtype) and dtype.kind != "O" and values.dtype == dtype:
        return values
    return pd.Series(values, dtype=dtype, index=index, copy=False)
