"""naive_utc: the one conversion into the product's time convention (naive UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd

from dealscore.times import naive_utc, shown_apart


def test_an_offset_is_converted_to_utc_and_dropped() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert naive_utc(datetime(2024, 3, 31, 14, 0, tzinfo=plus2)) == datetime(2024, 3, 31, 12, 0)
    t = naive_utc(pd.Timestamp("2024-03-31T14:00:00-05:00"))
    assert isinstance(t, pd.Timestamp) and t == pd.Timestamp("2024-03-31T19:00:00") and t.tzinfo is None


def test_a_naive_time_is_taken_as_utc_already_and_types_are_kept() -> None:
    d = datetime(2024, 1, 2, 3, 4, 5, 6)
    assert naive_utc(d) is d
    assert type(naive_utc(datetime(2024, 1, 1, tzinfo=UTC))) is datetime
    assert naive_utc(pd.NaT) is pd.NaT


def test_a_series_is_converted_as_a_whole() -> None:
    s = pd.Series(pd.to_datetime(["2024-01-01T00:00:00+01:00", None], utc=True))
    out = naive_utc(s)
    assert out.dtype.kind == "M" and getattr(out.dtype, "tz", None) is None
    assert out.iloc[0] == pd.Timestamp("2023-12-31T23:00:00") and pd.isna(out.iloc[1])
    naive = pd.Series(pd.to_datetime(["2024-01-01"]))
    assert naive_utc(naive) is naive


def test_two_times_are_shown_at_the_unit_where_they_differ() -> None:
    """"as of 00:00 is after the cut at 00:00" read as a contradiction."""
    t = pd.Timestamp("2024-06-01")
    assert shown_apart(t + pd.Timedelta(days=1), t) == ("2024-06-02 00:00", "2024-06-01 00:00")
    assert shown_apart(t + pd.Timedelta(seconds=1), t) == ("2024-06-01 00:00:01", "2024-06-01 00:00:00")
    assert shown_apart(t + pd.Timedelta(microseconds=500), t)[0] == "2024-06-01 00:00:00.000500"
    assert shown_apart(t, t) == ("2024-06-01 00:00", "2024-06-01 00:00")
