"""Import any CRM's CSV export, driven by a YAML mapping file.

A mapping says, per contract table, which export file(s) feed it and how each
contract column is made from the file's columns: a rename, a value map (stage,
outcome and activity-type spellings), date formats, a flag that must be true, a
lookup in another file. The shipped example for a Salesforce export is
``dealscore/config/mappings/salesforce.yaml``; docs/importers.md describes every key.

The mapping is checked before any data is read (unknown keys, unknown contract
columns, required columns not mapped), and the export against the mapping
(columns the mapping names but the file lacks, values no map covers, dates no
format reads): each problem is one :class:`MappingError` or
:class:`~dealscore.errors.DataValidationError` that names the file, the column,
the offending ids and the fix.
"""


from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import parse_cut_at
from dealscore.data.importers.common import (
    LINE,
    SOURCE,
    TAKEN,
    ImportReport,
    ImportResult,
    TakenFrom,
    added_by_import,
    added_note,
    checked_history,
    file_columns,
    file_lines,
    finish,
    from_file,
    lines_by_value,
    raise_problems,
    read_source_csv,
)
from dealscore.data.importers.mapping import (
    SHIPPED_MAPPINGS,
    ColumnSpec,
    CsvMapping,
    MappingError,
    SourceSpec,
    load_mapping,
    normalise,
    suggest,
)
from dealscore.data.schema import DIRECTIONS, OUTCOMES, TABLES
from dealscore.errors import DataValidationError, DealscoreError
from dealscore.taxonomy import StageTaxonomy, default_taxonomy
from dealscore.times import naive_utc

_ZONE_SUFFIX = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
# contract columns whose values must come out of a closed vocabulary
_ENUMERATED = {("stage_history", "stage"), ("stage_truth", "stage"), ("activities", "type"),
               ("activities", "direction"), ("activities", "contact_role"), ("deals", "outcome")}
_UNMAPPED = object()


@dataclass
class _Context:
    """One import run: where files are, the report, the taxonomy, cached lookup files."""

    src: Path
    mapping: CsvMapping
    report: ImportReport
    taxonomy: StageTaxonomy
    cut_at: pd.Timestamp | None
    cache: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: every problem found so far: the import goes on to find the others, then reports all at once
    problems: list[DealscoreError] = field(default_factory=list)
    #: the first of the mapping's date formats that reads every date column of the export (:func:`_export_format`)
    export_format: str | None = None

    def read(self, name: str) -> pd.DataFrame:
        if name not in self.cache:
            self.cache[name] = read_source_csv(self.src / name, label=name, encoding=self.mapping.encoding,
                                               delimiter=self.mapping.delimiter)
            self.report.rows_read[name] = len(self.cache[name])
        return self.cache[name]


def _ids(frame: pd.DataFrame, mask: pd.Series, spec: SourceSpec) -> list[str]:
    """Up to five distinct offending rows: the table's id where it is mapped, else file line (and deal)."""
    id_target = TABLES[spec.table].id_column
    id_col = spec.columns[id_target].column if id_target in spec.columns else None
    deal_col = spec.columns["deal_id"].column if "deal_id" in spec.columns else None
    out: list[str] = []
    lines = file_lines(frame)
    for r in np.flatnonzero(mask.to_numpy())[:500]:
        if id_col and id_col in frame and not pd.isna(frame[id_col].iat[r]):
            label = str(frame[id_col].iat[r])
        elif deal_col and deal_col in frame and not pd.isna(frame[deal_col].iat[r]):
            label = f"line {lines[r]} (deal {frame[deal_col].iat[r]})"
        else:
            label = f"line {lines[r]}"
        if label not in out:
            out.append(label)
        if len(out) == 5:
            break
    return out


def _lines(frame: pd.DataFrame, mask: pd.Series) -> list[int]:
    """The export-file lines (header = line 1) of up to five offending rows."""
    return [int(n) for n in file_lines(frame)[mask.reindex(frame.index, fill_value=False).to_numpy()][:5]]


def _check_columns(ctx: _Context, spec: SourceSpec, frame: pd.DataFrame, where: str) -> bool:
    """Every source column the mapping names must be in the file; each one that is not is a problem."""
    have = file_columns(frame)
    needed = [(f"columns.{t}", c) for t, cs in spec.columns.items() for c in cs.source_columns]
    needed += [("where", c) for c in spec.where]
    ok = True
    for key, col in needed:
        if col not in have:
            ok = False
            ctx.problems.append(MappingError(
                f"column {col!r} is not in {spec.file}{suggest(col, have)}; the file has {have}",
                path=ctx.mapping.path, where=f"{where}.{key}",
                fix=f"correct the column name in the mapping or export {spec.file} with that column",
            ))
    return ok


def _unpivot(ctx: _Context, spec: SourceSpec, frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Wide columns → rows (see :class:`Unpivot`); empty cells make no row and are counted.

    Each row keeps its source row's line (column ``LINE``), so a message still names the export's line.
    """
    u = spec.unpivot
    assert u is not None
    pattern = re.compile(u.columns)
    have = file_columns(frame)
    matched = {c: (m.group(1) if m.groups() else c) for c in have if (m := pattern.fullmatch(c))}
    if not matched:
        ctx.problems.append(MappingError(
            f"no column of {spec.file} matches {u.columns!r}; the file has {have}",
            path=ctx.mapping.path, where=f"{where}.unpivot.columns",
            fix="correct the pattern (a regular expression matched against whole headers)",
        ))
        return frame.iloc[:0].assign(**{u.name: None, u.value: None})
    keep = [c for c in frame.columns if c not in matched]
    long = frame.melt(id_vars=keep, value_vars=list(matched), var_name=u.name, value_name=u.value,
                      ignore_index=False)
    long[u.name] = long[u.name].map(matched)
    empty = long[u.value].isna()
    ctx.report.drop(f"{spec.file}: empty cells of the {len(matched)} unpivoted columns (nothing recorded)",
                    int(empty.sum()))
    return long[~empty].sort_index(kind="stable").reset_index(drop=True)


def _per_value(s: pd.Series, fn: Callable[[str], Any], missing: Any = None) -> pd.Series:
    """Apply ``fn`` once per distinct value, ``missing`` for missing cells (fast on millions of rows)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [fn(str(u)) for u in uniques]
    mapped[-1] = missing  # code -1 (missing) picks the last slot
    return pd.Series(mapped[codes], index=s.index, dtype=object)


def _translate(s: pd.Series, fn: Callable[[str], Any]) -> tuple[pd.Series, pd.Series]:
    """Like :func:`_per_value` for a translation: the result and a mask of values ``fn`` could not map."""
    out = _per_value(s, fn)
    flags = _per_value(s, lambda v: fn(v) is _UNMAPPED, missing=False).astype(bool)
    return out.where(~flags, None), flags


def _lookup(ctx: _Context, spec: SourceSpec, cs: ColumnSpec, frame: pd.DataFrame, where: str) -> pd.Series:
    """Left-join one column of another file on the match keys (the first row wins on repeated keys)."""
    lk = cs.lookup
    assert lk is not None
    table = ctx.read(lk.file)
    have = file_columns(table)
    absent = [col for col in [*lk.match, lk.column] if col not in have]
    for col in absent:
        ctx.problems.append(MappingError(
            f"column {col!r} is not in {lk.file}{suggest(col, have)}; the file has {have}",
            path=ctx.mapping.path, where=f"{where}.columns.{cs.target}.lookup",
            fix=f"correct the column name in the mapping or export {lk.file} with that column",
        ))
    if absent:
        return pd.Series(None, index=frame.index, dtype=object)
    keys = list(lk.match)
    repeated = table.duplicated(keys)
    if repeated.any():
        ctx.report.notes.append(
            f"{lk.file}: {int(repeated.sum())} row(s) repeat a key {keys}; the first one was used for {cs.target}"
        )
    right = table.loc[~repeated, [*keys, lk.column]].rename(columns={lk.column: "__value__"})
    right.columns = [*(f"__k{i}__" for i in range(len(keys))), "__value__"]
    left = pd.DataFrame({f"__k{i}__": frame[src].to_numpy() for i, src in enumerate(lk.match.values())},
                        index=frame.index)
    joined = left.merge(right, how="left", on=[f"__k{i}__" for i in range(len(keys))])
    value = pd.Series(joined["__value__"].to_numpy(), index=frame.index)
    # pandas joins an empty key to an empty key; an empty key matches nothing
    return value.where(left.notna().all(axis=1), None)


def _raw_values(ctx: _Context, spec: SourceSpec, cs: ColumnSpec, frame: pd.DataFrame, where: str) -> pd.Series:
    """The source text for one contract column, before value maps and types."""
    if cs.has_constant:
        value = None if cs.constant is None else str(cs.constant)
        return pd.Series(value, index=frame.index, dtype=object)
    if cs.lookup is not None:
        s = _lookup(ctx, spec, cs, frame, where)
    else:
        assert cs.column is not None
        s = frame[cs.column]
        for fb in cs.fallback:
            s = s.where(s.notna(), frame[fb])
    if cs.first_of is not None:
        s = _first_listed(ctx, spec, cs, s)
    return s.astype(object).where(s.notna(), None)


def _first_listed(ctx: _Context, spec: SourceSpec, cs: ColumnSpec, s: pd.Series) -> pd.Series:
    """The first of the values a cell lists (``first_of``: their separator), the others counted in the report.

    A HubSpot deal associated with two companies exports "502;501": read whole, it named an account no export
    holds, and the import made one up with industry "unknown".
    """
    assert cs.first_of is not None
    text = s.astype("string")
    several = text.str.contains(cs.first_of, regex=False, na=False).astype(bool)
    ctx.report.fill(f"{spec.table}.{cs.target}: cells of {spec.file} (column {cs.column}) listing several "
                    f"values joined by {cs.first_of!r}, the first kept", int(several.sum()))
    parts = text.str.split(cs.first_of, regex=False)
    first = parts.map(lambda ps: next((p.strip() for p in ps if p.strip()), None) if isinstance(ps, list) else None)
    return first.astype(object)


def _truthy(ctx: _Context, s: pd.Series) -> pd.Series:
    return _per_value(s, lambda v: normalise(v) in ctx.mapping.true_values, missing=False).astype(bool)


def _apply_values(
    ctx: _Context, spec: SourceSpec, cs: ColumnSpec, frame: pd.DataFrame, s: pd.Series, where: str
) -> pd.Series:
    """Translate spellings with the value map (or the prefix map); an unmapped spelling is a problem
    unless ``other`` is set."""
    if cs.values is None and cs.prefixes is None:
        return s
    table = cs.values or {}
    prefixes = cs.prefixes or {}

    def one(v: str) -> Any:
        key = normalise(v)
        if key in table:
            return table[key]
        for prefix, value in prefixes.items():
            if key.startswith(prefix):
                return value
        return cs.other if cs.has_other else _UNMAPPED

    out, unmapped = _translate(s, one)
    if unmapped.any():
        seen = sorted({str(v) for v in s[unmapped]})[:5]
        ids = _ids(frame, unmapped, spec)
        key = "values" if cs.values is not None else "prefixes"
        ctx.problems.append(DataValidationError(
            f"{spec.file}, column {cs.column or cs.target} → {spec.table}.{cs.target}: {int(unmapped.sum())} row(s) "
            f"hold value(s) {seen} that the mapping's {key} do not cover (ids: {', '.join(ids)})",
            table=spec.table, column=cs.target, ids=ids,
            fix=f"add them under {where}.columns.{cs.target}.{key} in {ctx.mapping.path}, "
            "or set 'other:' for every value not listed",
        ))
    return out.astype(object).where(out.notna(), None)


def _parts_read_with(text: pd.Series, fmt: str) -> list[pd.Series]:
    """``text`` read with one date format, NaT where it does not fit; ``ValueError`` if the format is unusable.

    ISO 8601 values with an offset and without one are read apart (one part each),
    since pandas will not hold both in one column: the first part is zone-aware.
    """
    if fmt.upper() == "ISO8601":
        zoned = text.str.contains(_ZONE_SUFFIX, regex=True, na=False).astype(bool)
        return [pd.to_datetime(text[zoned], format="ISO8601", errors="coerce", utc=True),
                pd.to_datetime(text[~zoned], format="ISO8601", errors="coerce")]
    return [pd.to_datetime(text, format=fmt, errors="coerce")]


def _read_with(
    ctx: _Context, cs: ColumnSpec, text: pd.Series, fmt: str, where: str, kind: str
) -> pd.Series | None:
    """``text`` read with one date format (NaT where it does not fit), naive UTC (a ``date`` column: the calendar
    day as written, :func:`_to_utc`); ``None`` if unusable."""
    try:
        parts = _parts_read_with(text, fmt)
    except ValueError as exc:
        ctx.problems.append(MappingError(
            f"date format {fmt!r} is not usable ({exc})", path=ctx.mapping.path,
            where=f"{where}.columns.{cs.target}.format",
            fix="use strftime codes such as '%m/%d/%Y %I:%M %p', or ISO8601"))
        return None
    if len(parts) == 1:
        return _to_utc(parts[0], ctx, kind)
    return pd.concat([_to_utc(part, ctx, kind) for part in parts]).reindex(text.index)


def _parse_dates(
    ctx: _Context, spec: SourceSpec, cs: ColumnSpec, frame: pd.DataFrame, s: pd.Series, where: str, kind: str,
) -> pd.Series:
    """Read dates with the column's (else the mapping's) formats; result naive UTC.

    An export writes its dates one way: the first of the mapping's formats that
    reads every value of *every* date column the mapping's formats apply to is tried
    first (:func:`_export_format`), so a column whose values all fit two formats
    (``03/04/2024``) is read like the export's other dates (``14/02/2024``: day first).
    Otherwise the formats are chosen **per column**, not per value: the first format that
    reads every value of the column is used for all of them. Tried value by value,
    ``["%m/%d/%Y", "%d/%m/%Y"]`` would read ``03/04/2024`` month-first and
    ``18/04/2024`` day-first in the same column, silently mixing two calendars.
    Only when no single format reads the whole column (a column that mixes dates
    with and without a time) are values read one by one, and then a value that two
    listed formats read *differently* is refused as ambiguous. The choice is noted
    in the import report.

    Values carrying an offset are converted to UTC; values without one are in the
    mapping's ``timezone``. With ``end_of_day``, a date without a time means "by the
    end of that day" (never later than the data cut), the safe reading for a close date.
    """
    text = s.astype("string").str.strip()
    text = text.mask(text == "")
    formats = list(cs.formats or ctx.mapping.date_formats)
    if not cs.formats and ctx.export_format is not None:  # the export's one format first (it reads this column)
        formats = [ctx.export_format, *(f for f in formats if f != ctx.export_format)]
    present = text.notna()
    sub = text[present]
    readings: list[tuple[str, pd.Series]] = []
    for fmt in formats:
        parsed = _read_with(ctx, cs, sub, fmt, where, kind)
        if parsed is not None:
            readings.append((fmt, parsed))
    label = f"{spec.file}, column {cs.column or cs.target} → {spec.table}.{cs.target}"
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    whole = next((fmt for fmt, parsed in readings if parsed.notna().all()), None)
    if whole is not None:
        out[sub.index] = dict(readings)[whole]
        if len(formats) > 1 and len(sub) and whole != ctx.export_format:  # the export's format is noted once
            ctx.report.notes.append(f"{label}: dates read with {whole!r} (the first of the date formats that "
                                    "reads every value)")
    elif readings:
        first = pd.Series(pd.NaT, index=sub.index, dtype="datetime64[ns]")
        ambiguous = pd.Series(False, index=sub.index)
        for _, parsed in readings:
            ambiguous |= first.notna() & parsed.notna() & (parsed != first)
            first = first.where(first.notna(), parsed)
        out[sub.index] = first.where(~ambiguous)
        if ambiguous.any():
            mask = pd.Series(False, index=s.index)
            mask[ambiguous[ambiguous].index] = True
            lines = ", ".join(str(n) for n in _lines(frame, mask))
            _date_problem(ctx, spec, cs, frame, text, mask,
                          lambda n, examples, ids: f"{label}: {n} value(s) such as {examples} (line(s) {lines}) are "
                          f"ambiguous: no single date format of {formats} reads the whole column, and more than one "
                          f"reads these values differently (ids: {ids})",
                          f"keep only the export's own format in date_formats (or set {where}.columns.{cs.target}"
                          f".format) in {ctx.mapping.path}, or correct the values that are written the other way")
        if len(formats) > 1 and len(sub):
            ctx.report.notes.append(f"{label}: no single date format reads every value; each value read with "
                                    f"the first of {formats} that fits")
    todo = present & out.isna()
    if readings:
        unambiguous = pd.Series(True, index=s.index)
        if whole is None:
            unambiguous[sub.index] = ~ambiguous
        todo &= unambiguous
    if todo.any():
        hint = guess_date_format(str(text[todo].iloc[0]))
        _date_problem(ctx, spec, cs, frame, text, todo,
                      lambda n, examples, ids: f"{label}: {n} value(s) such as {examples} match none of the date "
                      f"formats {formats} (ids: {ids})",
                      f"add the export's format to date_formats (or {where}.columns.{cs.target}.format) "
                      f"in {ctx.mapping.path}, e.g. {hint!r}")
    if cs.end_of_day:
        date_only = text.notna() & out.notna() & ~text.str.contains(":", regex=False, na=False).astype(bool)
        late = out[date_only] + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
        if ctx.cut_at is not None:
            late = late.where(late <= ctx.cut_at, ctx.cut_at)
        out[date_only[date_only].index] = late
    return out


def _to_utc(parsed: pd.Series, ctx: _Context, kind: str) -> pd.Series:
    """Zone-aware → UTC; naive → localised in the mapping's time zone first. Always naive UTC ns.

    A ``date`` column (an expected close date) holds a calendar day, not an instant: it keeps the day as
    written, offset or not. Localised as a midnight in Tokyo or Berlin and turned into UTC, 18 March became
    17 March once the contract's writer kept the date.
    """
    if kind == "date":
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
        return parsed.astype("datetime64[ns]")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return naive_utc(parsed).astype("datetime64[ns]")
    parsed = parsed.astype("datetime64[ns]")
    if ctx.mapping.timezone != "UTC" and len(parsed):
        parsed = naive_utc(parsed.dt.tz_localize(
            ctx.mapping.timezone, ambiguous=np.zeros(len(parsed), dtype=bool), nonexistent="shift_forward"))
    return parsed


def _numbers(ctx: _Context, s: pd.Series) -> pd.Series:
    """Drop thousands separators and normalise the decimal mark, when the mapping names them."""
    if ctx.mapping.thousands is None and ctx.mapping.decimal == ".":
        return s
    text = s.astype("string")
    if ctx.mapping.thousands:
        text = text.str.replace(ctx.mapping.thousands, "", regex=False)
    if ctx.mapping.decimal != ".":
        text = text.str.replace(ctx.mapping.decimal, ".", regex=False)
    return text.astype(object).where(text.notna(), None)


@dataclass
class _Part:
    """One converted export file: its contract columns (and each row's origin), its mapping and the source rows
    (for ids)."""

    frame: pd.DataFrame
    spec: SourceSpec
    source: pd.DataFrame


def _date_problem(ctx: _Context, spec: SourceSpec, cs: ColumnSpec, frame: pd.DataFrame, text: pd.Series,
                  mask: pd.Series, message: Callable[[int, str, str], str], fix: str) -> None:
    """Record the date values of ``mask`` as one problem; ``message(count, examples, ids)`` says what is wrong."""
    ids = _ids(frame, mask, spec)
    examples = ", ".join(repr(str(v)) for v in text[mask].head(3))
    ctx.problems.append(DataValidationError(
        message(int(mask.sum()), examples, ", ".join(ids)),
        table=spec.table, column=cs.target, ids=ids, fix=fix))


def _reads_all(text: pd.Series, fmt: str) -> bool:
    """Whether one date format reads every value of ``text`` (stripped, non-empty); quiet on unusable formats
    (:func:`_read_with` reports those when the column is read)."""
    try:
        return all(bool(part.notna().all()) for part in _parts_read_with(text, fmt))
    except ValueError:
        return False


def _export_format(ctx: _Context) -> str | None:
    """The first of the mapping's date formats that reads every value of every date column it applies to.

    A CRM writes all its dates in one locale. Chosen column by column, a column whose
    values happen to fit both ``%m/%d/%Y`` and ``%d/%m/%Y`` (every day at most 12) would
    be read month first while the export's other columns prove it writes day first.
    Columns with their own ``format``, looked-up or unpivoted ones are left to their
    own choice. ``None`` when no single format reads them all (or the mapping lists one).
    """
    formats = list(ctx.mapping.date_formats)
    if len(formats) < 2:
        return None
    columns: list[pd.Series] = []
    for specs in ctx.mapping.sources.values():
        for spec in specs:
            if spec.unpivot is not None or not (ctx.src / spec.file).is_file():
                continue
            kinds = {c.name: c.kind for c in TABLES[spec.table].columns}
            frame = ctx.read(spec.file)
            for target, cs in spec.columns.items():
                if kinds.get(target) not in ("timestamp", "date"):
                    continue
                for one in (cs.alternatives or (cs,)):
                    if one.formats or one.lookup is not None or one.column not in frame.columns:
                        continue
                    text = frame[one.column].astype("string").str.strip()
                    columns.append(text[text.notna() & (text != "")])
    if not columns:
        return None
    chosen = next((f for f in formats if all(_reads_all(c, f) for c in columns)), None)
    if chosen is not None:
        ctx.report.notes.append(f"dates read with {chosen!r}: the first of the date formats {formats} that reads "
                                "every date column of the export")
    return chosen


def _column_values(
    ctx: _Context, spec: SourceSpec, cs: ColumnSpec, frame: pd.DataFrame, where: str, kind: str
) -> pd.Series:
    """One contract column of one file: read, flag-filtered, value-mapped, filled and typed.

    A list of alternatives is tried in order, row by row: the first value wins.
    """
    if cs.alternatives:
        out = None
        for alt in cs.alternatives:
            s = _column_values(ctx, spec, alt, frame, where, kind)
            out = s if out is None else out.where(out.notna(), s)
        assert out is not None
        return out
    s = _raw_values(ctx, spec, cs, frame, where)
    if cs.only_if is not None:
        s = s.where(_truthy(ctx, frame[cs.only_if]), None)
    present = s.notna()
    s = _apply_values(ctx, spec, cs, frame, s, where)
    if cs.missing is not None:
        empty = s.isna() & (~present if cs.only_if is None else ~present & _truthy(ctx, frame[cs.only_if]))
        ctx.report.fill(f"{spec.table}.{cs.target}: empty in {spec.file}, written as {cs.missing!r}",
                        int(empty.sum()))
        s = s.where(~empty, str(cs.missing))
    if kind in ("timestamp", "date"):
        return _parse_dates(ctx, spec, cs, frame, s, where, kind)
    if kind in ("int", "float"):
        return _numbers(ctx, s)
    return s


def _convert_source(ctx: _Context, spec: SourceSpec, index: int) -> _Part | None:
    """One export file → the contract columns it feeds (typed dates, mapped values).

    ``None`` when the file lacks columns the mapping names (each one is a problem in ``ctx``).
    """
    where = f"tables.{spec.table}" + (f"[{index}]" if index else "")
    frame = ctx.read(spec.file)
    if spec.unpivot is not None:
        frame = _unpivot(ctx, spec, frame, where)
    if not _check_columns(ctx, spec, frame, where):
        return None
    for col, allowed in spec.where.items():
        keep = _per_value(frame[col], lambda v, a=allowed: normalise(v) in a, missing=False).astype(bool)
        ctx.report.drop(f"{spec.file}: {col} not in {list(allowed)}", int((~keep).sum()))
        frame = frame[keep]
    kinds = {c.name: c.kind for c in TABLES[spec.table].columns}
    out = pd.DataFrame(index=frame.index)
    for target, cs in spec.columns.items():
        out[target] = _column_values(ctx, spec, cs, frame, where, kinds[target])
    if spec.distinct:
        id_col = TABLES[spec.table].id_column
        assert id_col is not None
        repeated = out[id_col].notna() & out.duplicated(id_col)
        ctx.report.drop(f"{spec.file}: rows repeating a {spec.table}.{id_col} (distinct: the first row is kept)",
                        int(repeated.sum()))
        out, frame = out[~repeated], frame[~repeated]
    return _Part(frame=from_file(out, spec.file, file_lines(frame)), spec=spec, source=frame)


def _closed_vocabulary(ctx: _Context, table: str, target: str) -> dict[str, str | None]:
    """Accepted spellings (lower-case) → canonical value for an enumerated contract column."""
    tax = ctx.taxonomy
    if target == "stage":
        vocab: dict[str, str | None] = dict(tax.stage_lookup())
        vocab |= {a: "won" for a in tax.closed_won_aliases} | {a: "lost" for a in tax.closed_lost_aliases}
        return vocab | {o: o for o in OUTCOMES}
    if target == "type":
        return {t: t for t in tax.activity_types} | dict(tax.activity_aliases)
    if target == "direction":
        return {d: d for d in DIRECTIONS} | tax.direction_lookup()
    if target == "contact_role":
        return dict(tax.role_lookup())
    return {o: o for o in OUTCOMES} | {a: "won" for a in tax.closed_won_aliases} | {
        a: "lost" for a in tax.closed_lost_aliases}


def _canonical(ctx: _Context, parts: list[_Part], table: str) -> None:
    """Check enumerated columns against the taxonomy (naming source rows) and write canonical names."""
    for p in parts:
        part, spec, frame = p.frame, p.spec, p.source
        for target in list(part.columns):
            if (table, target) not in _ENUMERATED:
                continue
            vocab = _closed_vocabulary(ctx, table, target)
            canon, bad = _translate(part[target], lambda v, voc=vocab: voc.get(normalise(v), _UNMAPPED))
            if bad.any():
                seen = sorted({str(v) for v in part.loc[bad, target]})[:5]
                ids = _ids(frame, bad, spec)
                cs = spec.columns[target]
                column = cs.column or (cs.alternatives[0].column if cs.alternatives else None) or target
                ctx.problems.append(DataValidationError(
                    f"{spec.file}, column {column} → {table}.{target}: {int(bad.sum())} row(s) hold "
                    f"{seen}, which is not a configured {target} (ids: {', '.join(ids)})",
                    table=table, column=target, ids=ids,
                    fix=f"map them under tables.{table}.columns.{target}.values in {ctx.mapping.path} "
                    f"onto one of {sorted(set(v for v in vocab.values() if v))}, or add aliases to the taxonomy",
                ))
            part[target] = canon.astype(object).where(canon.notna(), None)


def _close_from_stage_history(
    ctx: _Context, deals: pd.DataFrame, sh: pd.DataFrame, enabled: bool, outcome_mapped: bool
) -> pd.DataFrame:
    """Take closing rows (stage won/lost) out of stage_history; optionally date each close by its row.

    A CRM's stage history often ends with a "Closed Won" row: that is an outcome,
    not a stage. Its time is when the CRM recorded the close, which is more exact
    than a close *date*, so with ``close_from_stage_history`` it becomes
    ``closed_at`` of deals whose outcome agrees. When the mapping gives deals no
    outcome column, the row's outcome is the deal's outcome; when it does, the
    deals file (the current state) decides whether a deal is closed.
    """
    closing = sh["stage"].isin(OUTCOMES)
    ctx.report.drop("stage_history: rows that close the deal (won/lost), used as the deal's outcome instead",
                    int(closing.sum()))
    if not (enabled and closing.any()):
        return sh[~closing]
    ordered = sh.sort_values(["deal_id", "changed_at"], kind="stable")
    last = ordered.groupby("deal_id", sort=False).tail(1)
    last = last[last["stage"].isin(OUTCOMES)].set_index("deal_id")
    if last.empty:  # every close was reopened (and pandas cannot map through an empty datetime column)
        return sh[~closing]
    row_outcome = deals["deal_id"].map(last["stage"])
    row_time = deals["deal_id"].map(last["changed_at"])
    if "outcome" not in deals:
        deals["outcome"] = None
    if "closed_at" not in deals:
        deals["closed_at"] = pd.Series(pd.NaT, index=deals.index, dtype="datetime64[ns]")
    fill_outcome = deals["outcome"].isna() & row_outcome.notna() & (not outcome_mapped)
    ctx.report.fill("deals.outcome: empty, taken from the deal's closing stage-history row",
                    int(fill_outcome.sum()))
    deals.loc[fill_outcome, "outcome"] = row_outcome[fill_outcome]
    use_time = row_time.notna() & (deals["outcome"] == row_outcome)
    ctx.report.fill("deals.closed_at: the time of the deal's closing stage-history row",
                    int(use_time.sum()))
    deals.loc[use_time, "closed_at"] = row_time[use_time]
    _note_taken_from(deals, last, fill_outcome, use_time)
    return sh[~closing]


def _note_taken_from(deals: pd.DataFrame, last: pd.DataFrame, outcome: pd.Series, closed_at: pd.Series) -> None:
    """Note on each deal row the stage-history line its outcome or closed_at was taken from.

    A contract error in such a value (closed before the deal was created, after the
    data cut) may lie in that line rather than in the deal's own.
    """
    taken = (outcome | closed_at).to_numpy()
    if not taken.any():
        return
    ids = deals["deal_id"][taken]
    kinds = {(True, False): ("outcome",), (False, True): ("closed_at",), (True, True): ("outcome", "closed_at")}
    columns = (kinds[pair] for pair in zip(outcome.to_numpy()[taken], closed_at.to_numpy()[taken], strict=True))
    notes = np.full(len(deals), None, dtype=object)
    notes[taken] = np.fromiter(  # one object per row (a list would be read as a second dimension)
        map(TakenFrom, columns, ids.map(last[SOURCE]), ids.map(last[LINE]).astype("int64")),
        dtype=object, count=len(ids))
    deals[TAKEN] = notes


def _refuse_missing_files(folder: Path, m: CsvMapping) -> None:
    """Every export file the mapping's tables name, or one error listing all that are missing.

    One at a time, an empty folder took three runs to learn it lacked three files. A table the export does
    not have at all (no activities in it) is left out of the mapping, not given an empty file: the fix says so.
    """
    missing: dict[str, list[str]] = {}
    for table, specs in m.sources.items():
        for spec in specs:
            if not (folder / spec.file).is_file():
                missing.setdefault(spec.file, []).append(table)
    if not missing:
        return
    listed = ", ".join(f"{f} (table {', '.join(t)})" for f, t in missing.items())
    leave_out = []
    for table in sorted({t for tables in missing.values() for t in tables if t not in ("accounts", "deals")}):
        files = [spec.file for spec in m.sources[table]]
        gone = [f for f in files if f in missing]
        # a table fed by several files keeps the others: only the missing file's entry goes
        leave_out.append(f"tables.{table}" if len(gone) == len(files) else
                         f"the entry of {', '.join(gone)} under tables.{table}")
    drop = f"; if the export has none, remove {' and '.join(leave_out)} from {m.path}" if leave_out else ""
    raise DataValidationError(
        f"the export folder {folder} lacks {len(missing)} file(s) the mapping names: {listed}",
        table=next(iter(missing.values()))[0],
        fix=f"pass the export folder that holds them{drop}")


def import_csv(
    src: str | Path, mapping: str | Path | CsvMapping | Mapping[str, Any], *,
    cut_at: str | pd.Timestamp | None = None, taxonomy: StageTaxonomy | None = None,
) -> ImportResult:
    """Convert the export folder ``src`` into a contract history with a mapping (validated, not written).

    ``mapping`` is a YAML path, a shipped mapping's name, a parsed :class:`CsvMapping`
    or the YAML structure as a dict. ``cut_at`` (the export time) overrides the
    mapping's; without either, the latest time anything was recorded in the export
    is taken as its data cut (see :func:`_latest_record`).
    """
    if isinstance(mapping, CsvMapping):
        m = mapping
    elif isinstance(mapping, Mapping):
        m = CsvMapping.from_dict(dict(mapping))
    else:
        m = load_mapping(mapping)
    folder = Path(src)
    if not folder.is_dir():
        raise DataValidationError(
            f"export folder {folder} does not exist or is not a folder",
            fix="pass the folder that holds the files the mapping names: "
            + ", ".join(sorted({s.file for specs in m.sources.values() for s in specs})),
        )
    _refuse_missing_files(folder, m)
    cut_raw = cut_at if cut_at is not None else m.cut_at
    cut = parse_cut_at(cut_raw)
    report = ImportReport(importer=f"csv ({m.name})", source=str(folder))
    ctx = _Context(src=folder, mapping=m, report=report, taxonomy=taxonomy or default_taxonomy(), cut_at=cut)
    ctx.export_format = _export_format(ctx)

    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        specs = m.sources.get(name)
        if not specs:
            continue
        parts = [p for i, spec in enumerate(specs) if (p := _convert_source(ctx, spec, i)) is not None]
        _canonical(ctx, parts, name)
        if parts:
            tables[name] = pd.concat([p.frame for p in parts], ignore_index=True)
    if "accounts" not in tables or "deals" not in tables:  # nothing to go on with: say what is wrong so far
        raise_problems(ctx.problems, "the export")

    if "stage_history" not in tables:
        report.notes.append("no stage_history mapped: the history has no stage changes")
        tables["stage_history"] = pd.DataFrame({c: pd.Series(dtype=object) for c in ("deal_id", "stage",
                                                                                       "changed_at")})
    if "activities" not in tables:
        report.notes.append("no activities mapped: the history has no touchpoints")
        tables["activities"] = pd.DataFrame({c: pd.Series(dtype=object) for c in ("deal_id", "occurred_at",
                                                                                    "type")})
    tables["stage_history"] = _distinct_changes(ctx, tables["stage_history"])
    deals_spec = m.sources["deals"][0]
    tables["stage_history"] = _close_from_stage_history(
        ctx, tables["deals"], tables["stage_history"], any(s.close_from_stage_history for s in m.sources["deals"]),
        outcome_mapped=any("outcome" in s.columns for s in m.sources["deals"]),
    )
    known = set(tables["deals"]["deal_id"].dropna())
    for name in ("stage_history", "activities", "stage_truth"):
        specs = m.sources.get(name) or []
        if name in tables and any(s.drop_unknown_deals for s in specs):
            frame = tables[name]
            unknown = ~frame["deal_id"].isin(known)
            report.drop(f"{name}: rows whose deal_id is not a deal in {deals_spec.file}", int(unknown.sum()))
            tables[name] = frame[~unknown]
    if any(s.create_missing for s in m.sources["accounts"]):
        accounts = tables["accounts"]
        missing = sorted(set(tables["deals"]["account_id"].dropna()) - set(accounts["account_id"].dropna()))
        report.fill("accounts: account ids used by deals but absent from the accounts export, added with "
                    "industry 'unknown'", len(missing))
        if missing:
            named = lines_by_value(tables["deals"], "account_id", missing)
            added = added_by_import(
                pd.DataFrame({"account_id": missing, "industry": "unknown"}),
                [added_note("an account id deals name but the accounts export lacks", named[a]) for a in missing])
            tables["accounts"] = pd.concat([accounts, added], ignore_index=True)
    if cut is None:
        cut = _latest_record(tables)
        report.notes.append(f"cut_at {cut}: the latest time anything was recorded in the export "
                            "(pass --cut-at with the export time to be exact)")
    acts = tables["activities"]
    if len(acts):
        future = pd.Series(acts["occurred_at"] > cut, index=acts.index).fillna(False).astype(bool)
        report.drop("activities: dated after the data cut (scheduled, not happened yet)", int(future.sum()))
        tables["activities"] = acts[~future]
    _note_missing_directions(report, tables["activities"])
    if ctx.problems:
        _raise_all(ctx, tables, cut)
    return finish(tables, report, cut_at=cut, taxonomy=ctx.taxonomy, meta={"source": m.name})


def _distinct_changes(ctx: _Context, sh: pd.DataFrame) -> pd.DataFrame:
    """The same stage change given twice (a wide "date entered" column and the current stage) is kept once."""
    if not len(sh):
        return sh
    key = [c for c in ("deal_id", "stage", "changed_at") if c in sh]
    repeated = sh.duplicated(key)
    ctx.report.drop("stage_history: the same change (deal, stage, time) given twice, kept once", int(repeated.sum()))
    return sh[~repeated]


def _note_missing_directions(report: ImportReport, acts: pd.DataFrame) -> None:
    """Say how many emails and calls have no direction: they count as neither a reply nor an outreach."""
    if not len(acts) or "type" not in acts:
        return
    talk = acts["type"].isin(["email", "call"])
    direction = acts["direction"] if "direction" in acts else pd.Series(None, index=acts.index, dtype=object)
    missing = int((talk & direction.isna()).sum())
    if missing:
        report.notes.append(
            f"{missing} of {int(talk.sum())} emails and calls have no direction: they count as neither a reply "
            "nor an outreach (map a direction column, or a subject-prefix rule, to use them)")


def _raise_all(ctx: _Context, tables: dict[str, pd.DataFrame], cut: pd.Timestamp | None) -> None:
    """Raise every problem the import found, plus the contract problems of the tables it could build.

    Cells the import could not read are empty in ``tables``; a contract problem in the
    same table and column is the same problem seen again, so it is left out.
    """
    problems = list(ctx.problems)
    seen = {(getattr(p, "table", None), getattr(p, "column", None)) for p in problems}
    try:
        checked_history(tables, cut_at=cut, taxonomy=ctx.taxonomy)
    except DataValidationError as exc:
        problems += [p for p in exc.problems or [exc]
                     if (getattr(p, "table", None), getattr(p, "column", None)) not in seen]
    raise_problems(problems, "the export")


def guess_date_format(example: str) -> str:
    """A strftime format that reads ``example``, time part included: the hint in a date error.

    ``'28.11.2025 14:20'`` → ``'%d.%m.%Y %H:%M'``; ``'3/5/2024 2:22 PM'`` → ``'%m/%d/%Y %I:%M %p'``.
    Day first unless the first number cannot be a day or the separator is ``/`` (US exports)
    and the first number could be a month.
    """
    m = re.fullmatch(
        r"\s*(\d{1,4})([./-])(\d{1,2})\2(\d{2,4})(?:([ T])(\d{1,2}):(\d{2})(:\d{2})?(\.\d+)?\s*([AaPp][Mm])?)?\s*",
        example)
    if not m:
        return "%d.%m.%Y %H:%M"
    first, sep, _, last, tsep, _, _, secs, frac, ampm = m.groups()
    year = "%Y" if len(last) == 4 else "%y"
    if len(first) == 4:
        date = f"%Y{sep}%m{sep}%d"
    elif sep == "/" and int(first) <= 12:
        date = f"%m{sep}%d{sep}{year}"
    else:
        date = f"%d{sep}%m{sep}{year}"
    if tsep is None:
        return date
    clock = ("%I" if ampm else "%H") + ":%M" + (":%S" if secs else "") + (".%f" if frac else "")
    return f"{date}{tsep}{clock}" + (" %p" if ampm else "")


def _latest_record(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The export cannot be older than the last thing recorded in it.

    Activity *dates* are left out where a record time exists, because CRMs hold
    meetings scheduled for next week: those say nothing about when the export ran.
    """
    found: list[pd.Timestamp] = []

    def take(frame: pd.DataFrame | None, col: str, where: pd.Series | None = None) -> None:
        if frame is None or col not in frame or not len(frame):
            return
        s = frame[col] if where is None else frame.loc[where, col]
        if pd.api.types.is_datetime64_any_dtype(s) and s.notna().any():
            found.append(s.max())

    for name, col in (("accounts", "created_at"), ("deals", "created_at"), ("deals", "closed_at"),
                      ("stage_history", "changed_at"), ("stage_history", "recorded_at"),
                      ("activities", "recorded_at")):
        take(tables.get(name), col)
    acts = tables.get("activities")
    if acts is not None and "occurred_at" in acts:
        take(acts, "occurred_at", acts["recorded_at"].isna() if "recorded_at" in acts else None)
    if not found:
        raise DataValidationError(
            "the export holds no timestamps, so its data cut is unknown", table="deals", column="created_at",
            fix="map deals.created_at, or pass --cut-at with the export time",
        )
    return max(found)


__all__ = ["SHIPPED_MAPPINGS", "CsvMapping", "MappingError", "guess_date_format", "import_csv", "load_mapping"]
