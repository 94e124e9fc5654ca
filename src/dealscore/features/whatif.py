"""What-if features: snapshots plus copies of their deals, each with one touchpoint added at ``as_of``.

Next-best actions ask "what would the deal's features be if this touchpoint
happened now?". Answering by editing the history and calling
:func:`~dealscore.features.build.build_features` again re-reads every table for
every candidate. Here the history is read into arrays once; each what-if becomes
a *virtual deal*: a copy of its snapshot's deal (the same deal rows, stage rows and
touchpoints, gathered by index) plus one touchpoint row that happened and was
logged at the snapshot's ``as_of``. The virtual deals then go through the very
same vectorised steps as any history (:func:`~dealscore.features.build.compute_block`):
there is no second formula, only a bigger batch of deals.

A virtual deal keeps its deal's id, so cross-deal aggregates of the feature
context (owner and account records, which never count touchpoints) are the
deal's own. Like adding the row to the history, a touchpoint later than the
history's data cut moves the copy's data cut to it
(``dealscore.scoring.actions.apply_action`` does the same), and the copy's row
order is the deal's rows followed by the added one. So a what-if row equals the
row :func:`build_features` gives the edited history; ``tests/features/test_whatif.py``
checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.errors import ConfigError
from dealscore.features.build import (
    FeatureBlock,
    PreparedHistory,
    _data_cut,
    _Plan,
    _plan,
    _resolve_spec,
    check_snapshots,
    compute_block,
    resolve_context,
)
from dealscore.features.context import FeatureContext
from dealscore.features.inputs import (
    DIRECTIONS,
    ActivityRows,
    DealRows,
    StageRows,
    Vocab,
    read_activity_rows,
    read_deals,
    read_stage_rows,
)
from dealscore.features.spec import FeatureSpec
from dealscore.features.stage import prepare_stage
from dealscore.features.touchpoints import prepare_touches
from dealscore.taxonomy import StageTaxonomy


@dataclass(frozen=True)
class Touchpoint:
    """One touchpoint to add in a what-if (it happens and is logged at the snapshot's ``as_of``).

    ``contact_id`` None means no contact recorded; an id the deal already knows
    counts as that contact, any other as a new one.
    """

    type: str
    direction: str | None = None
    contact_id: str | None = None
    contact_role: str | None = None


def build_what_if(history: DealHistory, snapshots: pd.DataFrame, touchpoints: Sequence[tuple[int, Touchpoint]], *,
                  spec: FeatureSpec | None = None, taxonomy: StageTaxonomy | None = None,
                  context: FeatureContext | None = None) -> FeatureBlock:
    """Features of ``snapshots`` and of one what-if per ``(row, touchpoint)``, in one pass.

    Rows ``0..n-1`` of the result are the snapshots as :func:`build_features`
    gives them; row ``n + j`` is snapshot ``touchpoints[j][0]``'s deal at its
    ``as_of`` with ``touchpoints[j][1]`` added at that ``as_of``. ``context``
    works as in :func:`build_features` (fitted on ``history`` when omitted, never on the copies).
    """
    spec = _resolve_spec(spec, taxonomy)
    plan = _plan(spec)
    deals = read_deals(history)
    stage_rows = read_stage_rows(history, deals.index, plan.stages)
    acts = read_activity_rows(history, deals.index, plan.types, plan.roles)
    cut = _data_cut(history, deals, stage_rows.seen, acts.seen)
    q_deal, q_time = check_snapshots(snapshots, deals.index, deals)
    n = len(q_deal)
    context = resolve_context(context, None, spec) if context is not None else FeatureContext().fit_prepared(
        deals, prepare_stage(stage_rows, len(deals)), spec.stages)
    rows = np.asarray([r for r, _ in touchpoints], dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= n):
        raise ConfigError(f"what-if touchpoints name snapshot rows outside 0..{n - 1}")
    src = np.concatenate([q_deal, q_deal[rows]])  # the real deal behind each virtual deal
    v_time = np.concatenate([q_time, q_time[rows]])
    n_virtual = len(src)
    v_deals = _take_deals(deals, src)
    v_stage = _gather_stage(stage_rows, src, len(deals))
    extra = _touch_rows(plan, acts, [t for _, t in touchpoints], np.arange(n, n_virtual), q_time[rows])
    v_acts = _gather_activities(acts, src, len(deals), extra)
    v_cut = np.full(n_virtual, cut, dtype=np.int64)
    v_cut[n:] = np.maximum(cut, v_time[n:])  # like adding the row: a later touchpoint moves the cut
    prepared = PreparedHistory(index=deals.index, deals=v_deals, stage=prepare_stage(v_stage, n_virtual),
                               touches=prepare_touches(v_acts, n_virtual, plan.layout), data_cut=v_cut)
    v_deal = np.arange(n_virtual, dtype=np.int64)
    block, stage_codes = compute_block(prepared, context, plan, v_deal, v_time)
    return FeatureBlock(plan, v_deals, v_deal, v_time, block, stage_codes)


def _take_deals(deals: DealRows, src: np.ndarray) -> DealRows:
    """The deal rows of the virtual deals (same ids: cross-deal aggregates stay the deal's own)."""
    fields = {f: getattr(deals, f)[src] for f in deals.__dataclass_fields__ if f != "index"}
    return DealRows(index=deals.index, **fields)


def _gather(deal: np.ndarray, src: np.ndarray, n_deals: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of each virtual deal's source deal (in table order) and the virtual deal of each."""
    order = np.argsort(deal, kind="stable")
    counts = np.bincount(deal, minlength=n_deals)
    start = np.zeros(n_deals + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    lens = counts[src]
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(src), dtype=np.int64), lens)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    return order[start[src][owner] + offset], owner


def _gather_stage(rows: StageRows, src: np.ndarray, n_deals: int) -> StageRows:
    pos, owner = _gather(rows.deal, src, n_deals)
    return StageRows(deal=owner, stage=rows.stage[pos], changed=rows.changed[pos], seen=rows.seen[pos],
                     amount=rows.amount[pos], expected_close=rows.expected_close[pos])


def _gather_activities(rows: ActivityRows, src: np.ndarray, n_deals: int, extra: ActivityRows) -> ActivityRows:
    """The virtual deals' touchpoints: each deal's rows in table order, then the added ones."""
    pos, owner = _gather(rows.deal, src, n_deals)
    return ActivityRows(
        deal=np.concatenate([owner, extra.deal]), type=np.concatenate([rows.type[pos], extra.type]),
        direction=np.concatenate([rows.direction[pos], extra.direction]),
        role=np.concatenate([rows.role[pos], extra.role]),
        contact=np.concatenate([rows.contact[pos], extra.contact]),
        occurred=np.concatenate([rows.occurred[pos], extra.occurred]),
        seen=np.concatenate([rows.seen[pos], extra.seen]), contact_names=extra.contact_names,
    )


def _code(vocab: Vocab, value: str | None, what: str) -> int:
    if value is None:
        return -1
    code = vocab.lookup.get(value)
    if code is None:
        raise ConfigError(f"what-if touchpoint {what} {value!r} is not among the configured {list(vocab.names)}; "
                          "fix the playbook or the taxonomy")
    return code


def _touch_rows(plan: _Plan, acts: ActivityRows, touches: Sequence[Touchpoint], deal: np.ndarray,
                at: np.ndarray) -> ActivityRows:
    """The added touchpoints as activity rows (contact ids the history knows keep their code)."""
    known = {c: i for i, c in enumerate(acts.contact_names)}
    names = list(acts.contact_names)
    contact = np.empty(len(touches), dtype=np.int64)
    for j, t in enumerate(touches):
        if t.contact_id is None:
            contact[j] = -1
            continue
        if t.contact_id not in known:
            known[t.contact_id] = len(names)
            names.append(t.contact_id)
        contact[j] = known[t.contact_id]
    at = np.asarray(at, dtype=np.int64)
    if not plan.types.names:
        raise ConfigError("the feature spec lists no activity types")
    return ActivityRows(
        deal=np.asarray(deal, dtype=np.int64),
        type=np.array([_code(plan.types, t.type, "type") if t.type is not None else -1 for t in touches],
                      dtype=np.int64),
        direction=np.array([_code(DIRECTIONS, t.direction, "direction") for t in touches], dtype=np.int64),
        role=np.array([_code(plan.roles, t.contact_role, "contact_role") for t in touches], dtype=np.int64),
        contact=contact, occurred=at, seen=at.copy(), contact_names=tuple(names),
    )


__all__ = ["Touchpoint", "build_what_if"]
