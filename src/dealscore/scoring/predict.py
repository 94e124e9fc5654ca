"""Runs the bundle's boosters on one float matrix per feature block (the latency path).

``WinModel.predict_raw`` and friends take a DataFrame, and LightGBM's pandas
path re-checks dtypes and re-codes categoricals on every call: milliseconds for
a one-row frame, against microseconds for the prediction itself. Scoring one
deal calls three predictions (win score, contributions, stage), so the block's
columns are laid out once into a matrix, the way LightGBM converts a frame (categoricals as codes of the
booster's stored categories, unknown → NaN), and calls each booster on the
matrix with a single thread for small blocks (waking a thread pool costs more
than predicting a few rows).

The conversion is checked against the models' own DataFrame methods on the
first block a scorer sees (:meth:`ModelRunner.agrees`, through
:func:`dealscore.scoring.predictor.choose_predictor`); if they ever disagree the
scorer keeps the models' methods for good and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dealscore._compat import CONTRIB, NORMAL, RAW_SCORE, predict_matrix

#: Blocks smaller than this are predicted on one thread.
SINGLE_THREAD_ROWS = 2_000


@dataclass
class _Booster:
    """One booster with its feature order and the categories stored for its categorical columns.

    LightGBM pairs ``pandas_categorical`` with the frame's categorical columns in
    column order, at training and at prediction alike; :meth:`ModelRunner._block_matrix`
    (the block matrix) does the same pairing.
    """

    booster: Any
    iteration: int
    names: list[str]
    stored: list[list[Any]]
    models: int  # trees per boosting round (classes of a multiclass model)

    @classmethod
    def of(cls, model: Any) -> _Booster:
        booster = model.booster_
        if booster is None:  # a logistic-only win model: its matrix carries the regression's categories
            names, lin = list(model.feature_names_), model.linear
            return cls(None, 0, names, [list(lin.categories_[c]) for c in names if c in lin.categories_], 1)
        return cls(booster, int(model.best_iteration_), list(model.feature_names_),
                   [list(c) for c in (getattr(booster, "pandas_categorical", None) or [])],
                   int(booster.num_model_per_iteration()))

    def predict(self, mat: np.ndarray, kind: int, threads: int) -> np.ndarray:
        """This booster on a float matrix (flat; see :func:`~dealscore._compat.predict_matrix`)."""
        return predict_matrix(self.booster, mat, kind=kind, iteration=self.iteration, threads=threads,
                              models=self.models)


class ModelRunner:
    """Win and stage predictions on a float matrix built once per feature frame."""

    def __init__(self, win_model: Any, stage_model: Any, threads: int | None = None) -> None:
        self.win_model = win_model
        self.stage_model = stage_model
        self.threads = threads
        self._win = _Booster.of(win_model)
        self._stage = _Booster.of(stage_model)
        self.stage_classes = list(stage_model.classes_)
        self._block_layouts: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._luts: dict[tuple[int, int, tuple[str, ...]], np.ndarray] = {}
        # one matrix serves both boosters when they read the same columns with the same categories
        self._same_inputs = self._stage.names == self._win.names and self._stage.stored == self._win.stored

    @property
    def stage_names(self) -> list[str]:
        """The stage model's feature columns, in its order."""
        return self._stage.names

    def _threads(self, n: int) -> int:
        if self.threads is not None:
            return self.threads
        return 1 if n < SINGLE_THREAD_ROWS else 0

    def _block_layout(self, block: Any, b: _Booster) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str, int]]]:
        """Where each booster column comes from in a feature block (cached per spec plan)."""
        key = (id(b), id(block.plan))
        got = self._block_layouts.get(key)
        if got is not None and got[0] is block.plan:
            return got[1]
        pos = {name: j for j, name in enumerate(block.numeric_names)}
        categorical = set(block.categorical_names)
        num_dst, num_src, cats = [], [], []
        for j, name in enumerate(b.names):
            if name in categorical:
                cats.append((j, name, len(cats)))  # paired with the k-th stored categories
            else:
                num_dst.append(j)
                num_src.append(pos[name])
        layout = (np.asarray(num_dst, dtype=np.int64), np.asarray(num_src, dtype=np.int64), cats)
        self._block_layouts[key] = (block.plan, layout)
        return layout

    def _lut(self, b: _Booster, k: int, categories: tuple[str, ...]) -> np.ndarray:
        """Block category code -> the booster's category code (unknown and missing -> NaN; code -1 is the last)."""
        key = (id(b), k, categories)
        lut = self._luts.get(key)
        if lut is None:
            if k < len(b.stored):
                where = {v: float(i) for i, v in enumerate(b.stored[k])}
                lut = np.array([where.get(c, np.nan) for c in categories] + [np.nan], dtype=np.float64)
            else:
                lut = np.array([*range(len(categories)), np.nan], dtype=np.float64)
            self._luts[key] = lut
        return lut

    def _block_matrix(self, block: Any, b: _Booster, categorical: Callable[[str], tuple[Any, Any]]) -> np.ndarray:
        num_dst, num_src, cats = self._block_layout(block, b)
        out = np.empty((len(block), len(b.names)), dtype=np.float64)
        out[:, num_dst] = block.numeric[:, num_src]
        for j, name, k in cats:
            codes, categories = categorical(name)
            out[:, j] = self._lut(b, k, tuple(categories))[codes]
        return out

    def block_matrices(self, block: Any, categorical: Callable[[str], tuple[Any, Any]] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """The win and stage models' input matrices straight from a feature block (no DataFrame).

        ``categorical`` stands in for ``block.categorical`` (the scorer passes a cached one).
        """
        get = block.categorical if categorical is None else categorical
        mw = self._block_matrix(block, self._win, get)
        if self._same_inputs:
            return mw, mw
        return mw, self._block_matrix(block, self._stage, get)

    def win_raw(self, mw: np.ndarray) -> np.ndarray:
        """Raw log-odds (what ``WinModel.predict_raw`` returns; a blend's logistic part reads the same matrix)."""
        return self.win_model.mix(lambda: self._win.predict(mw, RAW_SCORE, self._threads(len(mw))),
                                  lambda lin: lin.raw_matrix(mw))

    def contributions(self, mw: np.ndarray) -> np.ndarray:
        """``pred_contrib`` in log-odds, last column the bias (what ``WinModel.contributions`` returns)."""
        return self.win_model.mix(
            lambda: self._win.predict(mw, CONTRIB, self._threads(len(mw))).reshape(len(mw), -1),
            lambda lin: lin.contributions_matrix(mw))

    def stage_proba(self, ms: np.ndarray, order: Sequence[str]) -> np.ndarray:
        """Stage probabilities with columns in ``order`` (the taxonomy's)."""
        p = self._stage.predict(ms, NORMAL, self._threads(len(ms))).reshape(len(ms), len(self.stage_classes))
        if list(order) == self.stage_classes:
            return p
        idx = [self.stage_classes.index(s) for s in order]
        return p[:, idx]

    def agrees(self, X: pd.DataFrame, order: Sequence[str], mats: tuple[np.ndarray, np.ndarray], rows: int = 64,
               ) -> bool:
        """Whether the matrices ``mats`` built for ``X`` (from its feature block) give the models' own
        DataFrame methods' numbers, on the first ``rows`` rows."""
        sample = X.iloc[:rows]
        mw, ms = mats[0][:rows], mats[1][:rows]
        ref_raw = np.asarray(self.win_model.predict_raw(sample), dtype=float)
        ref_stage = self.stage_model.predict_proba(sample)
        ref_stage = np.asarray(ref_stage[list(order)] if isinstance(ref_stage, pd.DataFrame) else ref_stage)
        return bool(np.allclose(self.win_raw(mw), ref_raw, rtol=1e-9, atol=1e-9)
                    and np.allclose(self.stage_proba(ms, order), ref_stage, rtol=1e-9, atol=1e-9))
