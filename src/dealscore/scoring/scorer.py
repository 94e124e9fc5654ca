"""`Scorer`: the library's single scoring entry point.

The service, the batch CLI, the at-risk ranking and the demo all call this
class; none of them computes a feature or a probability on its own. Features are
built by :func:`dealscore.features.build_features` with the bundle's spec, the
same function training used, so a deal scored through the API, in a nightly
batch or in a training snapshot gets identical inputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.errors import ConfigError, DataValidationError, ModelNotReadyError, NotFoundError
from dealscore.scoring.actions import Action, action_reason, add_touchpoints, candidate_actions, describe_change
from dealscore.scoring.at_risk import WARNING_WEIGHTS
from dealscore.scoring.batch import ScoredBlock
from dealscore.scoring.columns import Columns
from dealscore.scoring.grading import DEFAULT_GRADE_CUTOFFS, check_cutoffs, grades
from dealscore.scoring.mismatch import judge
from dealscore.scoring.norms import StageNorms
from dealscore.scoring.reasons import MAX_REASONS, MIN_REASON_POINTS, ReasonGrouping, pick_reasons, probability_points
from dealscore.scoring.result import NextAction, ScoreResult
from dealscore.scoring.warnings import WarningRules, detect_warnings

#: Feature columns compared before/after an action to word why it helps.
CHANGE_FEATURES = (
    "decision_maker_engaged", "champion_engaged", "n_contacts", "has_meeting", "has_demo", "has_proposal",
    "has_contract", "pricing_discussed", "days_since_last_inbound", "n_outbound_unanswered", "days_since_last_touch",
)
#: Snapshots per block in batch scoring: bounds memory and paces the progress bar.
DEFAULT_CHUNK = 20_000


def _features_api() -> Any:
    """The features package (imported late: it sits upstream and may be heavy to import)."""
    import dealscore.features as features

    return features


class Scorer:
    """Scores open deals with a trained :class:`~dealscore.models.bundle.ModelBundle`.

    Parameters are stored as given (scikit-learn style); everything derived from
    the bundle (norms, reason groups, playbook candidates) is prepared once here
    because a scorer lives as long as the service process and scores one deal at
    a time.
    """

    def __init__(
        self,
        bundle: Any,
        *,
        grade_cutoffs: Mapping[str, float] | None = None,
        warning_rules: WarningRules | None = None,
        max_reasons: int = MAX_REASONS,
        min_reason_points: float = MIN_REASON_POINTS,
        n_actions: int = 3,
        min_action_change: float = 0.0,
        context: str = "auto",
    ) -> None:
        self.bundle = bundle
        self.grade_cutoffs = grade_cutoffs
        self.warning_rules = warning_rules
        self.max_reasons = max_reasons
        self.min_reason_points = min_reason_points
        self.n_actions = n_actions
        self.min_action_change = min_action_change
        self.context = context
        if context not in ("auto", "history", "bundle"):
            raise ConfigError(f"Scorer context must be 'auto', 'history' or 'bundle'; got {context!r}")
        self._cutoffs = check_cutoffs(grade_cutoffs) if grade_cutoffs is not None else dict(DEFAULT_GRADE_CUTOFFS)
        self._norms = StageNorms.from_stage_stats(bundle.stage_stats)
        self._feature_names = list(bundle.win_model.feature_names_)
        self._grouping = ReasonGrouping.build(self._feature_names, _spec_info(bundle.spec))
        self._taxonomy = bundle.taxonomy
        self._candidates: dict[str, list[Action]] = {
            s: candidate_actions(bundle.playbook or {}, s) for s in self._taxonomy.names
        }
        self._typical = {s: self._norms.win_rate(s) for s in self._taxonomy.names}

    @property
    def version(self) -> str:
        """The model version stamped on every result."""
        return str(self.bundle.version)

    # ------------------------------------------------------------------ public API

    def score(
        self, history: DealHistory, deal_id: str | None = None, as_of: pd.Timestamp | str | None = None, *,
        explain: bool = True, actions: bool = True,
    ) -> ScoreResult:
        """Score one open deal at ``as_of`` (default: the history's data cut).

        ``history`` may hold exactly one deal when ``deal_id`` is None (the API's
        case); otherwise it is the whole history and ``deal_id`` picks the deal.
        """
        deal = self._pick_deal(history, deal_id)
        t = history.data_cut if as_of is None else pd.Timestamp(as_of)
        self._check_open(history, deal, t)
        snaps = pd.DataFrame({"deal_id": [deal], "as_of": [t]})
        block = self._score_block(history, snaps, explain=explain, actions=actions,
                                  context=self.feature_context(history))
        return block.results()[0]

    def score_many(
        self, history: DealHistory, as_of: pd.Timestamp | str | None = None, *, explain: bool = False,
        progress: bool = False, actions: bool | None = None, deal_ids: Sequence[str] | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> list[ScoreResult]:
        """Score every deal open at ``as_of`` (default: the data cut), in vectorised blocks.

        ``actions`` defaults to ``explain``: reasons and actions are what cost time.
        ``deal_ids`` restricts scoring to some of the open deals (e.g. explaining
        only the top of the at-risk list).
        """
        return [r for b in self.score_blocks(history, as_of, explain=explain, progress=progress, actions=actions,
                                             deal_ids=deal_ids, chunk_size=chunk_size) for r in b.results()]

    def score_frame(
        self, history: DealHistory, as_of: pd.Timestamp | str | None = None, *, explain: bool = False,
        progress: bool = False, actions: bool | None = None, deal_ids: Sequence[str] | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> pd.DataFrame:
        """Like :meth:`score_many` but as one flat DataFrame (what ``dealscore score --out`` writes)."""
        frames = [b.frame() for b in self.score_blocks(history, as_of, explain=explain, progress=progress,
                                                       actions=actions, deal_ids=deal_ids, chunk_size=chunk_size)]
        if not frames:
            return _empty_frame(self._taxonomy.names)
        return pd.concat(frames, ignore_index=True)

    def score_snapshots(
        self, history: DealHistory, snapshots: pd.DataFrame, *, explain: bool = False, actions: bool | None = None,
    ) -> list[ScoreResult]:
        """Score given (deal_id, as_of) rows, e.g. weekly snapshots for a backtest of warnings or scores.

        Every snapshot's deal must be open at its ``as_of``; what-ifs of two
        snapshots of one deal never see each other.
        """
        missing = [c for c in ("deal_id", "as_of") if c not in snapshots.columns]
        if missing:
            raise DataValidationError(f"snapshots lack column(s) {missing}", table="snapshots", column=missing[0],
                                      fix="pass a frame with deal_id and as_of columns")
        snaps = snapshots[["deal_id", "as_of"]].reset_index(drop=True)
        block = self._score_block(history, snaps, explain=explain, actions=explain if actions is None else actions,
                                  context=self.feature_context(history))
        return block.results()

    def score_blocks(
        self, history: DealHistory, as_of: pd.Timestamp | str | None = None, *, explain: bool = False,
        progress: bool = False, actions: bool | None = None, deal_ids: Sequence[str] | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> Iterator[ScoredBlock]:
        """The open deals' scores, block by block (a progress bar counts deals when asked)."""
        t = None if as_of is None else pd.Timestamp(as_of)
        snaps = _features_api().scoring_snapshots(history, t)
        if deal_ids is not None:
            wanted = pd.Index([str(d) for d in deal_ids])
            unknown = wanted.difference(pd.Index(snaps["deal_id"].astype(object)))
            if len(unknown):
                raise NotFoundError(
                    f"{len(unknown)} deal(s) are not open at the scoring time: {list(unknown[:5])}",
                    ids=list(unknown[:5]),
                )
            snaps = snaps[snaps["deal_id"].isin(wanted)]
        do_actions = explain if actions is None else actions
        context = self.feature_context(history)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(snaps), unit="deal", desc="scoring")
        try:
            for start in range(0, len(snaps), max(1, chunk_size)):
                part = snaps.iloc[start : start + chunk_size].reset_index(drop=True)
                block = self._score_block(history, part, explain=explain, actions=do_actions, context=context)
                if bar is not None:
                    bar.update(len(part))
                yield block
        finally:
            if bar is not None:
                bar.close()

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _pick_deal(history: DealHistory, deal_id: str | None) -> str:
        ids = history.deals["deal_id"]
        if deal_id is None:
            if len(ids) != 1:
                raise DataValidationError(
                    f"the history holds {len(ids)} deals; say which one to score", table="deals", column="deal_id",
                    ids=list(ids[:5]), fix="pass deal_id=... (or send a history holding exactly one deal)",
                )
            return str(ids.iloc[0])
        if not (ids == deal_id).any():
            raise NotFoundError(f"deal {deal_id!r} is not in the history", deal_id=deal_id)
        return str(deal_id)

    @staticmethod
    def _check_open(history: DealHistory, deal_id: str, t: pd.Timestamp) -> None:
        row = history.deals.loc[history.deals["deal_id"] == deal_id].iloc[0]
        if row["created_at"] > t:
            raise DataValidationError(
                f"deal {deal_id} was created at {row['created_at']}, after the scoring time {t}",
                table="deals", column="created_at", ids=[deal_id], fix="score it at or after its creation time",
            )
        closed = row.get("closed_at")
        if closed is not None and not pd.isna(closed) and closed <= t:
            raise DataValidationError(
                f"deal {deal_id} closed ({row.get('outcome') or 'outcome unknown'}) at {closed}; only open deals "
                "are scored", table="deals", column="closed_at", ids=[deal_id],
                fix=f"score it at a time before {closed} to see what dealscore said while it was open",
            )

    # ------------------------------------------------------------------ the core

    def feature_context(self, history: DealHistory) -> Any:
        """The cross-deal aggregates (owner/account win rates, stage norms) features are built with.

        ``context="auto"`` learns them from the history being scored when it holds
        closed deals (a CRM export: the freshest figures, as in training), and
        otherwise uses the context stored in the bundle (the API sends one open
        deal, which teaches nothing about owners or accounts). ``"history"`` and
        ``"bundle"`` force one or the other. Fitted once per call, then shared by
        every feature build of that call (base scores and all action what-ifs).
        """
        stored = getattr(self.bundle, "context", None)
        has_closed = "closed_at" in history.deals and bool(history.deals["closed_at"].notna().any())
        if self.context == "bundle" or (self.context == "auto" and not has_closed and stored is not None):
            if stored is None:
                raise ModelNotReadyError(
                    f"model bundle {self.version} holds no feature context; retrain it or score with "
                    "Scorer(bundle, context='history')"
                )
            return stored
        ctx_type = type(stored) if stored is not None else _features_api().FeatureContext
        params = {k: getattr(stored, k) for k in ("owner_shrinkage", "account_shrinkage") if hasattr(stored, k)}
        return ctx_type(**params).fit(history, spec=self.bundle.spec)

    def _build(self, history: DealHistory, snaps: pd.DataFrame, context: Any) -> pd.DataFrame:
        f = _features_api()
        return f.build_features(history, snaps, spec=self.bundle.spec, taxonomy=self._taxonomy, context=context)

    def _score_block(self, history: DealHistory, snaps: pd.DataFrame, *, explain: bool, actions: bool,
                     context: Any) -> ScoredBlock:
        # A deal's features read only its own rows and the context, so the block's
        # deals are all the feature builds need (much less to read than the history).
        ids = pd.unique(snaps["deal_id"].to_numpy(dtype=object))
        own = history.for_deals(ids).replace(cut_at=history.data_cut) if len(ids) < len(history.deals) else history
        X = self._build(own, snaps, context)
        win = self.bundle.win_model
        raw = win.predict_raw(X)
        p = np.asarray(win.calibrate(raw), dtype=float)
        stage_proba = np.asarray(self.bundle.stage_model.predict_proba(X), dtype=float)
        cols = Columns(X)
        mm = judge(cols, stage_proba, self._taxonomy)
        warnings = detect_warnings(cols, self._norms, self._taxonomy, inferred_stage=mm.inferred_stage,
                                   mismatch_verdict=mm.verdict, mismatch_text=mm.explanation,
                                   rules=self.warning_rules)
        declared = cols.text("declared_stage")
        typical = np.array([self._typical.get(s) if s is not None else None for s in declared], dtype=float)
        amount = cols.num("amount")
        meta = _deal_meta(history, X["deal_id"].to_numpy(dtype=object))
        var = _value_at_risk(amount, p, typical, warnings)
        block = ScoredBlock(
            deal_id=X["deal_id"].to_numpy(dtype=object), as_of=X["as_of"].to_numpy(), account_id=meta["account_id"],
            owner_id=meta["owner_id"], team=meta["team"], amount=amount, p_win=p,
            grade=grades(p, self._cutoffs), declared_stage=declared, inferred_stage=mm.inferred_stage,
            inferred_probability=mm.inferred_probability, stage_proba=stage_proba,
            stage_names=list(self._taxonomy.names), verdict=mm.verdict, explanation=mm.explanation,
            typical=typical, value_at_risk=var, warnings=warnings, model_version=self.version,
        )
        if explain:
            self._explain(block, X, cols, p)
        if actions:
            block.actions = self._actions(own, X, cols, p, mm.inferred_stage, context)
        return block

    def _explain(self, block: ScoredBlock, X: pd.DataFrame, cols: Columns, p: np.ndarray) -> None:
        win = self.bundle.win_model
        contrib = win.contributions(X)
        points, base = probability_points(contrib, p, win.calibrate)
        gp = self._grouping.group_points(points)
        ups, downs, other = [], [], np.empty(len(p))
        for i in range(len(p)):
            u, d, o = pick_reasons(self._grouping, gp, cols, i, max_reasons=self.max_reasons,
                                   min_points=self.min_reason_points)
            ups.append(u)
            downs.append(d)
            other[i] = o
        block.base_points, block.reasons_up, block.reasons_down, block.other_points = base, ups, downs, other

    def _actions(self, history: DealHistory, X: pd.DataFrame, cols: Columns, p: np.ndarray,
                 inferred: Sequence[str], context: Any) -> list[list[NextAction]]:
        """Top actions per row: re-score each row's deal with each candidate touchpoint added at its as_of.

        Rounds (see :mod:`dealscore.scoring.actions`): round r holds each row's r-th
        candidate; a deal with several snapshots in the block gets one round per
        snapshot so that a what-if never leaks into another snapshot of the same deal.
        """
        deal_ids = X["deal_id"].to_numpy(dtype=object)
        as_of = pd.DatetimeIndex(X["as_of"])
        cands = [self._candidates.get(s, []) for s in inferred]
        seen: dict[str, int] = {}
        occurrence = np.empty(len(deal_ids), dtype=np.int64)
        for i, d in enumerate(deal_ids):
            occurrence[i] = seen.get(d, 0)
            seen[d] = occurrence[i] + 1
        rounds: dict[tuple[int, int], list[int]] = {}
        for i, cs in enumerate(cands):
            for r in range(len(cs)):
                rounds.setdefault((int(occurrence[i]), r), []).append(i)
        before = {c: cols.num(c) for c in CHANGE_FEATURES}
        scored: list[list[tuple[float, Action, dict[str, float]]]] = [[] for _ in range(len(deal_ids))]
        for (_, r), rows in sorted(rounds.items()):
            items = [(deal_ids[i], cands[i][r], as_of[i]) for i in rows]
            what_if = add_touchpoints(history, items)
            snaps = pd.DataFrame({"deal_id": deal_ids[rows], "as_of": as_of[rows]})
            Xr = self._build(what_if, snaps, context)
            pr = np.asarray(self.bundle.win_model.predict_proba(Xr), dtype=float)
            after = Columns(Xr)
            after_vals = {c: after.num(c) for c in CHANGE_FEATURES}
            for k, i in enumerate(rows):
                change = 100.0 * (pr[k] - p[i])
                scored[i].append((change, cands[i][r], {c: after_vals[c][k] for c in CHANGE_FEATURES}))
        out: list[list[NextAction]] = []
        for i, options in enumerate(scored):
            options.sort(key=lambda o: -o[0])
            chosen = [o for o in options if o[0] >= self.min_action_change][: self.n_actions]
            row_before = {c: before[c][i] for c in CHANGE_FEATURES}
            out.append([
                NextAction(code=a.code, text=a.text, stage=a.stage, expected_change=float(change),
                           reason=action_reason(float(change), describe_change(row_before, after_vals)))
                for change, a, after_vals in chosen
            ])
        return out


# --------------------------------------------------------------------------- helpers


def _empty_frame(stage_names: Sequence[str]) -> pd.DataFrame:
    """The batch frame's columns with no rows (no open deal at the scoring time)."""
    from dealscore.scoring.batch import FRAME_COLUMNS

    return pd.DataFrame(columns=[*FRAME_COLUMNS, *(f"p_stage_{s}" for s in stage_names)])


def _spec_info(spec: Any) -> dict[str, tuple[str, str, str | None]]:
    """feature → (group, meaning, unit) from a FeatureSpec, for wording features scoring does not know."""
    out: dict[str, tuple[str, str, str | None]] = {}
    for info in getattr(spec, "columns", None) or []:
        out[str(info.name)] = (str(getattr(info, "group", "other")), str(getattr(info, "meaning", info.name)),
                               getattr(info, "unit", None))
    return out


def _deal_meta(history: DealHistory, deal_ids: np.ndarray) -> dict[str, np.ndarray]:
    """account, owner and team of each deal (current values: they identify, they are not features)."""
    deals = history.deals
    idx = pd.Index(deals["deal_id"]).get_indexer(deal_ids)
    out: dict[str, np.ndarray] = {}
    for col in ("account_id", "owner_id", "team"):
        if col in deals:
            vals = deals[col].to_numpy(dtype=object, na_value=None)[idx]
            vals[idx < 0] = None
        else:
            vals = np.full(len(deal_ids), None, dtype=object)
        out[col] = vals
    return out


def _value_at_risk(amount: np.ndarray, p: np.ndarray, typical: np.ndarray, warnings: list[list[Any]]) -> np.ndarray:
    """Vectorised :func:`dealscore.scoring.at_risk.value_at_risk` without a previous score."""
    gap = np.clip(np.nan_to_num(typical, nan=0.0) - p, 0.0, None)
    w = np.array([min(1.0, sum(WARNING_WEIGHTS.get(x.severity, 0.0) for x in ws)) for ws in warnings])
    return np.nan_to_num(amount, nan=0.0) * gap * (1.0 + w)
