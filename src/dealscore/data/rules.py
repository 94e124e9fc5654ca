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
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pycountry

#: Dates outside [EARLIEST, LATEST) are placeholders (9999-12-31, 0001-01-01) or typos, never CRM facts.
EARLIEST = pd.Timestamp("1900-01-01")
LATEST = pd.Timestamp("2200-01-01")
#: The window as people read it, for messages ("1900-2199").
DATE_WINDOW_TEXT = f"{EARLIEST.year}-{LATEST.year - 1}"
_WINDOW = (EARLIEST.to_pydatetime(), LATEST.to_pydatetime())
_DAY_WINDOW = (_WINDOW[0].date(), _WINDOW[1].date())
#: The smallest amount there is (amounts are zero or more); the API's schema declares the same minimum.
LOWEST_AMOUNT = 0
#: The largest amount (and annual revenue) accepted: a quadrillion in any currency, above any real deal or
#: company. A larger one is a corrupt cell or a unit mistake, and a few of them summed overflow to infinity
#: in a forecast. The API's schema declares the same maximum.
HIGHEST_AMOUNT = 1e15
#: The bound as people read it, for messages.
HIGHEST_AMOUNT_TEXT = f"{HIGHEST_AMOUNT:,.0f}"


@functools.cache
def date_window(dtype: np.dtype) -> tuple[np.datetime64, np.datetime64]:
    """The plausible-date window in a column's own unit: a year-9999 placeholder in seconds must
    not overflow on its way to nanoseconds before it is refused."""
    return EARLIEST.to_datetime64().astype(dtype), LATEST.to_datetime64().astype(dtype)


def outside_date_window(values: np.ndarray) -> np.ndarray:
    """Times (``datetime64`` of any unit) before :data:`EARLIEST` or from :data:`LATEST` on."""
    lo, hi = date_window(values.dtype)
    return (values < lo) | (values >= hi)  # NaT compares False


def date_outside_window(value: date) -> bool:
    """:func:`outside_date_window` for one Python date or naive datetime (a field of an API request).

    In plain Python: a request's schema checks each of its hundreds of timestamps
    one by one, where a NumPy call per value would cost more than the rest of the check.
    """
    if isinstance(value, datetime):
        return not _WINDOW[0] <= value < _WINDOW[1]
    return not _DAY_WINDOW[0] <= value < _DAY_WINDOW[1]


#: Ids up to which a duplicate is first looked for with a Python set (an API request's tables)
_SMALL_IDS = 10_000

#: A timestamp written with its own zone: a time part followed by Z or a +hh:mm offset.
ZONE_SUFFIX = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_ZONE = re.compile(ZONE_SUFFIX, re.IGNORECASE)


def text_has_zone(text: str) -> bool:
    """Whether one timestamp, as written, carries its zone (``Z`` or an offset such as ``+01:00``).

    ISO 8601 text is read by ``datetime.fromisoformat`` (in C, a fraction of a
    microsecond: an API request holds hundreds of timestamps); other spellings by
    the same pattern a CSV column is read with.
    """
    if len(text) == 19 and text[13] == ":" and text[16] == ":":
        return False  # 2025-03-12T14:30:00, the common spelling without a zone: no parse needed
    if len(text) == 20 and text[19] == "Z" and text[13] == ":" and text[16] == ":":
        return True  # 2025-03-12T14:30:00Z
    text = text.strip()
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return _ZONE.search(text) is not None


def texts_have_zone(texts: pd.Series) -> np.ndarray:
    """:func:`text_has_zone` over a column of text (missing values carry no zone)."""
    return texts.str.contains(ZONE_SUFFIX, regex=True, na=False, case=False).to_numpy(dtype=bool)


def zone_mix(zoned: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Timestamps written without a zone in a history where others carry one.

    One history uses one convention: every timestamp with an offset (any offsets, all
    go to UTC), or none with one (then all are taken as UTC). A time without a zone
    among times with one cannot be placed in time, so it is refused, whatever the
    path it came by: a column of a CSV file, the columns of a folder, or the
    timestamps of one API request. ``zoned`` says which carry a zone, ``present``
    which have a value at all (default: all of them).
    """
    zoned = np.asarray(zoned, dtype=bool)
    have = np.ones(len(zoned), dtype=bool) if present is None else np.asarray(present, dtype=bool)
    if not bool((zoned & have).any()):
        return np.zeros(len(zoned), dtype=bool)
    return have & ~zoned


def zone_mix_columns(zones: Mapping[str, bool]) -> tuple[list[str], list[str]]:
    """The columns carrying a zone and those without one, when a history mixes them (else two empty lists)."""
    names = list(zones)
    naive = zone_mix(np.array([zones[n] for n in names], dtype=bool))
    if not naive.any():
        return [], []
    return sorted(n for n in names if zones[n]), sorted(n for n, bad in zip(names, naive, strict=True) if bad)


def infinite(values: np.ndarray) -> np.ndarray:
    """Numbers that are not finite (``inf``, ``-Infinity``, ``1e309``): no amount, count or revenue is infinite."""
    return np.isinf(np.asarray(values, dtype=np.float64))


def too_long(lengths: np.ndarray | int, limit: int) -> np.ndarray:
    """Texts longer than ``limit`` characters (a whole document pasted into a cell, or a corrupt export)."""
    return np.asarray(lengths) > limit


@functools.cache
def _currencies() -> frozenset[str]:
    """The current ISO 4217 codes (pycountry's copy of the standard; read once)."""
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def is_currency(code: str) -> bool:
    """Whether ``code`` (any case) is a current ISO 4217 currency code: ``EUR`` and ``usd`` are, ``ZZZ`` and a
    typo such as ``EUE`` are not. A code that is none names no money the totals could be kept apart by."""
    return code.upper() in _currencies()


#: The character no text may hold: binary data, or a file saved in another encoding.
NUL = "\x00"


def holds_nul(text: str) -> bool:
    """Whether one text holds a :data:`NUL` character (the loader's Arrow pass looks for the same one)."""
    return NUL in text


#: Letters and symbols that draw nothing (Hangul fillers, the blank Braille pattern): a "name" made of them
#: looks empty on every page and list, like one made of spaces or zero-width characters.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
#: The bidirectional embedding and override controls (LRE, RLE, PDF, LRO, RLO). Unicode deprecates them for
#: the isolates; in a name they reorder whatever is shown after it ("Trojan Source" spoofing), so a list row
#: could read as another deal's. The marks (LRM, RLM) and isolates that right-to-left names use stay allowed.
_BIDI_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e")


def unreadable(text: str) -> str | None:
    """Why a name or id cannot be shown to people, or ``None`` when it can.

    A team ``"\u200b"`` (a zero-width space) passed every other rule, then showed as an empty choice in the
    pages' filters and an empty team in the forecast; the trim (:func:`trim`) removes only whitespace.
    """
    if text.isascii() and text.isprintable() and not text.isspace():
        return None  # the common case, in C: printable ASCII with a non-space holds no override and shows
    if all(unicodedata.category(c)[0] in "ZC" or c in _BLANK_LETTERS for c in text):
        return "holds no visible character (only spaces, zero-width or other invisible characters)"
    overrides = sorted({f"U+{ord(c):04X}" for c in text if c in _BIDI_OVERRIDES})
    if overrides:
        return (f"holds the bidirectional override character{'s' if len(overrides) > 1 else ''} "
                f"{', '.join(overrides)}, which reorders the text shown after it")
    return None


def trim(text: str) -> str:
    """One id or text cell as every path compares it: without surrounding whitespace (Unicode's, e.g. a
    no-break space pasted from a spreadsheet), as the loader's ``.str.strip()`` of a column leaves it.

    The API trims an id with this before it looks the deal up, so that the deal it checks access to
    is the deal the history holds (``"OPP-1\u00a0"`` is the stored ``"OPP-1"``).
    """
    return text.strip()


def missing(values: np.ndarray) -> np.ndarray:
    """Rows with no value (a required column must have one)."""
    return np.asarray(pd.isna(values), dtype=bool)


def negative(amounts: np.ndarray) -> np.ndarray:
    """Amounts below :data:`LOWEST_AMOUNT` (amounts are zero or more)."""
    return np.asarray(amounts, dtype=np.float64) < LOWEST_AMOUNT  # NaN compares False


def too_large(amounts: np.ndarray) -> np.ndarray:
    """Amounts (or revenues) above :data:`HIGHEST_AMOUNT`."""
    return np.asarray(amounts, dtype=np.float64) > HIGHEST_AMOUNT  # NaN compares False


def unknown_key(positions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rows naming a key (an account, a deal) that the table it points into does not hold.

    ``positions`` is each row's position among that table's keys, -1 where the
    value is not one of them; how it is found is the caller's (a hash over
    millions of ids, or a dict over a request's few). A missing key is not an
    unknown one: whether it must be present is the rule :func:`missing`.
    """
    unknown = np.asarray(positions) < 0
    if not unknown.any():
        return unknown  # every key found (the common case): no need to ask which are missing
    return unknown & ~missing(values)


def closed_without_outcome(closed_at: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Deals with a close time but no outcome (an outcome is set exactly when a deal is closed)."""
    return ~np.isnat(closed_at) & missing(outcome)


def outcome_while_open(closed_at: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Deals with an outcome but no close time."""
    return np.isnat(closed_at) & ~missing(outcome)


def closed_before_created(created_at: np.ndarray, closed_at: np.ndarray) -> np.ndarray:
    """Deals closed before they were created."""
    return closed_at < created_at  # NaT compares False


def close_date_before_created(created_at: np.ndarray, expected_close: np.ndarray) -> np.ndarray:
    """Deals whose expected close *day* is before the day they were created: a typo or a date from another
    deal, kept (it is what the CRM holds) but worth a word, since every reading of it then says "overdue"."""
    created = np.asarray(created_at, dtype="datetime64[ns]").astype("datetime64[D]")
    expected = np.asarray(expected_close, dtype="datetime64[ns]").astype("datetime64[D]")
    return expected < created  # NaT compares False


def after_cut(values: np.ndarray, cut: np.datetime64) -> np.ndarray:
    """Times after the data cut (nothing in an export can be later than the export)."""
    return values > cut  # NaT compares False


#: What a score is refused with when the deal is already closed (the library and the API say the same).
ONLY_OPEN = "only open deals are scored"


def closed_by(closed_at: Any, when: Any) -> Any:
    """Deals already closed at ``when`` (closed at or before it): only open deals are scored.

    A deal's score is what dealscore says while the deal is open; once its outcome
    is known there is nothing to predict. Works on a column and ``when`` (NaT
    compares False: a deal without a close time is open) as on two single times.
    """
    return closed_at <= when


def outside_life(when: np.ndarray, created_at: np.ndarray, closed_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events before their deal was created, and after it closed (an event exactly at either is inside)."""
    return when < created_at, when > closed_at  # NaT compares False: unknown dates are never out of life


def duplicated(ids: np.ndarray) -> np.ndarray:
    """Rows repeating an id that must be unique (missing ids are never duplicates)."""
    if len(ids) <= _SMALL_IDS:
        values = ids.tolist()
        if len(set(values)) == len(values):
            # no value repeats at all (a request's few hundred ids, the common case): a set,
            # about five times cheaper than hashing through pandas at this size
            return np.zeros(len(values), dtype=bool)
    codes, uniques = pd.factorize(ids)
    # a trailing 0 is the count code -1 (a missing id) looks up
    counts = np.append(np.bincount(codes[codes >= 0], minlength=len(uniques)), 0)
    return counts[codes] > 1


__all__ = [
    "DATE_WINDOW_TEXT",
    "EARLIEST",
    "LATEST",
    "LOWEST_AMOUNT",
    "NUL",
    "ONLY_OPEN",
    "ZONE_SUFFIX",
    "after_cut",
    "close_date_before_created",
    "closed_before_created",
    "closed_by",
    "closed_without_outcome",
    "date_outside_window",
    "date_window",
    "duplicated",
    "holds_nul",
    "infinite",
    "missing",
    "negative",
    "outcome_while_open",
    "outside_date_window",
    "outside_life",
    "text_has_zone",
    "texts_have_zone",
    "too_long",
    "unknown_key",
    "unreadable",
    "zone_mix",
    "zone_mix_columns",
]
