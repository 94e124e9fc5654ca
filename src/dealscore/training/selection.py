"""Honest choice of the win model: time-series cross-validation over rolling origins.

One later slice is a noisy judge (a few hundred deals decide), so the family,
the booster's size and its round count, the blend weight and the calibrator are
all chosen on several folds instead:

- The *pool* is every labelled deal before the test slice, in creation order.
  Fold ``k`` trains on the deals created before origin ``k`` and is scored on the
  deals created between origin ``k`` and ``k + 1`` (whole deals: the snapshots of
  one deal never straddle a fold). The origins split the later part of the pool
  into ``folds`` equal blocks, so every block is scored by a model that never saw
  a deal created after it.
- Candidates: LightGBM under each setting of a small search (capacity,
  regularisation, and one with monotone constraints where the business meaning
  is unambiguous), the logistic regression, and blends of the best booster with
  the regression (weights on their log-odds). Each booster's round count is the
  one with the lowest mean held-out log loss over the folds (early stopping per
  fold only bounds the curves).
- Every candidate's out-of-fold scores go through the same calibration choice
  (:func:`~dealscore.models.calibration.select_calibrator`: forward chained over
  the folds), and its *CV log loss* is the calibrated log loss on the folds that
  choice scores. The champion is the candidate with the lowest CV log loss, and
  it is refitted on the whole pool with its chosen settings and calibrator.
  (A booster's round count is read off the same held-out curves, a slightly
  optimistic choice shared by every booster candidate; the curve is flat near
  its minimum, so the optimism is small.)

The CV cost is bounded: each fold's training rows are capped at
``max_cv_rows`` (a seeded sample of whole rows), each fold's LightGBM dataset is
built once and shared by the settings, and only the folds' held-out blocks are
predicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from dealscore.models.calibration import Calibrator, select_calibrator
from dealscore.models.inputs import check_binary, select_features
from dealscore.models.linear import LinearLogit
from dealscore.models.win import DEFAULT_WIN_PARAMS, WinModel
from dealscore.training.config import DEFAULT_BLENDS, DEFAULT_SEARCH, require

#: Features whose effect on winning has one unambiguous direction (+1 helps, -1 hurts) in any sales
#: process: a better track record of the owner or the account, an engaged decision maker or champion,
#: and close dates that keep slipping. Used only by the ``monotone`` search setting.
MONOTONE: dict[str, int] = {
    "owner_win_rate": 1,
    "account_win_rate": 1,
    "decision_maker_engaged": 1,
    "champion_engaged": 1,
    "close_date_pushes": -1,
}



@dataclass
class CandidateScore:
    """One candidate's cross-validated figures."""

    name: str
    family: str
    cv_log_loss: float
    raw_log_loss: float
    calibration: str
    params: dict[str, Any] = field(default_factory=dict)
    rounds: int = 0
    blend_weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures for the report."""
        return {"family": self.family, "cv_log_loss": self.cv_log_loss, "raw_log_loss": self.raw_log_loss,
                "calibration": self.calibration, "params": self.params, "rounds": self.rounds,
                "blend_weight": self.blend_weight}


@dataclass
class Selection:
    """The outcome of model selection: every candidate's score, the champion and its calibrator."""

    candidates: dict[str, CandidateScore]
    champion: str
    calibrator: Calibrator
    folds: list[dict[str, Any]]
    fold: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # per pool row, -1 = train only
    oof_raw: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the champion's out-of-fold raw scores

    @property
    def best(self) -> CandidateScore:
        """The champion's figures."""
        return self.candidates[self.champion]

    def margin(self) -> dict[str, Any]:
        """How much the champion beat the runner-up and the best of each other family, in CV log loss."""
        best = self.best
        others = sorted((c for c in self.candidates.values() if c.name != best.name), key=lambda c: c.cv_log_loss)
        by_family: dict[str, float] = {}
        for c in others:
            if c.family != best.family:
                by_family.setdefault(c.family, c.cv_log_loss - best.cv_log_loss)
        return {"runner_up": others[0].name if others else None,
                "over_runner_up": others[0].cv_log_loss - best.cv_log_loss if others else None,
                "over_best_of_family": by_family}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready section for the training report."""
        return {
            "champion": self.champion, "family": self.best.family, "cv_log_loss": self.best.cv_log_loss,
            "margin": self.margin(), "calibration": self.calibrator.variant_,
            "calibration_selection_log_loss": self.calibrator.selection_,
            "probability_bounds": {"floor": self.calibrator.floor_, "ceiling": self.calibrator.ceiling_,
                                   **self.calibrator.bounds_support_},
            "candidates": {k: v.to_dict() for k, v in self.candidates.items()},
            "folds": self.folds,
            "rule": "lowest cross-validated calibrated log loss over rolling time origins",
        }


#: Below this many training rows a booster is fitted on one thread: thread synchronisation costs more
#: than it saves on small data (LightGBM's own advice), and on a busy machine far more.
SMALL_FIT_ROWS = 50_000


def threads_for(rows: int, configured: Any) -> int:
    """Threads for one booster fit on ``rows`` rows (see :data:`SMALL_FIT_ROWS`)."""
    return 1 if rows < SMALL_FIT_ROWS else int(configured or 0)


def lgb_params(setting: Mapping[str, Any], base: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """LightGBM parameters of one search setting (``monotone: True`` becomes the constraint vector)."""
    p = {**DEFAULT_WIN_PARAMS, **dict(base), **{k: v for k, v in setting.items() if k != "monotone"}}
    if setting.get("monotone"):
        p["monotone_constraints"] = [MONOTONE.get(n, 0) for n in names]
    return p


def deal_folds(deal_ids: np.ndarray, n_folds: int, first_origin: float) -> np.ndarray:
    """Fold of each row (-1: only ever trained on) from its deal's creation rank among the pool's deals.

    Rows must be ordered by their deal's creation time (as training orders snapshots).
    """
    require("win.cv_folds", n_folds)
    require("win.cv_first_origin", first_origin)
    codes, uniques = pd.factorize(pd.Series(deal_ids), sort=False)
    rank = codes / max(len(uniques), 1)
    edges = first_origin + (1 - first_origin) * np.arange(n_folds + 1) / n_folds
    fold = np.searchsorted(edges, rank, side="right") - 1
    return np.where(rank < first_origin, -1, np.minimum(fold, n_folds - 1)).astype(int)


def sample_rows(mask: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    rows = np.flatnonzero(mask)
    if cap is None or len(rows) <= cap:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=cap, replace=False))


def select_win_model(
    X: pd.DataFrame, y: np.ndarray, deal_ids: np.ndarray, names: Sequence[str], *,
    base_params: Mapping[str, Any] | None = None, search: Mapping[str, Mapping[str, Any]] | None = None,
    blends: Sequence[float] = DEFAULT_BLENDS, linear_c: float = 1.0, n_folds: int = 3,
    first_origin: float = 0.5, num_boost_round: int = 2000, early_stopping_rounds: int = 50,
    max_cv_rows: int | None = 150_000, seed: int = 0, calibration: str = "auto",
) -> Selection:
    """Cross-validate every candidate on rolling time origins and pick the lowest CV log loss.

    ``X``/``y``/``deal_ids`` are the pool's rows in deal-creation order. ``calibration``
    ``auto`` lets the folds choose the method; a method name restricts the choice to it.
    """
    y = np.asarray(y, dtype=float)
    fold = deal_folds(np.asarray(deal_ids), n_folds, first_origin)
    Xs = select_features(X, names, who="model selection")
    search = dict(search if search is not None else DEFAULT_SEARCH)
    require("win.search", search)  # an empty search has no booster to blend or compare
    require("win.blends", list(blends))
    settings = {k: lgb_params(v, base_params or {}, names) for k, v in search.items()}
    folds_info: list[dict[str, Any]] = []
    curves: dict[str, list[np.ndarray]] = {k: [] for k in settings}
    boosters: dict[str, list[lgb.Booster]] = {k: [] for k in settings}
    linear_raw = np.full(len(y), np.nan)
    held = fold >= 0
    for k in range(n_folds):
        tr = sample_rows(fold < k, max_cv_rows, seed + k)
        ho = np.flatnonzero(fold == k)
        check_binary(y[tr], f"cross-validation fold {k + 1} (training deals)")
        check_binary(y[ho], f"cross-validation fold {k + 1} (held-out deals)")
        folds_info.append({"fold": k + 1, "train_rows": len(tr), "held_out_rows": len(ho),
                           "held_out_deals": int(pd.Series(np.asarray(deal_ids)[ho]).nunique()),
                           "held_out_win_rate": float(y[ho].mean())})
        train = lgb.Dataset(Xs.iloc[tr], label=y[tr], params={"feature_pre_filter": False}, free_raw_data=False)
        valid = lgb.Dataset(Xs.iloc[ho], label=y[ho], reference=train, params={"feature_pre_filter": False})
        for name, params in settings.items():
            evals: dict[str, Any] = {}
            fit_params = {**params, "metric": "binary_logloss", "seed": seed,
                          "num_threads": threads_for(len(tr), params.get("num_threads"))}
            booster = lgb.train(fit_params, train,
                                num_boost_round=num_boost_round, valid_sets=[valid], valid_names=["held_out"],
                                callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False),
                                           lgb.record_evaluation(evals)])
            curves[name].append(np.asarray(evals["held_out"]["binary_logloss"], dtype=float))
            boosters[name].append(booster)
        lin = LinearLogit(list(names), C=linear_c).fit(Xs.iloc[tr], y[tr])
        linear_raw[ho] = lin.predict_raw(Xs.iloc[ho])

    methods = None if calibration == "auto" else (calibration,)
    scores: dict[str, CandidateScore] = {}
    raws: dict[str, np.ndarray] = {}
    calibrators: dict[str, Calibrator] = {}

    def score(name: str, family: str, raw: np.ndarray, **extra: Any) -> None:
        cal = select_calibrator(raw[held], y[held], fold[held], np.asarray(deal_ids)[held],
                                **({} if methods is None else {"methods": methods}))
        cv = min(cal.selection_.values()) if cal.selection_ else float(
            log_loss(y[held], cal.transform(raw[held]), labels=[0, 1]))
        raw_ll = float(log_loss(y[held], 1 / (1 + np.exp(-raw[held])), labels=[0, 1]))
        scores[name] = CandidateScore(name, family, float(cv), raw_ll, cal.variant_, **extra)
        raws[name], calibrators[name] = raw, cal

    for name in settings:
        n = min(len(c) for c in curves[name])
        rounds = int(np.argmin(np.mean([c[:n] for c in curves[name]], axis=0))) + 1
        raw = np.full(len(y), np.nan)
        for k, booster in enumerate(boosters[name]):
            ho = fold == k
            raw[ho] = booster.predict(Xs[ho], num_iteration=rounds, raw_score=True)
        score(f"lightgbm:{name}", "lightgbm", raw, params=dict(search[name]), rounds=rounds)
    score("logistic", "logistic", linear_raw, blend_weight=0.0)
    best_gbm = min((c for c in scores.values() if c.family == "lightgbm"), key=lambda c: c.cv_log_loss)
    for w in blends:
        raw = w * raws[best_gbm.name] + (1 - w) * linear_raw
        score(f"blend:{w:g}", "blend", raw, params=best_gbm.params, rounds=best_gbm.rounds, blend_weight=float(w))

    champion = min(scores.values(), key=lambda c: (c.cv_log_loss, c.name)).name
    return Selection(candidates=scores, champion=champion, calibrator=calibrators[champion], folds=folds_info,
                     fold=fold, oof_raw=raws[champion])


def fit_components(candidate: CandidateScore, X: pd.DataFrame, y: np.ndarray, names: Sequence[str], *,
                   base_params: Mapping[str, Any] | None = None, linear_c: float = 1.0, seed: int = 0) -> WinModel:
    """An uncalibrated win model with one candidate's settings (family, booster setting, rounds, blend weight)."""
    params = lgb_params(candidate.params, base_params or {}, names)
    params["num_threads"] = threads_for(len(X), params.get("num_threads"))
    model = WinModel(params=params, num_boost_round=max(candidate.rounds, 1), feature_names=list(names), seed=seed,
                     blend_weight=candidate.blend_weight if candidate.family != "lightgbm" else 1.0,
                     linear_c=linear_c)
    return model.fit_components(X, y)


def fit_win_model(features: pd.DataFrame, y: np.ndarray, deal_ids: np.ndarray, pool: np.ndarray,
                  fit_rows: np.ndarray, names: Sequence[str], win_cfg: Any, *, seed: int = 0, threads: int = 0
                  ) -> tuple[WinModel, Selection]:
    """Select on the pool's folds (``pool``: rows of the deals before the test slice, in creation order), then
    refit the champion on ``fit_rows`` (a mask: the pool, or a capped sample of it).

    ``win_cfg`` is the training config's ``win`` section.
    """
    base = {**win_cfg.params, "num_threads": threads}
    rows = np.flatnonzero(pool)
    selection = select_win_model(
        features.iloc[rows], y[rows], np.asarray(deal_ids)[rows], names, base_params=base, search=win_cfg.search,
        blends=win_cfg.blends, linear_c=win_cfg.linear_c, n_folds=win_cfg.cv_folds,
        first_origin=win_cfg.cv_first_origin, num_boost_round=win_cfg.num_boost_round,
        early_stopping_rounds=win_cfg.early_stopping_rounds, max_cv_rows=win_cfg.max_cv_rows, seed=seed,
        calibration=win_cfg.calibration)
    model = fit_components(selection.best, features[fit_rows], y[fit_rows], names, base_params=base,
                           linear_c=win_cfg.linear_c, seed=seed).with_calibrator(selection.calibrator)
    return model, selection
