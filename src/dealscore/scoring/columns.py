"""Fast column access to a feature frame for the rule-based parts of scoring.

Warnings, mismatch wording and reasons read a handful of feature columns for one
deal (API latency) or a hundred thousand (batch). Pulling each column out of the
DataFrame once as a NumPy array serves both: rules are written as array
expressions and cost microseconds on a one-row frame, where pandas operations
would cost tens of microseconds each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


class Columns:
    """Lazy, cached NumPy views of a feature frame's columns.

    Missing columns read as all-NaN (numbers) or all-None (text), so rules degrade
    gracefully when a feature spec leaves an optional column out.
    """

    def __init__(self, frame: pd.DataFrame | None, arrays: dict[str, np.ndarray] | None = None, *,
                 n: int | None = None, names: set[str] | None = None,
                 texts: Callable[[str], np.ndarray] | None = None) -> None:
        self.frame = frame
        self.n = len(frame) if frame is not None else int(n or 0)
        self._num: dict[str, np.ndarray] = dict(arrays or {})
        self._text: dict[str, np.ndarray] = {}
        self._numeric: dict[str, bool] = {}
        self._names = set(frame.columns) if frame is not None else set(names or ())
        self._texts = texts

    @classmethod
    def of_block(cls, block: Any, rows: slice | np.ndarray, arrays: dict[str, np.ndarray] | None = None) -> Columns:
        """Columns of some rows of a :class:`~dealscore.features.FeatureBlock`, without building a frame.

        Numeric features come from ``arrays`` or the block's float matrix; categoricals
        are decoded to text only when a rule asks for them.
        """
        numeric = block.numeric[rows]
        pos = {name: j for j, name in enumerate(block.numeric_names)}
        n = len(numeric)
        got = dict(arrays or {})
        for name, j in pos.items():
            if name not in got:
                got[name] = numeric[:, j]
        categorical = set(block.categorical_names)

        def texts(name: str) -> np.ndarray:
            if name not in categorical:
                return np.array([None if v != v else str(v) for v in numeric[:, pos[name]].tolist()], dtype=object)
            codes, cats = block.categorical(name)
            lut = np.array([*cats, None], dtype=object)
            return lut[codes[rows]]

        out = cls(None, got, n=n, names=set(block.feature_names) | {"deal_id", "as_of"}, texts=texts)
        out._numeric.update({name: name not in categorical for name in block.feature_names})
        return out

    def has(self, name: str) -> bool:
        """Whether the frame holds the column."""
        return name in self._names

    def num(self, name: str) -> np.ndarray:
        """A column as float64 (NaN where missing or absent)."""
        got = self._num.get(name)
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
