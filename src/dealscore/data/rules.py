"""The data contract's value rules (DESIGN §3), each stated once, as a function over whole columns.

Every function answers "which rows break this rule?" with a boolean mask. The
loader (:mod:`dealscore.data.history`) and :func:`dealscore.data.validate.validate_history`
report the rows a mask marks, naming them and the fix; the request path's direct
route (:mod:`dealscore.data.request`) only asks whether any row is marked and,
if one is, steps aside for the general path. Both call these functions, so a
rule changed here changes for both; ``tests/data/test_request.py`` checks on
random histories that the two paths still agree.

Missing values (NaN, NaT, None) never break a value rule: whether a value must
be present is the rule :func:`missing`.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

#: Dates outside [EARLIEST, LATEST) are placeholders (9999-12-31, 0001-01-01) or typos, never CRM facts.
EARLIEST = pd.Timestamp("1900-01-01")
LATEST = pd.Timestamp("2200-01-01")


@functools.cache
def date_window(dtype: np.dtype) -> tuple[np.datetime64, np.datetime64]:
    """The plausible-date window in a column's own unit: a year-9999 placeholder in seconds must
    not overflow on its way to nanoseconds before it is refused."""
    return EARLIEST.to_datetime64().astype(dtype), LATEST.to_datetime64().astype(dtype)


def outside_date_window(values: np.ndarray) -> np.ndarray:
    """Times (``datetime64`` of any unit) before :data:`EARLIEST` or from :data:`LATEST` on."""
    lo, hi = date_window(values.dtype)
    return (values < lo) | (values >= hi)  # NaT compares False


def missing(values: np.ndarray) -> np.ndarray:
    """Rows with no value (a required column must have one)."""
    return np.asarray(pd.isna(values), dtype=bool)


def negative(amounts: np.ndarray) -> np.ndarray:
    """Amounts below zero (amounts are zero or more)."""
    return np.asarray(amounts, dtype=np.float64) < 0  # NaN compares False


def closed_without_outcome(closed_at: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Deals with a close time but no outcome (an outcome is set exactly when a deal is closed)."""
    return ~np.isnat(closed_at) & missing(outcome)


def outcome_while_open(closed_at: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Deals with an outcome but no close time."""
    return np.isnat(closed_at) & ~missing(outcome)


def closed_before_created(created_at: np.ndarray, closed_at: np.ndarray) -> np.ndarray:
    """Deals closed before they were created."""
    return closed_at < created_at  # NaT compares False


def after_cut(values: np.ndarray, cut: np.datetime64) -> np.ndarray:
    """Times after the data cut (nothing in an export can be later than the export)."""
    return values > cut  # NaT compares False


def outside_life(when: np.ndarray, created_at: np.ndarray, closed_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events before their deal was created, and after it closed (an event exactly at either is inside)."""
    return when < created_at, when > closed_at  # NaT compares False: unknown dates are never out of life


def duplicated(ids: np.ndarray) -> np.ndarray:
    """Rows repeating an id that must be unique (missing ids are never duplicates)."""
    codes, uniques = pd.factorize(ids)
    # a trailing 0 is the count code -1 (a missing id) looks up
    counts = np.append(np.bincount(codes[codes >= 0], minlength=len(uniques)), 0)
    return counts[codes] > 1


__all__ = [
    "EARLIEST",
    "LATEST",
    "after_cut",
    "closed_before_created",
    "closed_without_outcome",
    "date_window",
    "duplicated",
    "missing",
    "negative",
    "outcome_while_open",
    "outside_date_window",
    "outside_life",
]
