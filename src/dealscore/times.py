"""Naive UTC: the one time convention of the whole product, and the one conversion into it.

Every validated history, score, store row and page compares times without a
zone attribute, all meaning UTC. A time given with an offset is converted to UTC
and its zone dropped; a time without one is taken as UTC already. Keeping this
in one function means a change of convention (or a bug) has one home.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar, overload

import pandas as pd

_T = TypeVar("_T", bound=datetime)

#: Nanoseconds in a day: validated times are datetime64[ns], and day counts are computed on their integers.
DAY_NS = 86_400 * 10**9


@overload
def naive_utc(value: pd.Series) -> pd.Series: ...
@overload
def naive_utc(value: _T) -> _T: ...
def naive_utc(value: pd.Series | datetime) -> pd.Series | datetime:
    """``value`` in UTC without a zone attribute: a datetime, a :class:`pandas.Timestamp` or a Series.

    The type is kept (a ``datetime`` stays a ``datetime``, a Timestamp a
    Timestamp), as is the unit of a pandas value. ``NaT`` passes through.
    """
    if isinstance(value, pd.Series):
        if isinstance(value.dtype, pd.DatetimeTZDtype):
            return value.dt.tz_convert("UTC").dt.tz_localize(None)
        return value
    if value is pd.NaT or value.tzinfo is None:
        return value
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").tz_localize(None)
    return value.astimezone(UTC).replace(tzinfo=None)


def shown_apart(a: datetime, b: datetime) -> tuple[str, str]:
    """Two times as a message compares them: to the minute, or finer where that would show them equal.

    "as of 00:00 is after the cut at 00:00" read as a contradiction when the two were a second (or a
    microsecond) apart. One rule for every message that refuses a time against another.
    """
    ta, tb = pd.Timestamp(a), pd.Timestamp(b)
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"):
        sa, sb = ta.strftime(fmt), tb.strftime(fmt)
        if sa != sb or ta == tb:
            return sa, sb
    return ta.isoformat(), tb.isoformat()  # apart by nanoseconds


__all__ = ["DAY_NS", "naive_utc", "shown_apart"]
