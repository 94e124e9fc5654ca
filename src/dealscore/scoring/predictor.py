"""How the scorer gets its predictions for a feature block: one :class:`Predictor`, chosen once per scorer.

Two implementations give the same numbers:

- :class:`MatrixPredictor` (the latency path): the boosters on float matrices
  built straight from the block by :class:`~dealscore.scoring.predict.ModelRunner`,
  microseconds where the models' DataFrame methods cost milliseconds;
- :class:`FramePredictor` (the reference): the models' own DataFrame methods.

:func:`choose_predictor` checks the matrix path against the reference on the
first block a scorer sees and keeps the reference for good if they ever disagree
(with a warning). Nothing downstream asks which one serves: the scorer calls the
same four methods either way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from dealscore.scoring.columns import Columns
from dealscore.scoring.predict import ModelRunner


class CategoryCodes:
    """A block's categorical codes, computed once per feature and shared by both boosters' matrices and the rules.

    ``FeatureBlock.categorical`` encodes the column afresh on each call; a block
    is asked for each categorical by the win matrix, the stage matrix and the
    reason wording, which cost more than the one encoding they need.

    What-if copies (``copies_of=(codes, rows)``: row ``j`` copies row ``rows[j]`` of
    the block behind ``codes``) are the same deals at the same time with one more
    touchpoint, and no categorical reads touchpoints (the declared stage is a
    function of the stage rows and the time), so their codes are those rows' codes.
    An open vocabulary may list more categories than the copies alone would, which
    changes no matrix value: codes are mapped to the booster's categories by name.
    """

    __slots__ = ("_got", "_parent", "block")

    def __init__(self, block: Any, copies_of: tuple[CategoryCodes, Sequence[int]] | None = None) -> None:
        self.block = block
        self._parent = copies_of
        self._got: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}

    def __call__(self, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
        got = self._got.get(name)
        if got is None:
            if self._parent is not None:
                parent, rows = self._parent
                codes, cats = parent(name)
                got = self._got[name] = (codes[np.asarray(rows, dtype=np.int64)], cats)
            else:
                codes, cats = self.block.categorical(name)
                got = self._got[name] = (codes, tuple(cats))
        return got


@dataclass
class Inputs:
    """A feature block ready for the models: its category codes and, on the matrix path, one matrix per booster."""

    block: Any
    codes: CategoryCodes
    mw: np.ndarray | None = None
    ms: np.ndarray | None = None
    _frame: pd.DataFrame | None = None

    @property
    def frame(self) -> pd.DataFrame:
        """The block as a feature frame (for the models' own DataFrame methods; built once, only when asked)."""
        if self._frame is None:
            self._frame = self.block.frame()
        return self._frame


class Predictor(Protocol):
    """What the scorer needs of the models for a feature block (rows in the block's order)."""

    def prepare(self, block: Any, copies_of: tuple[CategoryCodes, Sequence[int]] | None = None) -> Inputs:
        """``block``'s model inputs; ``copies_of`` says its rows are what-if copies of another block's rows."""
        ...

    def win_raw(self, inputs: Sequence[Inputs]) -> np.ndarray:
        """Raw win scores (log-odds) of every row of ``inputs``, in order, in as few model calls as it can."""
        ...

    def stage_proba(self, inp: Inputs, order: Sequence[str]) -> np.ndarray:
        """Real-stage probabilities, columns in ``order``."""
        ...

    def contributions(self, inp: Inputs) -> np.ndarray:
        """Per-feature contributions to the raw win score in log-odds, last column the bias."""
        ...

    def columns(self, inp: Inputs) -> Columns:
        """The rows' feature values as the rules and the reasons read them."""
        ...


class MatrixPredictor:
    """The boosters on float matrices built straight from the block (no DataFrame on the way)."""

    def __init__(self, runner: ModelRunner, feature_names: Sequence[str]) -> None:
        self.runner = runner
        self.feature_names = list(feature_names)

    def prepare(self, block: Any, copies_of: tuple[CategoryCodes, Sequence[int]] | None = None) -> Inputs:
        codes = CategoryCodes(block, copies_of)
        mw, ms = self.runner.block_matrices(block, codes)
        return Inputs(block, codes, mw, ms)

    def win_raw(self, inputs: Sequence[Inputs]) -> np.ndarray:
        mats = [_matrix(x.mw) for x in inputs]
        return self.runner.win_raw(mats[0] if len(mats) == 1 else np.concatenate(mats))

    def stage_proba(self, inp: Inputs, order: Sequence[str]) -> np.ndarray:
        return self.runner.stage_proba(_matrix(inp.ms), order)

    def contributions(self, inp: Inputs) -> np.ndarray:
        return self.runner.contributions(_matrix(inp.mw))

    def columns(self, inp: Inputs) -> Columns:
        return Columns.of_block(inp.block, slice(None), matrix=inp.mw, matrix_names=self.feature_names,
                                categorical=inp.codes)


class FramePredictor:
    """The models' own DataFrame methods: the reference the matrix path is checked against."""

    def __init__(self, win_model: Any, stage_model: Any) -> None:
        self.win_model = win_model
        self.stage_model = stage_model

    def prepare(self, block: Any, copies_of: tuple[CategoryCodes, Sequence[int]] | None = None) -> Inputs:
        return Inputs(block, CategoryCodes(block, copies_of))

    def win_raw(self, inputs: Sequence[Inputs]) -> np.ndarray:
        return np.concatenate([np.asarray(self.win_model.predict_raw(x.frame), dtype=float) for x in inputs])

    def stage_proba(self, inp: Inputs, order: Sequence[str]) -> np.ndarray:
        proba = self.stage_model.predict_proba(inp.frame)
        return np.asarray(proba[list(order)] if isinstance(proba, pd.DataFrame) else proba, dtype=float)

    def contributions(self, inp: Inputs) -> np.ndarray:
        return np.asarray(self.win_model.contributions(inp.frame), dtype=float)

    def columns(self, inp: Inputs) -> Columns:
        return Columns(inp.frame)


def choose_predictor(runner: ModelRunner, feature_names: Sequence[str], block: Any, order: Sequence[str],
                     ) -> tuple[MatrixPredictor | FramePredictor, Inputs]:
    """The matrix path if it reproduces the models' own methods on ``block`` (else the reference, with a warning),
    and ``block``'s inputs for the chosen one (the check's matrices are not built twice)."""
    matrix = MatrixPredictor(runner, feature_names)
    inp = matrix.prepare(block)
    if runner.agrees(inp.frame, order, mats=(_matrix(inp.mw), _matrix(inp.ms))):
        return matrix, inp
    warnings.warn("dealscore scoring: the fast prediction path disagrees with the models' own methods on this "
                  "bundle; using the slower DataFrame path", RuntimeWarning, stacklevel=4)
    return FramePredictor(runner.win_model, runner.stage_model), Inputs(block, inp.codes, _frame=inp.frame)


def _matrix(m: np.ndarray | None) -> np.ndarray:
    """An input the matrix path built (a predictor is only handed inputs it prepared itself)."""
    if m is None:
        raise ValueError("these inputs were prepared by the frame predictor; the matrix predictor cannot read them")
    return m
