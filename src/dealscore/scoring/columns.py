"""Fast column access to a feature frame for the rule-based parts of scoring.

Warnings, mismatch wording and reasons read a handful of feature columns for one
deal (API latency) or a hundred thousand (batch). Pulling each column out of the
DataFrame once as a NumPy array serves both: rules are written as array
expressions and cost microseconds on a one-row frame, where pandas operations
would cost tens of microseconds each.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class Columns:
    """Lazy, cached NumPy views of a feature frame's columns.

    Missing columns read as all-NaN (numbers) or all-None (text), so rules degrade
    gracefully when a feature spec leaves an optional column out.
    """

    def __init__(self, frame: pd.DataFrame, arrays: dict[str, np.ndarray] | None = None) -> None:
        self.frame = frame
        self.n = len(frame)
        self._num: dict[str, np.ndarray] = dict(arrays or {})
        self._text: dict[str, np.ndarray] = {}
        self._numeric: dict[str, bool] = {}

    def has(self, name: str) -> bool:
        """Whether the frame holds the column."""
        return name in self.frame.columns

    def num(self, name: str) -> np.ndarray:
        """A column as float64 (NaN where missing or absent)."""
        got = self._num.get(name)
        if got is None:
            if name in self.frame.columns:
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
            if name in self.frame.columns:
                arr = self.frame[name].to_numpy(dtype=object, na_value=None)
                got = np.array([None if v is None else str(v) for v in arr], dtype=object)
            else:
                got = np.full(self.n, None, dtype=object)
            self._text[name] = got
        return got

    def value(self, name: str, i: int) -> Any:
        """One cell (number as float, text as str/None) for wording."""
        numeric = self._numeric.get(name)
        if numeric is None:
            numeric = name not in self.frame.columns or pd.api.types.is_numeric_dtype(self.frame[name].dtype)
            self._numeric[name] = numeric
        return float(self.num(name)[i]) if numeric else self.text(name)[i]
