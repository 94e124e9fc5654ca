"""Fast column access to a feature frame for the rule-based parts of scoring.

Warnings, mismatch wording and reasons read a handful of feature columns for one
deal (API latency) or a hundred thousand (batch). Pulling each column out of the
DataFrame once as a NumPy array serves both: rules are written as array
expressions and cost microseconds on a one-row frame, where pandas operations
would cost tens of microseconds each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_FMAX = float(np.finfo(np.float64).max)


def nan_to_zero(values: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(values, nan=0.0)`` (infinities to the largest finite float too) in plain ufuncs.

    The NumPy function's Python-level checks cost about twenty microseconds a
    call, more than the rule that needs it on a one-deal block.
    """
    return np.minimum(np.maximum(np.where(np.isnan(values), 0.0, values), -_FMAX), _FMAX)


class Columns:
    """Lazy, cached NumPy views of a feature frame's columns.

    Missing columns read as all-NaN (numbers) or all-None (text), so rules degrade
    gracefully when a feature spec leaves an optional column out.
    """

    def __init__(self, frame: pd.DataFrame | None, arrays: dict[str, np.ndarray] | None = None, *,
                 n: int | None = None, names: set[str] | frozenset[str] | None = None,
                 texts: Callable[[str], np.ndarray] | None = None,
                 numbers: Callable[[str], np.ndarray | None] | None = None) -> None:
        self.frame = frame
        self.n = len(frame) if frame is not None else int(n or 0)
        self._num: dict[str, np.ndarray] = dict(arrays or {})
        self._text: dict[str, np.ndarray] = {}
        self._numeric: dict[str, bool] = {}
        self._names: set[str] | frozenset[str] = (set(frame.columns) if frame is not None else
                                                  names if isinstance(names, frozenset) else set(names or ()))
        self._texts = texts
        self._numbers = numbers

    @classmethod
    def of_block(cls, block: Any, rows: slice | np.ndarray, *, matrix: np.ndarray | None = None,
                 matrix_names: Sequence[str] | None = None,
                 categorical: Callable[[str], tuple[np.ndarray, tuple[str, ...]]] | None = None) -> Columns:
        """Columns of some rows of a :class:`~dealscore.features.FeatureBlock`, without building a frame.

        Each column is cut out of the block only when a rule reads it (rules read
        a dozen of the ninety features, and slicing them all up front cost more
        than the rules). Numeric features come from the block's float matrix; a
        categorical one read as a number is its code in ``matrix`` (the booster's
        input rows, ``matrix_names`` its columns), as the booster sees it.
        Categoricals are decoded to text only when a rule asks for them;
        ``categorical`` is the block's :meth:`categorical` (or a cached version of it).
        """
        numeric = block.numeric[rows]
        layout = _block_layout(block, matrix_names)
        pos, cat_pos, categorical_names = layout.numeric_pos, layout.matrix_pos, layout.categorical
        decode = block.categorical if categorical is None else categorical

        def numbers(name: str) -> np.ndarray | None:
            j = pos.get(name)
            if j is not None:
                return numeric[:, j]
            j = cat_pos.get(name)
            if j is not None and matrix is not None:
                return matrix[:, j]
            return None

        def texts(name: str) -> np.ndarray:
            if name not in categorical_names:
                return np.array([None if v != v else str(v) for v in numeric[:, pos[name]].tolist()], dtype=object)
            codes, cats = decode(name)
            lut = np.array([*cats, None], dtype=object)
            return lut[codes[rows]]

        out = cls(None, n=len(numeric), names=layout.names, texts=texts, numbers=numbers)
        out._numeric.update(layout.is_numeric)
        return out

    def has(self, name: str) -> bool:
        """Whether the frame holds the column."""
        return name in self._names

    def num(self, name: str) -> np.ndarray:
        """A column as float64 (NaN where missing or absent)."""
        got = self._num.get(name)
        if got is None and self._numbers is not None:
            got = self._numbers(name)
            if got is not None:
                self._num[name] = got
        if got is None:
            if self.frame is None:
                got = (pd.to_numeric(pd.Series(self.text(name), dtype=object), errors="coerce")
                       .to_numpy(dtype=float, na_value=np.nan) if name in self._names else np.full(self.n, np.nan))
            elif name in self._names:
                col = self.frame[name]
                if isinstance(col.dtype, pd.CategoricalDtype):
                    got = pd.to_numeric(col.astype(object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                else:
                    got = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            else:
                got = np.full(self.n, np.nan)
            self._num[name] = got
        return got

    def text(self, name: str) -> np.ndarray:
        """A column as an object array of ``str`` or ``None``."""
        got = self._text.get(name)
        if got is None:
            if name not in self._names:
                got = np.full(self.n, None, dtype=object)
            elif self.frame is None:
                got = self._texts(name) if self._texts is not None else np.full(self.n, None, dtype=object)
            else:
                arr = self.frame[name].to_numpy(dtype=object, na_value=None)
                got = np.array([None if v is None else str(v) for v in arr], dtype=object)
            self._text[name] = got
        return got

    def value(self, name: str, i: int) -> Any:
        """One cell (number as float, text as str/None) for wording."""
        numeric = self._numeric.get(name)
        if numeric is None:
            numeric = (name not in self._names or self.frame is None
                       or pd.api.types.is_numeric_dtype(self.frame[name].dtype))
            self._numeric[name] = numeric
        return float(self.num(name)[i]) if numeric else self.text(name)[i]


@dataclass(frozen=True)
class _BlockLayout:
    """Where each feature of a block's plan sits, derived once per (plan, matrix columns)."""

    plan: Any
    matrix_names: Sequence[str] | None
    numeric_pos: dict[str, int]
    matrix_pos: dict[str, int]  # categorical features: their column in the booster matrix
    categorical: frozenset[str]
    names: frozenset[str]
    is_numeric: dict[str, bool]


_LAYOUTS: dict[tuple[int, int], _BlockLayout] = {}


def _block_layout(block: Any, matrix_names: Sequence[str] | None) -> _BlockLayout:
    """The cached layout of a block's plan (one scorer sees one or two plans for its whole life)."""
    key = (id(block.plan), id(matrix_names))
    got = _LAYOUTS.get(key)
    if got is not None and got.plan is block.plan and got.matrix_names is matrix_names:
        return got
    categorical = frozenset(block.categorical_names)
    in_matrix = {n: j for j, n in enumerate(matrix_names or ())}
    got = _BlockLayout(
        plan=block.plan, matrix_names=matrix_names,
        numeric_pos={name: j for j, name in enumerate(block.numeric_names)},
        matrix_pos={n: in_matrix[n] for n in categorical if n in in_matrix},
        categorical=categorical, names=frozenset(block.feature_names) | {"deal_id", "as_of"},
        is_numeric={name: name not in categorical for name in block.feature_names},
    )
    if len(_LAYOUTS) > 64:
        _LAYOUTS.clear()
    _LAYOUTS[key] = got
    return got
