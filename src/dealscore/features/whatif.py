"""What-if features: snapshots plus copies of their deals, each with one touchpoint added at ``as_of``.

Next-best actions ask "what would the deal's features be if this touchpoint
happened now?". Answering by editing the history and calling
:func:`~dealscore.features.build.build_features` again re-reads every table for
every candidate. Here the history is read into arrays once; each what-if becomes
a *virtual deal*: its snapshot's deal with a copy of the deal's touchpoints
(gathered by index) plus one touchpoint row that happened and was logged at the
snapshot's ``as_of``. The virtual deals then go through the very same vectorised
steps as any history (:func:`~dealscore.features.build.compute_block`): there is
no second formula, only a bigger batch of deals.

Only the touchpoints are copied: a virtual deal *is* its deal for everything
else, so its stage, profile and context features read the deal's own rows
(``compute_block``'s ``touch_group`` says which copy of the touchpoints a row
reads). Cross-deal aggregates of the feature context (owner and account records,
which never count touchpoints) are therefore the deal's own; once
:meth:`WhatIf.snapshots` has computed them, a copy takes its snapshot's profile
features (a function of deal, time and amount, see ``PROFILE_FEATURES``) and
stage features (``STAGE_FEATURES``: the deal's stage rows at that time) rather
than computing them again. Like adding the row
to the history, a touchpoint later than the history's data cut moves the copy's
data cut to it (``dealscore.scoring.actions.apply_action`` does the same); the cut
moves at most to the snapshot's own time, so "is the snapshot at or after the
cut", all the stage features ask of it, keeps its answer. The
copy's touchpoint order is the deal's rows followed by the added one. So a what-if row equals the
row :func:`build_features` gives the edited history; ``tests/features/test_whatif.py``
checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.errors import ConfigError
from dealscore.features.build import (
    FeatureBlock,
    FeaturePlan,
    PreparedHistory,
    check_snapshots,
    compute_block,
    data_cut_ns,
    feature_plan,
    resolve_context,
    resolve_spec,
)
from dealscore.features.context import FeatureContext
from dealscore.features.inputs import (
    DIRECTIONS,
    ActivityRows,
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


class WhatIf:
    """A history read into arrays once, for the features of some snapshots and of any what-ifs of them.

    The scorer first needs the snapshots' own features (to infer the real stage),
    then the what-ifs of the actions valid for that stage; both come from the
    arrays read here. :meth:`snapshots` equals :func:`build_feature_block`;
    :meth:`with_touchpoints` builds the virtual deals. ``snapshots`` is a frame with
    ``deal_id`` and ``as_of`` or those two columns as arrays (see :func:`check_snapshots`).
    """

    def __init__(self, history: DealHistory, snapshots: pd.DataFrame | tuple[Any, Any], *,
                 spec: FeatureSpec | None = None, taxonomy: StageTaxonomy | None = None,
                 context: FeatureContext | None = None) -> None:
        self.spec = resolve_spec(spec, taxonomy)
        self.plan = feature_plan(self.spec)
        self.deals = read_deals(history)
        self.stage_rows = read_stage_rows(history, self.deals.index, self.plan.stages)
        self.acts = read_activity_rows(history, self.deals.index, self.plan.types, self.plan.roles)
        self.cut = data_cut_ns(history, self.deals, self.stage_rows.seen, self.acts.seen)
        self.q_deal, self.q_time = check_snapshots(snapshots, self.deals.index, self.deals)
        self._stage = prepare_stage(self.stage_rows, len(self.deals))
        self.context = (resolve_context(context, None, self.spec) if context is not None
                        else FeatureContext().fit_prepared(self.deals, self._stage, self.spec.stages))
        self._own: tuple[np.ndarray, np.ndarray] | None = None  # the snapshots' numeric features and stage codes

    def __len__(self) -> int:
        return len(self.q_deal)

    def snapshots(self) -> FeatureBlock:
        """The snapshots' own features (what :func:`build_feature_block` gives)."""
        prepared = PreparedHistory(index=self.deals.index, deals=self.deals, stage=self._stage,
                                   touches=prepare_touches(self.acts, len(self.deals), self.plan.layout),
                                   data_cut=self.cut)
        block, stage_codes = compute_block(prepared, self.context, self.plan, self.q_deal, self.q_time)
        self._own = (block, stage_codes)
        return FeatureBlock(self.plan, self.deals, self.q_deal, self.q_time, block, stage_codes)

    def with_touchpoints(self, touchpoints: Sequence[tuple[int, Touchpoint]], *,
                         keep_snapshots: bool = False) -> FeatureBlock:
        """Row ``j``: snapshot ``touchpoints[j][0]``'s deal at its ``as_of`` with ``touchpoints[j][1]`` added then.

        ``keep_snapshots=True`` puts the snapshots' own rows first (rows ``0..n-1``,
        what-ifs from row ``n``), all in one pass: cheaper than :meth:`snapshots` and
        a second pass when there are few snapshots.
        """
        n = len(self.q_deal)
        rows = np.asarray([r for r, _ in touchpoints], dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise ConfigError(f"what-if touchpoints name snapshot rows outside 0..{n - 1}")
        first = n if keep_snapshots else 0
        src = self.q_deal[rows]  # the real deal behind each virtual deal
        v_time = self.q_time[rows]
        v_cut = np.maximum(self.cut, v_time)  # like adding the row: a later touchpoint moves the data cut
        if keep_snapshots:
            src, v_time = np.concatenate([self.q_deal, src]), np.concatenate([self.q_time, v_time])
            v_cut = np.concatenate([np.full(n, self.cut, dtype=np.int64), v_cut])
            rows = np.concatenate([np.arange(n, dtype=np.int64), rows])
        n_virtual = len(src)
        extra = _touch_rows(self.plan, self.acts, [t for _, t in touchpoints], np.arange(first, n_virtual),
                            v_time[first:])
        v_acts = _gather_activities(self.acts, src, len(self.deals), extra)
        # only the touchpoints are copied: stage, profile and context features read the real deal's rows
        prepared = PreparedHistory(index=self.deals.index, deals=self.deals, stage=self._stage,
                                   touches=prepare_touches(v_acts, n_virtual, self.plan.layout), data_cut=v_cut)
        # a copy's profile and stage features (no touchpoints read) are its snapshot's, when those are computed
        own = self._own
        block, stage_codes = compute_block(prepared, self.context, self.plan, src, v_time,
                                           touch_group=np.arange(n_virtual, dtype=np.int64),
                                           same_as=None if own is None else (own[0], own[1], rows))
        return FeatureBlock(self.plan, self.deals, src, v_time, block, stage_codes)


def build_what_if(history: DealHistory, snapshots: pd.DataFrame, touchpoints: Sequence[tuple[int, Touchpoint]], *,
                  spec: FeatureSpec | None = None, taxonomy: StageTaxonomy | None = None,
                  context: FeatureContext | None = None) -> FeatureBlock:
    """Features of one what-if per ``(row, touchpoint)`` of ``snapshots``, reading the history once.

    Row ``j`` of the result is snapshot ``touchpoints[j][0]``'s deal at its
    ``as_of`` with ``touchpoints[j][1]`` added (happened and logged) at that
    ``as_of``: the row :func:`build_features` gives for the edited history.
    ``context`` works as in :func:`build_features` (fitted on ``history`` when
    omitted, never on the copies). See :class:`WhatIf` to get the snapshots' own
    rows from the same reading.
    """
    return WhatIf(history, snapshots, spec=spec, taxonomy=taxonomy, context=context).with_touchpoints(touchpoints)


def _gather(deal: np.ndarray, src: np.ndarray, n_deals: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of each virtual deal's source deal (in table order) and the virtual deal of each."""
    order = deal.argsort(kind="stable")
    counts = np.bincount(deal, minlength=n_deals)
    start = np.zeros(n_deals + 1, dtype=np.int64)
    counts.cumsum(out=start[1:])
    lens = counts[src]
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(src), dtype=np.int64), lens)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    return order[start[src][owner] + offset], owner


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


def _touch_rows(plan: FeaturePlan, acts: ActivityRows, touches: Sequence[Touchpoint], deal: np.ndarray,
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


__all__ = ["Touchpoint", "WhatIf", "build_what_if"]
