"""Table reads: the block-storage fast path for timestamp columns gives what the general path gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore._compat import column_names, naive_ns_columns
from dealscore.features.inputs import NAT, Table, as_ns


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "deal_id": ["a", "b", "c"],
        "at": pd.to_datetime(["2024-01-01", None, "2024-03-01 00:00:00.000000001"], format="ISO8601").as_unit("ns"),
        "n": [1.0, 2.0, 3.0],
        "later": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"]).as_unit("ns"),
        "zoned": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]).tz_localize("Europe/Berlin"),
        "secs": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]).as_unit("s"),
    })


def test_times_match_the_general_path() -> None:
    frame = _frame()
    table = Table(frame, "t")
    for name in ("at", "later", "zoned", "secs"):
        np.testing.assert_array_equal(table.times(name), as_ns(frame[name], table="t", column=name))
    assert table.times("at")[1] == NAT
    # only zone-less nanosecond columns take the block shortcut, and they are read in place (no copy); the others
    # are converted into new arrays
    assert set(naive_ns_columns(frame)) == {frame.columns.get_loc("at"), frame.columns.get_loc("later")}
    in_place = {name for name in ("at", "later", "zoned", "secs")
                if np.shares_memory(table.times(name), frame[name].to_numpy())}
    assert in_place == {"at", "later"}
    assert (table.times("missing_column") == NAT).all()


def test_times_follow_a_reassigned_column() -> None:
    frame = _frame()
    frame["at"] = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]).as_unit("ns")
    np.testing.assert_array_equal(Table(frame, "t").times("at"), as_ns(frame["at"], table="t", column="at"))


def test_column_names_keep_the_index_order() -> None:
    frame = _frame()
    assert column_names(frame.columns) == list(frame.columns)
    assert column_names(pd.Index(["x", 1, None], dtype=object)) == ["x", 1, None]
