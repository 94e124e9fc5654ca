"""The CSV importer's mapping file: its YAML parsed and checked key by key into a :class:`CsvMapping`.

The mapping is checked before any data is read (unknown keys, unknown contract
columns, required columns not mapped); each problem is one :class:`MappingError`
naming the key and the fix. Applying a mapping to an export lives in
:mod:`dealscore.data.importers.csv_mapping`.
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from dealscore.data.schema import TABLES
from dealscore.errors import ConfigError

#: How an export's cells are quoted, stated beside the mapping's delimiter rule and given to both readers of
#: a file: pandas, which reads the cells, and the csv module, which finds the lines the records start on.
#: Both must split the file into the same records; a quoted cell may hold delimiters, line breaks and
#: doubled quotes.
QUOTING: dict[str, Any] = {"quotechar": '"', "quoting": csv.QUOTE_MINIMAL, "doublequote": True,
                           "escapechar": None, "skipinitialspace": False}

SHIPPED_MAPPINGS = files("dealscore.config") / "mappings"

MAPPING_KEYS = {"name", "description", "tables", "date_formats", "timezone", "csv", "true_values", "numbers",
                 "cut_at"}
SOURCE_KEYS = {"file", "columns", "where", "drop_unknown_deals", "create_missing", "close_from_stage_history",
                "unpivot", "distinct"}
COLUMN_KEYS = {"column", "fallback", "constant", "values", "other", "missing", "format", "only_if", "end_of_day",
                "lookup", "prefixes", "first_of"}
LOOKUP_KEYS = {"file", "match", "column"}
_UNPIVOT_KEYS = {"columns", "name", "value"}
#: Names of the shipped mappings kept for mappings written before the Salesforce one was split in two.
_MAPPING_ALIASES = {"salesforce": "salesforce-api"}


class MappingError(ConfigError):
    """The mapping file is wrong, or does not fit the export it is applied to."""

    http_status = 400

    def __init__(self, message: str, *, path: str, where: str, fix: str) -> None:
        self.where = where
        super().__init__(f"mapping {path}, {where}: {message}. Fix: {fix}", path=path, where=where, fix=fix)


def normalise(value: object) -> str:
    """How source values are compared with a value map's keys: stripped, case-insensitive."""
    return str(value).strip().casefold()


@dataclass(frozen=True)
class Lookup:
    """Take a column from another file by matching key columns (e.g. a contact's role on a deal)."""

    file: str
    match: dict[str, str]  # lookup file's column -> this source file's column
    column: str


@dataclass(frozen=True)
class Unpivot:
    """Turn wide columns (one per stage, say) into rows: HubSpot's ``Date entered "<stage> (...)"`` columns.

    Every column whose header fully matches ``columns`` becomes one row per source
    row, holding the header's first captured group (or the whole header) in the new
    column ``name`` and the cell in the new column ``value``; empty cells make no row.
    """

    columns: str
    name: str
    value: str


@dataclass(frozen=True)
class ColumnSpec:
    """How one contract column is made from the source file.

    ``alternatives`` holds the specs of a list-valued mapping entry: the first one
    that gives a value wins, row by row (the direction from a call type, else from
    the subject's prefix).
    """

    target: str
    column: str | None = None
    fallback: tuple[str, ...] = ()
    constant: Any = None
    has_constant: bool = False
    values: dict[str, Any] | None = None
    other: Any = None
    has_other: bool = False
    missing: Any = None
    formats: tuple[str, ...] | None = None
    only_if: str | None = None
    end_of_day: bool = False
    lookup: Lookup | None = None
    prefixes: dict[str, Any] | None = None
    alternatives: tuple[ColumnSpec, ...] = ()
    #: a cell may list several values joined by this separator ("502;501"): the first is kept (and counted)
    first_of: str | None = None

    @property
    def source_columns(self) -> list[str]:
        """Columns this spec reads from its own source file."""
        cols = [c for c in (self.column, *self.fallback, self.only_if) if c]
        if self.lookup:
            cols += list(self.lookup.match.values())
        for alt in self.alternatives:
            cols += [c for c in alt.source_columns if c not in cols]
        return cols


@dataclass(frozen=True)
class SourceSpec:
    """One export file feeding one contract table."""

    table: str
    file: str
    columns: dict[str, ColumnSpec]
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    drop_unknown_deals: bool = False
    create_missing: bool = False
    close_from_stage_history: bool = False
    unpivot: Unpivot | None = None
    distinct: bool = False


@dataclass(frozen=True)
class CsvMapping:
    """A parsed, checked mapping file."""

    path: str
    name: str
    sources: dict[str, list[SourceSpec]]
    date_formats: tuple[str, ...] = ("ISO8601",)
    timezone: str = "UTC"
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    true_values: frozenset[str] = frozenset({"true", "1", "yes", "y", "t"})
    thousands: str | None = None
    decimal: str = "."
    cut_at: str | None = None

    @classmethod
    def from_dict(cls, raw: Any, path: str = "<mapping>") -> CsvMapping:
        """Check the YAML structure key by key, so a typo is named where it is."""
        return _MappingParser(path).mapping(raw)

    @classmethod
    def load(cls, path_or_name: str | Path) -> CsvMapping:
        """Load a mapping file, or a shipped mapping by name (``salesforce-api``, ``hubspot``, ...)."""
        p = Path(path_or_name)
        if not p.is_file():
            name = _MAPPING_ALIASES.get(str(path_or_name), str(path_or_name))
            shipped = SHIPPED_MAPPINGS / f"{name}.yaml"
            if "/" not in str(path_or_name) and shipped.is_file():
                return cls.from_dict(_yaml(shipped.read_text(encoding="utf-8"), str(path_or_name)), str(path_or_name))
            names = sorted(f.name.removesuffix(".yaml") for f in SHIPPED_MAPPINGS.iterdir() if f.name.endswith(".yaml"))
            raise MappingError(
                "file does not exist", path=str(p), where="file",
                fix=f"pass the path of your mapping YAML, or the name of a shipped one: {names}",
            )
        return cls.from_dict(_yaml(p.read_text(encoding="utf-8"), str(p)), str(p))


def _yaml(text: str, path: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"not valid YAML ({exc})", path=path, where="file",
                           fix="fix the YAML syntax (indentation, quotes, colons)") from exc


def suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _MappingParser:
    """Turns the YAML structure into a :class:`CsvMapping`, naming the key of each problem."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, message: str, fix: str) -> MappingError:
        return MappingError(message, path=self.path, where=where, fix=fix)

    def keys(self, where: str, raw: Any, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(where, f"expected a mapping of keys, got {type(raw).__name__}",
                            f"write {where} as 'key: value' lines; allowed keys: {sorted(allowed)}")
        unknown = [str(k) for k in raw if str(k) not in allowed]
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r}{suggest(unknown[0], sorted(allowed))}",
                            f"use only {sorted(allowed)}")
        return {str(k): v for k, v in raw.items()}

    def mapping(self, raw: Any) -> CsvMapping:
        top = self.keys("top level", raw, MAPPING_KEYS)
        if "tables" not in top:
            raise self.fail("top level", "no 'tables' key",
                            "add 'tables:' with accounts, deals, stage_history and (optionally) activities")
        tables = self.keys("tables", top["tables"], set(TABLES))
        for required in ("accounts", "deals"):
            if required not in tables:
                raise self.fail("tables", f"table {required} is not mapped",
                                f"add 'tables.{required}' naming the export file and its columns")
        sources = {name: [self.source(name, i, s) for i, s in enumerate(self.as_list(name, spec))]
                   for name, spec in tables.items()}
        csv = self.keys("csv", top.get("csv") or {}, {"encoding", "delimiter"})
        delimiter = str(csv.get("delimiter", ","))
        if len(delimiter) != 1 or delimiter in QUOTING["quotechar"] + "\r\n":
            # the csv module, which finds each row's line, splits on one character, as pandas does (a longer
            # separator is a regular expression to pandas, and quotes are then ignored)
            raise self.fail("csv.delimiter", f"{delimiter!r} is not a delimiter",
                            "use one character other than a quote or a line break, e.g. ',', ';' or '\\t' (tab)")
        numbers = self.keys("numbers", top.get("numbers") or {}, {"thousands", "decimal"})
        tz = str(top.get("timezone") or "UTC")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise self.fail("timezone", f"unknown time zone {tz!r}",
                            "use an IANA name such as UTC, Europe/Berlin or America/New_York") from exc
        formats = top.get("date_formats", ["ISO8601"])
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list) or not formats:
            raise self.fail("date_formats", "expected a list of formats",
                            "write e.g. date_formats: [ISO8601, '%m/%d/%Y %I:%M %p', '%m/%d/%Y']")
        true_values = top.get("true_values", ["true", "1", "yes", "y", "t"])
        return CsvMapping(
            path=self.path,
            name=str(top.get("name") or Path(self.path).stem),
            sources=sources,
            date_formats=tuple(str(f) for f in formats),
            timezone=tz,
            encoding=str(csv.get("encoding", "utf-8-sig")),
            delimiter=delimiter,
            true_values=frozenset(normalise(v) for v in true_values),
            thousands=None if numbers.get("thousands") is None else str(numbers["thousands"]),
            decimal=str(numbers.get("decimal", ".")),
            cut_at=None if top.get("cut_at") is None else str(top["cut_at"]),
        )

    def as_list(self, table: str, spec: Any) -> list[Any]:
        if isinstance(spec, list):
            if not spec:
                raise self.fail(f"tables.{table}", "empty list of files", "name at least one file or drop the table")
            return spec
        return [spec]

    def source(self, table: str, i: int, raw: Any) -> SourceSpec:
        where = f"tables.{table}" + (f"[{i}]" if i else "")
        s = self.keys(where, raw, SOURCE_KEYS)
        if not s.get("file"):
            raise self.fail(where, "no 'file'", "name the export file, e.g. file: Opportunity.csv")
        contract = TABLES[table]
        cols = self.keys(f"{where}.columns", s.get("columns") or {}, set(contract.column_names))
        missing = [c for c in contract.required_columns if c not in cols]
        if missing:
            raise self.fail(f"{where}.columns", f"required contract column(s) {missing} are not mapped",
                            f"map every required column of {table}: {contract.required_columns}")
        columns = {target: self.column(f"{where}.columns.{target}", target, spec) for target, spec in cols.items()}
        where_raw = self.keys(f"{where}.where", s.get("where") or {}, set(s.get("where") or {}))
        where_values = {str(k): tuple(normalise(x) for x in (v if isinstance(v, list) else [v]))
                        for k, v in where_raw.items()}
        flags = {k: bool(s.get(k, False)) for k in ("drop_unknown_deals", "create_missing", "close_from_stage_history",
                                                     "distinct")}
        if flags["drop_unknown_deals"] and "deal_id" not in contract.column_names:
            raise self.fail(where, "drop_unknown_deals applies to tables with a deal_id", "remove it here")
        if flags["create_missing"] and table != "accounts":
            raise self.fail(where, "create_missing applies to accounts only", "move it to tables.accounts")
        if flags["close_from_stage_history"] and table != "deals":
            raise self.fail(where, "close_from_stage_history applies to deals only", "move it to tables.deals")
        if flags["distinct"] and contract.id_column is None:
            raise self.fail(where, f"distinct applies to tables with an id column; {table} has none",
                            "remove it here")
        unpivot = None
        if s.get("unpivot") is not None:
            u = self.keys(f"{where}.unpivot", s["unpivot"], _UNPIVOT_KEYS)
            if not all(isinstance(u.get(k), str) and u[k] for k in _UNPIVOT_KEYS):
                raise self.fail(f"{where}.unpivot", "needs columns (a pattern), name and value",
                                "write e.g. unpivot: {columns: 'Date entered \"(.+) \\(Sales Pipeline\\)\"', "
                                "name: Stage entered, value: Date entered}")
            try:
                re.compile(u["columns"])
            except re.error as exc:
                raise self.fail(f"{where}.unpivot.columns", f"not a valid regular expression ({exc})",
                                "escape brackets and quotes: \\( \\) match a literal parenthesis") from exc
            unpivot = Unpivot(columns=u["columns"], name=u["name"], value=u["value"])
        return SourceSpec(table=table, file=str(s["file"]), columns=columns, where=where_values, unpivot=unpivot,
                          **flags)

    def column(self, where: str, target: str, raw: Any) -> ColumnSpec:
        if isinstance(raw, str):
            return ColumnSpec(target=target, column=raw)
        if isinstance(raw, list):
            if not raw:
                raise self.fail(where, "empty list of alternatives", "give at least one column spec")
            alts = tuple(self.column(f"{where}[{i}]", target, r) for i, r in enumerate(raw))
            return ColumnSpec(target=target, alternatives=alts)
        c = self.keys(where, raw, COLUMN_KEYS)
        sources = [k for k in ("column", "constant", "lookup") if k in c]
        if len(sources) != 1:
            raise self.fail(where, f"needs exactly one of column, constant or lookup (found {sources or 'none'})",
                            "write e.g. {column: StageName} or {constant: unknown}")
        values = c.get("values")
        if values is not None and not isinstance(values, dict):
            raise self.fail(f"{where}.values", "expected a map of source value: contract value",
                            "write e.g. values: {'Closed Won': won}")
        prefixes = c.get("prefixes")
        if prefixes is not None and (not isinstance(prefixes, dict) or not prefixes):
            raise self.fail(f"{where}.prefixes", "expected a map of text prefix: contract value",
                            "write e.g. prefixes: {'← Email:': inbound, 'Email:': outbound}")
        first_of = c.get("first_of")
        if first_of is not None and (not isinstance(first_of, str) or not first_of):
            raise self.fail(f"{where}.first_of", "expected the separator of a cell listing several values",
                            "write e.g. first_of: ';'")
        fmt = c.get("format")
        lookup = None
        if "lookup" in c:
            lk = self.keys(f"{where}.lookup", c["lookup"], LOOKUP_KEYS)
            if not lk.get("file") or not lk.get("column") or not isinstance(lk.get("match"), dict) or not lk["match"]:
                raise self.fail(f"{where}.lookup", "needs file, match and column",
                                "write e.g. lookup: {file: OpportunityContactRole.csv, "
                                "match: {OpportunityId: WhatId, ContactId: WhoId}, column: Role}")
            lookup = Lookup(file=str(lk["file"]), match={str(k): str(v) for k, v in lk["match"].items()},
                            column=str(lk["column"]))
        fallback = c.get("fallback") or []
        return ColumnSpec(
            target=target,
            column=None if c.get("column") is None else str(c["column"]),
            fallback=tuple(str(f) for f in (fallback if isinstance(fallback, list) else [fallback])),
            constant=c.get("constant"),
            has_constant="constant" in c,
            values=None if values is None else {normalise(k): v for k, v in values.items()},
            other=c.get("other"),
            has_other="other" in c,
            missing=c.get("missing"),
            formats=None if fmt is None else tuple(str(f) for f in (fmt if isinstance(fmt, list) else [fmt])),
            only_if=None if c.get("only_if") is None else str(c["only_if"]),
            end_of_day=bool(c.get("end_of_day", False)),
            first_of=first_of,
            lookup=lookup,
            # longest prefix first, so "Re: Email:" is tried before "Re:"
            prefixes=None if prefixes is None else dict(sorted(
                ((normalise(k), v) for k, v in prefixes.items()), key=lambda kv: -len(kv[0]))),
        )


def load_mapping(path_or_name: str | Path) -> CsvMapping:
    """Load and check a mapping YAML (or a shipped mapping by name, e.g. ``salesforce``)."""
    return CsvMapping.load(path_or_name)
