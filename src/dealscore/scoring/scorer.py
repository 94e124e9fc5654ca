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

from dealscore._compat import NORMAL, predict_matrix
from dealscore.data import rules
from dealscore.data.history import DealHistory
from dealscore.errors import ConfigError, DataValidationError, ModelNotReadyError, NotFoundError
from dealscore.features import FeatureContext, Touchpoint, WhatIf, scoring_snapshots
from dealscore.forecast.features import close_time_matrix
from dealscore.models.bundle import ModelBundle
from dealscore.models.episodes import EpisodeModel, episode_weights, touch_days_of
from dealscore.playbook import chase_bucket, silence_bucket
from dealscore.scoring.actions import (
    SMALL_ITEMS,
    Action,
    action_reason,
    candidate_actions,
    column_values,
    contact_ids,
    contacts_of_rows,
    describe_change,
    state_text,
)
from dealscore.scoring.at_risk import value_at_risk_array
from dealscore.scoring.batch import FRAME_COLUMNS, LABEL_COLUMNS, ScoredBlock
from dealscore.scoring.columns import Columns
from dealscore.scoring.grading import DEFAULT_GRADE_CUTOFFS, check_cutoffs, grades
from dealscore.scoring.mismatch import judge
from dealscore.scoring.norms import StageNorms
from dealscore.scoring.predict import SINGLE_THREAD_ROWS, ModelRunner
from dealscore.scoring.predictor import FramePredictor, Inputs, Predictor, choose_predictor
from dealscore.scoring.reasons import MAX_REASONS, MIN_REASON_POINTS, ReasonGrouping, pick_reasons, probability_points
from dealscore.scoring.response import ResponseRates, action_interval, shrink
from dealscore.scoring.result import NextAction, ScoreResult
from dealscore.scoring.stage_values import StageValues
from dealscore.scoring.track_record import WarningThresholds
from dealscore.scoring.warnings import WarningRules, find_warnings
from dealscore.times import DAY_NS, naive_utc

#: Feature columns compared before/after an action to word why it helps.
CHANGE_FEATURES = (
    "decision_maker_engaged", "champion_engaged", "n_contacts", "has_meeting", "has_demo", "has_proposal",
    "has_contract", "pricing_discussed", "days_since_last_inbound", "n_outbound_unanswered", "days_since_last_touch",
)
#: What an attempt the customer leaves unanswered changes, in points: nothing. The rep's touch alone leaves the
#: customer's state as it was; what it reveals (the customer did not answer) was already so before the rep asked.
#: The win model's re-score of such a touch does fall, because unanswered outreach comes with deals already in
#: trouble: a symptom, not an effect (valuing it so ranked worse against the simulator's intervention oracle on
#: every preset, docs/scoring.md).
UNANSWERED_CHANGE = 0.0
#: Snapshots per block in batch scoring: bounds memory and paces the progress bar.
DEFAULT_CHUNK = 20_000


class Scorer:
    """Scores open deals with a trained :class:`~dealscore.models.bundle.ModelBundle`.

    Parameters are stored as given (scikit-learn style); everything derived from
    the bundle (norms, reason groups, playbook candidates) is prepared once here
    because a scorer lives as long as the service process and scores one deal at
    a time.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        *,
        grade_cutoffs: Mapping[str, float] | None = None,
        warning_rules: WarningRules | None = None,
        max_reasons: int = MAX_REASONS,
        min_reason_points: float = MIN_REASON_POINTS,
        n_actions: int = 3,
        min_action_change: float = 0.05,
        context: str = "auto",
        fast_path: bool = True,
        predict_threads: int | None = None,
    ) -> None:
        self.bundle = bundle
        self.grade_cutoffs = grade_cutoffs
        self.warning_rules = warning_rules
        self.max_reasons = max_reasons
        self.min_reason_points = min_reason_points
        self.n_actions = n_actions
        self.min_action_change = min_action_change
        self.context = context
        self.fast_path = fast_path
        self.predict_threads = predict_threads
        if context not in ("auto", "history", "bundle"):
            raise ConfigError(f"Scorer context must be 'auto', 'history' or 'bundle'; got {context!r}")
        self._cutoffs = check_cutoffs(grade_cutoffs) if grade_cutoffs is not None else dict(DEFAULT_GRADE_CUTOFFS)
        self._norms = StageNorms.from_stage_stats(bundle.stage_stats)
        self._thresholds = WarningThresholds.from_stage_stats(bundle.stage_stats)
        self._episodes = EpisodeModel.from_dict(bundle.stage_stats.get("_episodes"))
        self._feature_names = list(bundle.win_model.feature_names_)
        self._grouping = ReasonGrouping.build(
            self._feature_names, _spec_info(bundle.spec),
            activity_types=getattr(bundle.spec, "activity_types", None), stages=getattr(bundle.spec, "stages", None),
        )
        self._taxonomy = bundle.taxonomy
        self._candidates: dict[str, list[Action]] = {
            s: candidate_actions(bundle.playbook or {}, s) for s in self._taxonomy.names
        }
        self._typical = {s: self._norms.win_rate(s) for s in self._taxonomy.names}
        self._responses = ResponseRates.from_stage_stats(bundle.stage_stats)
        self._values = StageValues.from_stage_stats(bundle.stage_stats, self._taxonomy.names)
        self._done_features = sorted({f for acts in self._candidates.values() for a in acts for f in a.done_when})
        unknown = [f for f in self._done_features if f not in self._feature_names]
        if unknown:
            raise ConfigError(f"the playbook's done_when names {unknown}, which are not features of model "
                              f"{bundle.version}; use 0/1 features such as has_proposal or decision_maker_engaged")
        self._runner = ModelRunner(bundle.win_model, bundle.stage_model, threads=predict_threads)
        # chosen on the first non-empty block (the matrix path is checked there), or the reference when asked
        self._predictor: Predictor | None = (None if fast_path
                                             else FramePredictor(bundle.win_model, bundle.stage_model))
        self._learned_touch_gaps = any(self._norms.gap_days(st).learned for st in self._taxonomy.names)

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
        t = history.data_cut if as_of is None else _as_time(as_of)
        self._check_open(history, deal, t)
        # the one snapshot as arrays: a one-row frame costs more than the deal's stage features
        block = self._score_block(history, np.array([deal], dtype=object),
                                  np.array([t.as_unit("ns").asm8], dtype="datetime64[ns]"), explain=explain,
                                  actions=actions, context=self.feature_context(history))
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
        chunk_size: int = DEFAULT_CHUNK, context: Any = None,
    ) -> pd.DataFrame:
        """Like :meth:`score_many` but as one flat DataFrame (what ``dealscore score --out`` writes).

        ``context``: the cross-deal aggregates when already known (a cluster fits them
        over every partition of a history, see :mod:`dealscore.scale`); by default
        :meth:`feature_context` decides.
        """
        frames = [b.frame() for b in self.score_blocks(history, as_of, explain=explain, progress=progress,
                                                       actions=actions, deal_ids=deal_ids, chunk_size=chunk_size,
                                                       context=context)]
        if not frames:
            return _empty_frame(self._taxonomy.names)
        return pd.concat(frames, ignore_index=True)

    def score_snapshots(
        self, history: DealHistory, snapshots: pd.DataFrame, *, explain: bool = False, actions: bool | None = None,
        as_frame: bool = False, context: Any = None,
    ) -> Any:
        """Score given (deal_id, as_of) rows, e.g. weekly snapshots for a backtest of warnings or scores.

        Every snapshot's deal must be open at its ``as_of``; what-ifs of two
        snapshots of one deal never see each other. Returns results, or with
        ``as_frame=True`` the flat table of :meth:`score_frame`.
        """
        missing = [c for c in ("deal_id", "as_of") if c not in snapshots.columns]
        if missing:
            raise DataValidationError(f"snapshots lack column(s) {missing}", table="snapshots", column=missing[0],
                                      fix="pass a frame with deal_id and as_of columns")
        snaps = snapshots[["deal_id", "as_of"]].reset_index(drop=True)
        if not len(snaps):
            return _empty_frame(self._taxonomy.names) if as_frame else []
        block = self._score_block(history, *_snapshot_columns(snaps), explain=explain,
                                  actions=explain if actions is None else actions,
                                  context=self.feature_context(history) if context is None else context)
        return block.frame() if as_frame else block.results()

    def score_blocks(
        self, history: DealHistory, as_of: pd.Timestamp | str | None = None, *, explain: bool = False,
        progress: bool = False, actions: bool | None = None, deal_ids: Sequence[str] | None = None,
        chunk_size: int = DEFAULT_CHUNK, context: Any = None,
    ) -> Iterator[ScoredBlock]:
        """The open deals' scores, block by block (a progress bar counts deals when asked)."""
        t = None if as_of is None else _as_time(as_of)
        snaps = scoring_snapshots(history, t)
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
        if context is None:
            context = self.feature_context(history)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(snaps), unit="deal", desc="scoring")
        try:
            for start in range(0, len(snaps), max(1, chunk_size)):
                part = snaps.iloc[start : start + chunk_size].reset_index(drop=True)
                block = self._score_block(history, *_snapshot_columns(part), explain=explain, actions=do_actions,
                                          context=context)
                if bar is not None:
                    bar.update(len(part))
                yield block
        finally:
            if bar is not None:
                bar.close()

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _pick_deal(history: DealHistory, deal_id: str | None) -> str:
        ids = _column(history.deals, "deal_id")
        if deal_id is None:
            if len(ids) != 1:
                raise DataValidationError(
                    f"the history holds {len(ids)} deals; say which one to score", table="deals", column="deal_id",
                    ids=[str(i) for i in ids[:5]], fix="pass deal_id=... (or send a history holding exactly one deal)",
                )
            return str(ids[0])
        if not (ids == deal_id).any():
            raise NotFoundError(f"deal {deal_id!r} is not in the history", deal_id=deal_id)
        return str(deal_id)

    @staticmethod
    def _check_open(history: DealHistory, deal_id: str, t: pd.Timestamp) -> None:
        deals = history.deals
        i = int(np.flatnonzero(_column(deals, "deal_id") == deal_id)[0])
        created = pd.Timestamp(_column(deals, "created_at")[i])
        if created > t:
            raise DataValidationError(
                f"deal {deal_id} was created at {created}, after the scoring time {t}",
                table="deals", column="created_at", ids=[deal_id], fix="score it at or after its creation time",
            )
        closed = pd.Timestamp(_column(deals, "closed_at")[i]) if "closed_at" in deals.columns else pd.NaT
        if not pd.isna(closed) and rules.closed_by(closed, t):
            outcome = deals["outcome"].to_numpy(dtype=object)[i] if "outcome" in deals else None
            raise DataValidationError(
                f"deal {deal_id} closed ({outcome or 'outcome unknown'}) at {closed}; {rules.ONLY_OPEN}",
                table="deals", column="closed_at", ids=[deal_id],
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
        has_closed = "closed_at" in history.deals.columns and not np.isnat(
            _column(history.deals, "closed_at").astype("datetime64[ns]")).all()
        if not self.learns_context(has_closed):
            return self.bundle_context()
        return self.unfitted_context().fit(history, spec=self.bundle.spec)

    def learns_context(self, has_closed: bool) -> bool:
        """Whether the aggregates come from the history scored (one holding closed deals ``has_closed``)
        rather than from the bundle: the rule of :meth:`feature_context`, also asked by a cluster."""
        stored = getattr(self.bundle, "context", None)
        return not (self.context == "bundle" or (self.context == "auto" and not has_closed and stored is not None))

    def bundle_context(self) -> FeatureContext:
        """The context stored in the bundle (refused when the bundle has none)."""
        stored = getattr(self.bundle, "context", None)
        if stored is None:
            raise ModelNotReadyError(
                f"model bundle {self.version} holds no feature context; retrain it or score with "
                "Scorer(bundle, context='history')"
            )
        return stored

    def unfitted_context(self) -> FeatureContext:
        """A new context with the bundle context's parameters, to be fitted on the history scored."""
        stored = getattr(self.bundle, "context", None)
        ctx_type = type(stored) if stored is not None else FeatureContext
        params = {k: getattr(stored, k) for k in ("owner_shrinkage", "account_shrinkage") if hasattr(stored, k)}
        return ctx_type(**params)

    def _prepare(self, block: Any) -> tuple[Predictor, Inputs]:
        """The scorer's predictor (chosen on its first non-empty block) and ``block``'s inputs for it."""
        if self._predictor is not None:
            return self._predictor, self._predictor.prepare(block)
        if not len(block):  # nothing to check the matrix path on yet: the reference takes an empty block
            reference = FramePredictor(self.bundle.win_model, self.bundle.stage_model)
            return reference, reference.prepare(block)
        self._predictor, inp = choose_predictor(self._runner, self._feature_names, block, self._taxonomy.names)
        return self._predictor, inp

    def _touchpoints(self, own: DealHistory, what_if: Any, items: Sequence[tuple[str, Action, pd.Timestamp]],
                     item_row: Sequence[int], as_of: np.ndarray) -> list[tuple[int, Any]]:
        """Each candidate action as the touchpoint a what-if adds (contacts as :func:`apply_action` picks them).

        A few items (one deal scored now) look their contacts up in the touchpoints
        the feature pass already read; many take one join over the history.
        """
        touch = Touchpoint
        if len(items) <= SMALL_ITEMS and as_of.dtype.kind == "M":
            known_at = as_of.astype("datetime64[ns]", copy=False).view(np.int64)[np.asarray(item_row, dtype=np.int64)]
            contacts = contacts_of_rows(what_if.acts, what_if.deals.index.lookup, what_if.plan.roles.lookup, items,
                                        known_at)
        else:
            contacts = contact_ids(own, items)
        return [(i, touch(type=a.type, direction=a.direction, contact_id=c, contact_role=a.contact_role))
                for i, (_, a, _), c in zip(item_row, items, contacts, strict=True)]

    def _score_block(self, history: DealHistory, deal_ids: np.ndarray, when: Any, *, explain: bool, actions: bool,
                     context: Any) -> ScoredBlock:
        """Scores of the snapshots ``(deal_ids[i], when[i])`` (columns as arrays, see :func:`_snapshot_columns`)."""
        # A deal's features read only its own rows and the context, so the block's
        # deals are all the feature builds need (much less to read than the history).
        n = len(deal_ids)
        deals_col = _column(history.deals, "deal_id")
        if len(deals_col) == 1 and n and (deal_ids == deals_col[0]).all():
            own = history  # the API's one-deal payload: nothing to narrow down
        else:
            ids = pd.unique(deal_ids)
            own = (history.for_deals(ids).replace(cut_at=history.data_cut) if len(ids) < len(deals_col)
                   else history)
        as_of, stamps = _snapshot_times(when)
        # The history is read once: the snapshots' features first (they give the inferred stage), then the
        # what-ifs of the actions valid for that stage only, as virtual deals (what-if rows cost about as
        # much as real ones, so building every stage's actions up front would cost more than a second pass).
        what_if = WhatIf(own, (deal_ids, when), spec=self.bundle.spec, taxonomy=self._taxonomy,
                                         context=context)
        predictor, inp = self._prepare(what_if.snapshots())
        stage_proba = predictor.stage_proba(inp, self._taxonomy.names)
        cols = predictor.columns(inp)
        mm = judge(cols, stage_proba, self._taxonomy)
        items: list[tuple[str, Action, pd.Timestamp]] = []
        item_row: list[int] = []
        pairs: list[tuple[int, Action, int]] = []  # (row, action, its response what-if)
        if actions and n:
            times = stamps if stamps is not None else [pd.Timestamp(t) for t in as_of]
            done = {f: cols.num(f) for f in self._done_features}
            for i, s in enumerate(mm.inferred_stage):
                # one what-if per distinct touchpoint of the row: actions adding the same touchpoint share it
                copies: dict[tuple[Any, ...], int] = {}
                for a in self._candidates.get(s, []):
                    if not a.repeat and any(done[f][i] >= 1 for f in a.done_when):
                        if a.follow_up is None:
                            continue
                        a = a.follow_up
                    key = a.touch_key()
                    if key not in copies:
                        copies[key] = len(items)
                        items.append((deal_ids[i], a, times[i]))
                        item_row.append(i)
                    pairs.append((i, a, copies[key]))
        vinp = (predictor.prepare(what_if.with_touchpoints(self._touchpoints(own, what_if, items, item_row, as_of)),
                                  copies_of=(inp.codes, item_row))
                if items else None)
        # one win-model call for the scores and, when they price a response, the what-ifs (with the company's state
        # values the response is priced by the state it moves the deal to, so the what-ifs' win scores go unused);
        # contributions only for the scored rows
        rescore = vinp is not None and self._values is None
        raw_all = predictor.win_raw([inp, vinp] if rescore else [inp])
        contrib = predictor.contributions(inp) if explain else None
        # one calibrator call for the scores, the what-ifs and (when explaining) the base of the reasons
        to_cal = raw_all if contrib is None else np.concatenate([raw_all, contrib[:, -1]])
        calibrated = np.asarray(self.bundle.win_model.calibrate(to_cal), dtype=float)
        p_all, base_p = calibrated[: len(raw_all)], calibrated[len(raw_all):]
        p = p_all[:n]
        # touchpoint rules need a CRM that records touchpoints: this history, or the one the bundle learned from
        touchpoints = len(history.activities) > 0 or self._learned_touch_gaps
        acts = what_if.acts  # the touchpoints as the features read them
        episodes = (self._episodes.probabilities(touch_days_of(acts.deal, acts.direction, acts.occurred, acts.seen,
                                                               what_if.q_deal, what_if.q_time))
                    if self._episodes is not None and touchpoints else None)
        warns = find_warnings(cols, self._norms, self._taxonomy, inferred_stage=mm.inferred_stage,
                              mismatch_verdict=mm.verdict, mismatch_text=mm.explanation, rules=self.warning_rules,
                              touchpoints=touchpoints, thresholds=self._thresholds, episodes=episodes)
        declared = cols.text("declared_stage")
        typical = np.array([self._typical.get(s) if s is not None else None for s in declared], dtype=float)
        amount = cols.num("amount")
        meta = _deal_meta(own, deal_ids)
        block = ScoredBlock(
            deal_id=deal_ids, as_of=as_of, account_id=meta["account_id"],
            owner_id=meta["owner_id"], team=meta["team"], amount=amount, p_win=p,
            grade=grades(p, self._cutoffs), declared_stage=declared, inferred_stage=mm.inferred_stage,
            inferred_probability=mm.inferred_probability, stage_proba=stage_proba,
            stage_names=list(self._taxonomy.names), verdict=mm.verdict, explanation=mm.explanation,
            typical=typical, value_at_risk=value_at_risk_array(amount, p, typical), warnings=warns,
            model_version=self.version,
            labels=_deal_labels(own, deal_ids, _close_dates(as_of, cols.num("days_to_expected_close")),
                                as_of >= np.datetime64(own.data_cut)),
            close_pmf=self._close_pmf(cols, as_of),
        )
        if contrib is not None:
            self._explain(block, contrib, base_p, cols, p)
        if actions:
            if vinp is None:
                block.actions = [[] for _ in range(n)]
            else:
                after = predictor.columns(vinp)
                # the real stage after each response what-if, for valuing a response by the state it moves the deal to
                stage_after = (predictor.stage_proba(vinp, self._taxonomy.names)
                               if self._values is not None and len(pairs) else None)
                block.actions = self._rank_actions(cols, p, after, p_all[n:] if rescore else None, pairs, declared,
                                                   (stage_proba, stage_after), episode_weights(episodes, n))
        return block

    def _close_pmf(self, cols: Columns, as_of: np.ndarray) -> np.ndarray | None:
        """When each deal closes if won, from the bundle's time-to-close model (None for bundles without one).

        The booster is called on the model's input matrix directly (as the win and stage
        boosters are), which keeps its cost on the one-deal path to microseconds.
        """
        model = getattr(self.bundle, "time_to_close", None)
        if model is None:
            return None
        times = np.asarray(as_of, dtype="datetime64[ns]")
        X = close_time_matrix(cols, times, len(times))
        flat = predict_matrix(model.booster_, X, kind=NORMAL, iteration=model.best_iteration_,
                              threads=1 if len(X) < SINGLE_THREAD_ROWS else 0, models=model.n_classes_)
        return model.normalise(flat.reshape(len(X), model.n_classes_))

    def _explain(self, block: ScoredBlock, contrib: np.ndarray, base_p: np.ndarray, cols: Columns, p: np.ndarray
                 ) -> None:
        points, base = probability_points(contrib, p, self.bundle.win_model.calibrate, base_p)
        gp = self._grouping.group_points(points)
        ups, downs, other = [], [], np.empty(len(p))
        for i in range(len(p)):
            u, d, o = pick_reasons(self._grouping, gp, cols, i, max_reasons=self.max_reasons,
                                   min_points=self.min_reason_points)
            ups.append(u)
            downs.append(d)
            other[i] = o
        block.base_points, block.reasons_up, block.reasons_down, block.other_points = base, ups, downs, other

    def _rank_actions(self, before: Columns, p: np.ndarray, after: Columns, p_after: np.ndarray | None,
                      pairs: Sequence[tuple[int, Action, int]], declared: Sequence[str | None],
                      stages: tuple[np.ndarray, np.ndarray | None], episodes: np.ndarray) -> list[list[NextAction]]:
        """Top actions per row by expected change (probability points), each with its own reason.

        The change if the customer responds is the move the response makes to the deal's
        state (its real stage and episode, valued by :class:`StageValues` from the company's
        history among deals with the same silence and unanswered chase so far; ``stages`` holds the
        real-stage probabilities before and after each response what-if, ``episodes`` each row's
        episode probabilities now); a bundle without that
        table falls back to the win model's re-score of the what-if. The response is weighed by how
        often such attempts were taken up in deals like this, in the same episode
        (:class:`~dealscore.scoring.response.ResponseRates`), and shrunk toward 0 when few past
        deals back that rate. An attempt left unanswered changes nothing (:data:`UNANSWERED_CHANGE`).
        Two actions whose responses give the same change (e.g. a call and an e-mail the features do
        not tell apart) have the same effect: only the first by expected change (then playbook order)
        is kept.
        """
        if not pairs:
            return [[] for _ in range(len(p))]
        b = {c: before.num(c) for c in CHANGE_FEATURES}
        a_ = {c: after.num(c) for c in CHANGE_FEATURES}
        rows_, js_ = (np.array([x[k] for x in pairs], dtype=np.int64) for k in (0, 2))
        # the win probability if the customer responds, per pair
        won: tuple[np.ndarray, np.ndarray] | None = None  # per pair: the state values now and after, when used
        if p_after is not None:  # a bundle without state values: the what-if's re-score
            p_responds = np.asarray(p_after)[js_]
        else:
            # the scorer re-scores the what-ifs unless state values price them, and then gives the stages after
            assert self._values is not None and stages[1] is not None
            # the odds of the state the response moves the deal to over the state it is in now
            # the response moves the real stage and the episode; silence and chase stay as they were: they tell
            # how this customer has behaved so far, which one answer does not undo (docs/scoring.md)
            replied = self._episodes.after_reply(episodes[rows_]) if self._episodes is not None else episodes[rows_]
            silence = silence_bucket(b["days_since_last_inbound"])[rows_]
            chase = chase_bucket(before.num("n_outbound_unanswered"))[rows_]
            v_now = self._values.value(stages[0][rows_], episodes[rows_], silence, chase)
            v_after = self._values.value(stages[1][js_], replied, silence, chase)
            p_responds = self._values.moved(p[rows_], v_now, v_after)
            won = (v_now, v_after)
        engaged = {"decision_maker": b["decision_maker_engaged"], "champion": b["champion_engaged"]}
        d_f = UNANSWERED_CHANGE
        by_row: dict[int, list[tuple[float, int, Action, int, Any]]] = {}
        for k, (i, a, js) in enumerate(pairs):
            d_s = 100.0 * (p_responds[k] - p[i])
            role = a.contact_role
            new = a.new_contact or (role in engaged and not engaged[role][i] >= 1)
            r = self._responses.rate(declared[i], episodes[i], role, new)
            f = shrink(r.deals)
            expected = f * (r.p * d_s + (1.0 - r.p) * d_f)
            by_row.setdefault(i, []).append((expected, k, a, js, (r, f, d_s)))
        out: list[list[NextAction]] = [[] for _ in range(len(p))]
        for i, cands in by_row.items():
            cands.sort(key=lambda c: (-c[0], c[1]))
            seen: set[float] = set()
            row_before = {c: b[c][i] for c in CHANGE_FEATURES}
            for expected, k, a, js, (r, f, d_s) in cands:
                if len(out[i]) >= self.n_actions or expected < self.min_action_change:
                    break
                effect = round(d_s, 6)
                if effect in seen:  # the same change as an action already chosen: the same effect, said once
                    continue
                seen.add(effect)
                low, high = action_interval(r, f, d_s, d_f)
                facts = describe_change(row_before, {c: a_[c][js] for c in CHANGE_FEATURES})
                priced = (state_text(float(won[0][k]), float(won[1][k]), float(p[i]), float(p_responds[k]))
                          if won is not None else None)
                out[i].append(NextAction(
                    code=a.code, text=a.text, stage=a.stage, expected_change=float(expected),
                    reason=action_reason(expected, d_s, d_f, r.p, a.response_text, (low, high), r.deals, facts,
                                         priced),
                    p_respond=r.p, change_if_responds=float(d_s), change_if_unanswered=float(d_f),
                    interval_low=low, interval_high=high, similar_deals=r.deals, response_text=a.response_text))
        return out


# --------------------------------------------------------------------------- helpers


def _empty_frame(stage_names: Sequence[str]) -> pd.DataFrame:
    """The batch frame's columns with no rows (no open deal at the scoring time)."""
    return pd.DataFrame(columns=[*FRAME_COLUMNS, *(f"p_stage_{s}" for s in stage_names)])


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """One column's values as NumPy without building a Series (costly on the one-deal path)."""
    return column_values(frame, name)


def _snapshot_columns(snaps: pd.DataFrame) -> tuple[np.ndarray, Any]:
    """A snapshot frame's deal ids (object array) and its as_of values."""
    return np.asarray(_column(snaps, "deal_id"), dtype=object), _column(snaps, "as_of")


def _snapshot_times(values: Any) -> tuple[np.ndarray, list[pd.Timestamp] | None]:
    """Snapshot times as stored for the block (datetime64[ns]) and, when already built, as Timestamps.

    Naive times (every validated history's) stay a NumPy array: a DatetimeIndex
    costs more than the rules of one deal. Anything else goes through pandas as before.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[ns]", copy=False), None
    index = pd.DatetimeIndex(values).as_unit("ns")
    return index.to_numpy(), list(index)


def _as_time(value: pd.Timestamp | str | Any) -> pd.Timestamp:
    """A scoring time as naive UTC, the convention of every validated history."""
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"scoring time {value!r} is not a date or time",
                                  fix="use ISO 8601, e.g. 2024-06-30 or 2024-06-30T18:00:00Z") from exc
    if pd.isna(t):
        raise DataValidationError("the scoring time is empty", fix="pass a date or time, or none for the data cut")
    return naive_utc(t).as_unit("ns")


def _spec_info(spec: Any) -> dict[str, tuple[str, str, str | None]]:
    """feature → (group, meaning, unit) from a FeatureSpec, for wording features scoring does not know."""
    out: dict[str, tuple[str, str, str | None]] = {}
    for info in getattr(spec, "columns", None) or []:
        out[str(info.name)] = (str(getattr(info, "group", "other")), str(getattr(info, "meaning", info.name)),
                               getattr(info, "unit", None))
    return out


def _deal_rows(deals: pd.DataFrame, deal_ids: np.ndarray) -> np.ndarray:
    """Row of each deal id in ``deals`` (-1 if absent).

    A few ids (the API's one deal, its what-ifs) are looked up in plain Python:
    building a pandas index for them costs more than the rest of their labels.
    """
    known = _column(deals, "deal_id")
    if len(deal_ids) > 16:
        return pd.Index(known).get_indexer(deal_ids)
    where = {d: i for i, d in enumerate(known)} if len(known) <= 64 else None
    return np.array([where.get(d, -1) if where is not None else
                     (int(m[0]) if len(m := np.flatnonzero(known == d)) else -1) for d in deal_ids],
                    dtype=np.int64)


def _any_value(values: np.ndarray) -> bool:
    """Whether a column holds any value (NumPy's check: a Series' notna costs more on one deal)."""
    return bool(pd.notna(values).any())


def _close_dates(as_of: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Each snapshot's expected close date as the CRM showed it at its time (``datetime.date``; ``None``: none).

    Back from the ``days_to_expected_close`` feature, which reads it point in time (the latest stage row
    carrying one, the deal's own column only at the data cut: :func:`dealscore.features.stage.stage_features`),
    rounded to the microsecond, so the float's last bits never move a midnight to the day before. The deal's
    current column told ``score --as-of`` a close date typed in weeks later, beside a "close date passed"
    warning about the one in force then.
    """
    out = np.full(len(days), None, dtype=object)
    ok = ~np.isnan(days)
    micros = np.round(days[ok] * (DAY_NS // 1000)).astype(np.int64)
    close = as_of[ok].astype("datetime64[us]") + micros.astype("timedelta64[us]")
    out[ok] = close.astype("datetime64[D]").astype(object)
    return out


def _deal_labels(history: DealHistory, deal_ids: np.ndarray, close: np.ndarray, at_cut: np.ndarray
                 ) -> dict[str, np.ndarray] | None:
    """Names, currency and expected close date of each deal, for people; ``None`` when the history has none.

    Names and currency are read from the deal's current row (and its account's name): they identify a deal
    to a manager and never reach a feature. The expected close date changes as the deal moves: at the data
    cut (``at_cut``) it is the deal's own column, what the CRM shows; before it, ``close``, the one in force
    at the snapshot's time (:func:`_close_dates`).
    """
    deals, accounts = history.deals, history.accounts
    have = [c for c in LABEL_COLUMNS if c in deals.columns and c != "account_name"]
    has_account_name = "account_name" in accounts.columns and _any_value(_column(accounts, "account_name"))
    if not has_account_name and not any(_any_value(_column(deals, c)) for c in have) and not _any_value(close):
        return None
    idx = _deal_rows(deals, deal_ids)
    ok = idx >= 0
    out: dict[str, np.ndarray] = {}
    for col in LABEL_COLUMNS:
        vals = np.full(len(deal_ids), None, dtype=object)
        if col == "account_name":
            if has_account_name:
                names = dict(zip(_column(accounts, "account_id"), _column(accounts, "account_name"), strict=True))
                account = _column(deals, "account_id")[idx[ok]]
                vals[ok] = [names.get(a) for a in account]
        elif col == "expected_close_date":
            vals = close.copy()
            if col in have:
                got = _column(deals, col)[idx[ok]]
                # whole days as datetime.date objects (NaT becomes None), one array cast for the batch
                days = got if got.dtype.kind == "M" else pd.DatetimeIndex(got).to_numpy()
                current = np.full(len(deal_ids), None, dtype=object)
                current[ok] = days.astype("datetime64[D]").astype(object)
                use = at_cut & pd.notna(current)
                vals[use] = current[use]
        elif col in have:
            vals[ok] = list(_column(deals, col)[idx[ok]])
        vals[pd.isna(vals)] = None  # a missing text (NaN) reads as no value
        out[col] = vals
    return out


def _deal_meta(history: DealHistory, deal_ids: np.ndarray) -> dict[str, np.ndarray]:
    """account, owner and team of each deal (current values: they identify, they are not features)."""
    deals = history.deals
    idx = _deal_rows(deals, deal_ids)
    out: dict[str, np.ndarray] = {}
    ok = idx >= 0
    for col in ("account_id", "owner_id", "team"):
        vals = np.full(len(deal_ids), None, dtype=object)
        if col in deals.columns:
            got = _column(deals, col)[idx[ok]]
            vals[ok] = [None if v is None or v != v else str(v) for v in got]
        out[col] = vals
    return out

