"""`build_features`: the one function that turns a history and snapshots into the feature frame.

Training (a million snapshots), batch scoring and the API (one deal at now)
all call it. Its steps, each readable alone:

1. check the snapshots (known deals, ``as_of`` not before the deal existed);
2. read the history's tables into arrays (:mod:`~dealscore.features.inputs`);
3. sort stage rows and touchpoints once per history and derive row-level facts
   (:mod:`~dealscore.features.stage`, :mod:`~dealscore.features.touchpoints`);
4. take a :class:`~dealscore.features.context.FeatureContext` (given, e.g. from
   the model bundle, or fitted on this history);
5. for each chunk of snapshots, answer every feature by binary search;
6. assemble one typed frame in the spec's column order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dealscore._compat import frame_from_blocks
from dealscore.data.history import DealHistory
from dealscore.errors import ConfigError, DataValidationError
from dealscore.features.context import FeatureContext
from dealscore.features.inputs import (
    SMALL,
    DealRows,
    Vocab,
    as_ns,
    deal_codes,
    raw_column,
    read_activity_rows,
    read_deals,
    read_stage_rows,
)
from dealscore.features.profile import PROFILE_FEATURES, profile_features
from dealscore.features.spec import FeatureSpec, default_columns
from dealscore.features.stage import StageTimeline, prepare_stage, stage_features
from dealscore.features.timeline import NAT
from dealscore.features.touchpoints import Evidence, TouchLayout, TouchTimelines, prepare_touches, touch_features
from dealscore.taxonomy import StageTaxonomy
from dealscore.times import naive_utc

CHUNK = 100_000

STAGE_FEATURES = (
    "declared_stage_order", "days_in_stage", "n_stage_changes", "n_regressions", "n_skipped_stages",
    "close_date_pushes", "max_stage_order", "days_since_stage_update", "deal_age_days", "days_to_expected_close",
    "amount", "stage_median_days_won", "stage_time_ratio",
)
"""Features of :func:`stage_features` and the stage norms: functions of the deal's stage rows, the snapshot time
and whether that time is at or after the data cut (they never read touchpoints)."""


@dataclass(frozen=True)
class FeaturePlan:
    """What a spec needs at build time, derived once per spec (the one-deal path reuses it)."""

    key: tuple[Any, ...]
    stages: Vocab
    types: Vocab
    roles: Vocab
    layout: TouchLayout
    evidence: Evidence
    names: list[str]
    numeric: list[str]
    categorical: list[str]
    frame_columns: pd.Index
    frame_positions: dict[str, np.ndarray]
    numeric_positions: np.ndarray
    dtypes: dict[str, pd.CategoricalDtype | None]
    vocabs: dict[str, Vocab]
    # the profile and stage features the spec keeps (a what-if copy's are its snapshot's), and their numeric columns
    reused_columns: tuple[list[str], np.ndarray]


def feature_plan(spec: FeatureSpec) -> FeaturePlan:
    # cheap fingerprint: specs change through select()/fit_vocabulary(), which return new objects
    key = (id(spec.columns), len(spec.columns), tuple((k, len(v)) for k, v in spec.categories.items()),
           id(spec.stages), id(spec.activity_types), id(spec.contact_roles), id(spec.evidence))
    cached = spec._compiled
    if cached is not None and cached.key == key:
        return cached
    known = {c.name: c for c in default_columns(spec.stages, spec.activity_types, spec.evidence)}
    unknown = [n for n in spec.feature_names if n not in known]
    if unknown:
        raise ConfigError(f"feature spec names features this pipeline cannot build: {unknown}")
    roles = list(spec.contact_roles)
    layout = TouchLayout(
        activity_types=tuple(spec.activity_types),
        decision_maker=roles.index("decision_maker") if "decision_maker" in roles else -2,
        champion=roles.index("champion") if "champion" in roles else -2,
    )
    categorical = spec.categorical_names
    numeric = [n for n in spec.feature_names if n not in categorical]
    dtypes: dict[str, pd.CategoricalDtype | None] = {}
    vocabs: dict[str, Vocab] = {}
    for name in categorical:
        vocab = spec.categories.get(name) or []
        dtypes[name] = spec.dtype(name) if vocab else None
        vocabs[name] = Vocab.of(vocab)
    plan = FeaturePlan(
        key=key, stages=Vocab.of(spec.stages), types=Vocab.of(spec.activity_types), roles=Vocab.of(roles),
        layout=layout, evidence=Evidence.of([(s, list(spec.evidence.get(s, []))) for s in spec.stages], layout),
        names=spec.feature_names, numeric=numeric,
        categorical=categorical,
        frame_columns=pd.Index(["deal_id", "as_of", *spec.feature_names]),
        frame_positions={n: np.array([i]) for i, n in enumerate(["deal_id", "as_of", *spec.feature_names])},
        numeric_positions=np.array([2 + spec.feature_names.index(n) for n in numeric], dtype=np.int64),
        dtypes=dtypes, vocabs=vocabs,
        reused_columns=_columns_of(numeric, (*STAGE_FEATURES, *PROFILE_FEATURES)),
    )
    spec._compiled = plan
    return plan


def _columns_of(numeric: list[str], names: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Those of ``names`` the plan computes, and their columns in the numeric block."""
    kept = [n for n in names if n in numeric]
    return kept, np.array([numeric.index(n) for n in kept], dtype=np.int64)


def resolve_spec(spec: FeatureSpec | None, taxonomy: StageTaxonomy | None) -> FeatureSpec:
    if spec is None:
        return FeatureSpec.default(taxonomy)
    if taxonomy is not None and list(taxonomy.names) != list(spec.stages):
        raise ConfigError(
            f"the feature spec was built for stages {spec.stages} but the taxonomy has {taxonomy.names}; "
            "use the spec and taxonomy of the same model bundle"
        )
    return spec


def check_snapshots(snapshots: pd.DataFrame | tuple[Any, Any], index: Vocab, deals: DealRows
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Deal rows and as_of times of the snapshots, refusing unknown deals and times before a deal existed.

    ``snapshots`` is a frame with ``deal_id`` and ``as_of`` or those two columns as
    arrays (the scorer's one deal: building a one-row frame costs more than checking it).
    """
    if isinstance(snapshots, tuple):
        ids, when = snapshots
    else:
        missing = [c for c in ("deal_id", "as_of") if c not in snapshots.columns]
        if missing:
            raise DataValidationError(
                f"snapshots: missing column(s) {missing}", table="snapshots", column=missing[0],
                fix="pass a DataFrame with columns deal_id and as_of (see make_snapshots / scoring_snapshots)",
            )
        ids, when = raw_column(snapshots, "deal_id"), raw_column(snapshots, "as_of")
    q_deal = deal_codes(index, ids if len(ids) > SMALL else np.asarray(ids, dtype=object), table="snapshots")
    q_time = as_ns(when, table="snapshots", column="as_of")
    if (q_time == NAT).any():
        ids = [str(i) for i in np.asarray(ids, dtype=object)[q_time == NAT][:5]]
        raise DataValidationError("snapshots, column as_of: snapshots without a time", table="snapshots",
                                  column="as_of", ids=ids, fix="give every snapshot an as_of timestamp")
    early = q_time < deals.created[q_deal]
    if early.any():
        i = np.flatnonzero(early)[:5]
        ids = [str(d) for d in deals.ids[q_deal[i]]]
        when = ", ".join(
            f"{d} as of {pd.Timestamp(t)} but created {pd.Timestamp(c)}"
            for d, t, c in zip(ids, q_time[i], deals.created[q_deal[i]], strict=True)
        )
        raise DataValidationError(
            f"snapshots, column as_of: {int(early.sum())} snapshot(s) are dated before their deal existed ({when})",
            table="snapshots", column="as_of", ids=ids,
            fix="score a deal at or after its created_at (as_of defaults to the data cut)",
        )
    return q_deal, q_time


@dataclass(frozen=True)
class PreparedHistory:
    """A history read and sorted for feature building (reusable for several snapshot sets)."""

    index: Vocab
    deals: DealRows
    stage: StageTimeline
    touches: TouchTimelines
    data_cut: int | np.ndarray  # one time, or one per touch group (see dealscore.features.whatif)


def prepare_history(history: DealHistory, spec: FeatureSpec) -> PreparedHistory:
    """Steps 2-3: read the tables into arrays and sort them once."""
    plan = feature_plan(spec)
    deals = read_deals(history)
    stage_rows = read_stage_rows(history, deals.index, plan.stages)
    activity_rows = read_activity_rows(history, deals.index, plan.types, plan.roles)
    return PreparedHistory(
        index=deals.index, deals=deals, stage=prepare_stage(stage_rows, len(deals)),
        touches=prepare_touches(activity_rows, len(deals), plan.layout),
        data_cut=data_cut_ns(history, deals, stage_rows.seen, activity_rows.seen),
    )


def data_cut_ns(history: DealHistory, deals: DealRows, *seen: np.ndarray) -> int:
    """``history.data_cut`` from arrays already read: cut_at, else the latest time in the history."""
    if history.cut_at is not None:
        return naive_utc(pd.Timestamp(history.cut_at)).as_unit("ns").value
    latest = [int(a.max()) for a in (deals.created, deals.closed, *seen) if len(a)]
    latest = [t for t in latest if t != NAT]
    return max(latest) if latest else pd.Timestamp("1970-01-01").value


def build_features(history: DealHistory, snapshots: pd.DataFrame, *, spec: FeatureSpec | None = None,
                   taxonomy: StageTaxonomy | None = None, context: FeatureContext | None = None,
                   progress: bool = False, chunk_size: int = CHUNK) -> pd.DataFrame:
    """One row per snapshot (same order): ``deal_id``, ``as_of`` and ``spec.feature_names``.

    Only facts visible at each snapshot's ``as_of`` are used. ``context`` gives the
    cross-deal aggregates (owner/account win rates, stage norms); without it they are
    learned from ``history`` itself, which is right for training and batch scoring.
    The API, holding one deal, passes the context stored in the model bundle.
    Categoricals are pandas ``category`` with the spec's vocabulary; missing is NaN.
    """
    return build_feature_block(history, snapshots, spec=spec, taxonomy=taxonomy, context=context,
                               progress=progress, chunk_size=chunk_size).frame(snapshots.index)


def build_feature_block(history: DealHistory, snapshots: pd.DataFrame, *, spec: FeatureSpec | None = None,
                        taxonomy: StageTaxonomy | None = None, context: FeatureContext | None = None,
                        progress: bool = False, chunk_size: int = CHUNK) -> FeatureBlock:
    """:func:`build_features` before the DataFrame is assembled: the same values as arrays.

    Scoring feeds boosters a float matrix; going through a DataFrame and back costs
    more than the features of one deal, so the scorer takes the block.
    """
    spec = resolve_spec(spec, taxonomy)
    plan = feature_plan(spec)
    bar = _progress(progress, len(snapshots))
    try:
        if bar is not None:
            bar.set_description("features (reading and sorting the history)")
        prepared = prepare_history(history, spec)
        q_deal, q_time = check_snapshots(snapshots, prepared.index, prepared.deals)
        if bar is not None:
            bar.set_description("features")
        context = resolve_context(context, prepared, spec)
        block, stage_codes = compute_block(prepared, context, plan, q_deal, q_time, chunk_size=chunk_size, bar=bar)
        return FeatureBlock(plan, prepared.deals, q_deal, q_time, block, stage_codes)
    finally:
        if bar is not None:
            bar.close()


@dataclass(frozen=True)
class FeatureBlock:
    """Features of a set of snapshots as arrays: what :func:`build_features` puts into its frame.

    ``numeric`` holds the numeric features (rows x :attr:`numeric_names`, float64,
    NaN = missing); categoricals are codes into :meth:`categories` (-1 = missing).
    :meth:`frame` gives the typed DataFrame of :func:`build_features`.
    """

    plan: FeaturePlan
    deals: DealRows
    q_deal: np.ndarray
    q_time: np.ndarray
    numeric: np.ndarray
    stage_codes: np.ndarray

    def __len__(self) -> int:
        return len(self.q_deal)

    @property
    def deal_ids(self) -> np.ndarray:
        return self.deals.ids[self.q_deal]

    @property
    def feature_names(self) -> list[str]:
        return self.plan.names

    @property
    def numeric_names(self) -> list[str]:
        return self.plan.numeric

    @property
    def categorical_names(self) -> list[str]:
        return self.plan.categorical

    def categorical(self, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """Codes of one categorical feature per row (-1 = missing) and the categories they index."""
        if name == "declared_stage":
            dtype = self.plan.dtypes[name]
            cats = tuple(dtype.categories) if dtype is not None else self.plan.stages.names
            return self.stage_codes, cats
        return _category_codes(self.plan, name, getattr(self.deals, name), self.q_deal)

    def frame(self, index: pd.Index | None = None) -> pd.DataFrame:
        """The typed feature frame (``deal_id``, ``as_of``, features in spec order)."""
        return _assemble(self.plan, self.deals, self.q_deal, self.q_time, self.numeric, self.stage_codes,
                         pd.RangeIndex(len(self)) if index is None else index)


def resolve_context(context: FeatureContext | None, prepared: PreparedHistory | None, spec: FeatureSpec
                    ) -> FeatureContext:
    """Step 4: the given context (checked against the spec), else one fitted on the prepared history."""
    if context is None:
        if prepared is None:
            raise ConfigError("no feature context given and no history to fit one on")
        return FeatureContext().fit_prepared(prepared.deals, prepared.stage, spec.stages)
    if getattr(context, "stages_", spec.stages) != spec.stages:
        raise ConfigError(
            f"the feature context was fitted for stages {context.stages_} but the spec has {spec.stages}; "
            "use the spec and context of the same model bundle"
        )
    return context


def compute_block(prepared: PreparedHistory, context: FeatureContext, plan: FeaturePlan, q_deal: np.ndarray,
                  q_time: np.ndarray, *, touch_group: np.ndarray | None = None,
                  same_as: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, chunk_size: int = CHUNK,
                  bar: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Step 5 for all snapshots: the numeric features (rows x ``plan.numeric``) and the declared-stage codes.

    ``touch_group`` is each snapshot's group in ``prepared.touches`` (default: its
    deal). What-ifs pass their virtual deals there: a copy differs from its deal
    only by its touchpoints, so its stage, profile and context features read the
    real deal's rows instead of copies of them.

    ``same_as=(numeric, stage_codes, rows)`` says snapshot ``j`` has the same deal,
    stage rows and time as row ``rows[j]`` of an already computed block: what-if
    copies, whose data cut (moved at most to that very time) leaves "is the time at
    or after the cut" unchanged. Their stage features (:data:`STAGE_FEATURES` and the
    declared-stage code) and profile features
    (:data:`~dealscore.features.profile.PROFILE_FEATURES`, a function of deal, time
    and amount only) are taken from there; only the touchpoint features are computed.
    """
    n = len(q_deal)
    block = np.empty((len(plan.numeric), n), dtype=np.float64).T  # column-major: one contiguous column each
    stage_codes = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        group = None if touch_group is None else touch_group[start:stop]
        known = None
        if same_as is not None:
            numeric, codes, rows = same_as[0], same_as[1], same_as[2][start:stop]
            known = _known(plan.reused_columns, numeric, rows)
            known["_stage_code"] = codes[rows]
        values = _chunk_features(prepared, context, plan, q_deal[start:stop], q_time[start:stop], group, known)
        stage_codes[start:stop] = values.pop("_stage_code")
        # one call for all ~90 features instead of a write each (one deal: the tiny writes cost more); a single
        # chunk is the whole block, contiguous in feature order, so one concatenation fills it without np.stack's
        # per-array views
        columns, target = [values[name] for name in plan.numeric], block.T[:, start:stop]
        if target.flags.c_contiguous:
            np.concatenate(columns, out=target.reshape(-1))
        else:
            np.stack(columns, out=target)
        if bar is not None:
            bar.update(stop - start)
    return block, stage_codes


def _known(columns: tuple[list[str], np.ndarray], numeric: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Some features (``plan.reused_columns``: those the plan keeps, the rest are never read) of ``rows`` of a
    computed block."""
    names, cols = columns
    got = numeric[rows[:, None], cols]  # one gather for all of them
    return {name: got[:, i] for i, name in enumerate(names)}


def _chunk_features(prepared: PreparedHistory, context: FeatureContext, plan: FeaturePlan, q_deal: np.ndarray,
                    q_time: np.ndarray, touch_group: np.ndarray | None,
                    known: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Step 5: every feature of a chunk of snapshots (``known``: its stage and profile features, already known)."""
    group = q_deal if touch_group is None else touch_group
    cut = prepared.data_cut
    if isinstance(cut, np.ndarray):  # per touch group (what-if copies: the added touchpoint may move the cut)
        cut = cut[group]
    touches = touch_features(prepared.touches, group, q_time, plan.evidence)
    if known is not None:
        known.update(touches)
        return known
    values = stage_features(prepared.stage, prepared.deals, q_deal, q_time, cut)
    values.update(touches)
    values.update(profile_features(prepared.deals, q_deal, q_time, values["amount"], context))
    norms = context.stage_norms(values["_stage_code"], q_time)
    values["stage_median_days_won"] = norms
    with np.errstate(invalid="ignore", divide="ignore"):
        values["stage_time_ratio"] = values["days_in_stage"] / np.maximum(norms, 1.0)
    return values


def _assemble(plan: FeaturePlan, deals: DealRows, q_deal: np.ndarray, q_time: np.ndarray, block: np.ndarray,
              stage_codes: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """Step 6: the typed frame, columns in spec order.

    The frame is handed to pandas as its blocks (the whole float block in one piece,
    as :func:`compute_block` already laid it out column-major, plus one block per
    other column) through :func:`dealscore._compat.frame_from_blocks`: no
    copy and no per-column inspection, which for one deal scored now costs more than
    computing its features, and for a million snapshots saves a copy of the block.
    """
    pos = plan.frame_positions
    blocks: list[tuple[Any, np.ndarray]] = [
        (deals.ids[q_deal].reshape(1, -1), pos["deal_id"]),
        (q_time.view("datetime64[ns]").reshape(1, -1), pos["as_of"]),
        (block.T, plan.numeric_positions),
    ]
    for name in plan.categorical:
        if name == "declared_stage":
            values = pd.Categorical.from_codes(stage_codes, dtype=plan.dtypes[name] or _stage_dtype(plan),
                                               validate=False)
        else:
            values = _categorical(plan, name, getattr(deals, name), q_deal)
        blocks.append((values, pos[name]))
    return frame_from_blocks(blocks, index, plan.frame_columns)


def _stage_dtype(plan: FeaturePlan) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(pd.Index(list(plan.stages.names), dtype=object))


def _category_codes(plan: FeaturePlan, name: str, per_deal: np.ndarray, q_deal: np.ndarray
                    ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes of an open-vocabulary column: the fixed vocabulary when fitted, else the sorted observed values."""
    if plan.dtypes[name] is None:
        observed = per_deal[np.unique(q_deal)] if len(q_deal) else per_deal[:0]
        vocab = Vocab.of(sorted({str(v) for v in observed if v is not None and v == v}))
    else:
        vocab = plan.vocabs[name]
    codes, _ = vocab.codes(per_deal)  # values outside a fitted vocabulary become NaN (documented)
    return codes[q_deal], vocab.names


def _categorical(plan: FeaturePlan, name: str, per_deal: np.ndarray, q_deal: np.ndarray) -> pd.Categorical:
    """An open-vocabulary column as a pandas Categorical (see :func:`_category_codes`)."""
    codes, names = _category_codes(plan, name, per_deal, q_deal)
    dtype = plan.dtypes[name]
    if dtype is None:
        dtype = pd.CategoricalDtype(pd.Index(list(names), dtype=object))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="snapshot", unit_scale=True, desc="features", leave=True, mininterval=0.5)


__all__ = ["FeatureBlock", "PreparedHistory", "build_feature_block", "build_features", "check_snapshots",
           "prepare_history"]
