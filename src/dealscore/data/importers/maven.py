"""Import the public Maven Analytics "CRM Sales Opportunities" export into the contract.

The export records only the final state of each opportunity, so most of this
module is about saying honestly what can and cannot be known, and when. Every
choice is listed, with its reason, in docs/importers.md; the short version:

- ``created_at`` is ``engage_date`` (the first date the export holds for a deal).
  Deals still in Prospecting have no date at all: they are taken as *first seen at
  the data cut*, the only time they are known to exist.
- ``stage_history`` has one row per deal: ``qualification`` (Maven's "Engaging") at
  ``engage_date``, or ``prospecting`` at the data cut.
- ``close_value`` and ``close_date`` are outcome information. ``close_date`` becomes
  ``closed_at``; ``close_value`` is not carried at all (it is 0 for every lost deal,
  so any feature built on it would leak the outcome). ``amount`` is the product's
  list price from ``products.csv``: a value known from creation.
- 1,425 deals name no account: they point to one ``unknown`` account row.
- ``GTXPro`` in the pipeline is ``GTX Pro`` in ``products.csv``; the sector
  ``technolgy`` is spelt ``technology``.
- There are no touchpoints: the activities table is written empty, with its header.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from dealscore.data.history import parse_cut_at
from dealscore.data.importers.common import (
    ImportReport,
    ImportResult,
    added_by_import,
    added_note,
    describe_rows,
    file_lines,
    finish,
    from_file,
    lines_by_value,
    read_source_csv,
    source_ids,
)
from dealscore.data.schema import ACTIVITIES
from dealscore.errors import DataValidationError

PIPELINE, ACCOUNTS, PRODUCTS, TEAMS = "sales_pipeline.csv", "accounts.csv", "products.csv", "sales_teams.csv"
PIPELINE_COLUMNS = ["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date", "close_date",
                    "close_value"]
ACCOUNT_COLUMNS = ["account", "sector", "revenue", "employees", "office_location"]
PRODUCT_COLUMNS = ["product", "sales_price"]
TEAM_COLUMNS = ["sales_agent", "manager"]

#: account_id of the one account row that deals without an account point to
UNKNOWN_ACCOUNT = "unknown"
#: sector spellings of the source fixed on import
SECTOR_FIXES = {"technolgy": "technology"}
#: Maven's final stages: open ones map to a contract stage, closed ones to an outcome
OPEN_STAGES = {"Prospecting": "prospecting", "Engaging": "qualification"}
CLOSED_STAGES = {"Won": "won", "Lost": "lost"}
#: accounts.csv gives revenue in millions of USD; the contract's annual_revenue is in USD
REVENUE_UNIT = 1_000_000.0


def _product_key(name: str) -> str:
    """Spelling-insensitive product key: ``GTXPro`` and ``GTX Pro`` are the same product."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def default_cut_at(pipeline: pd.DataFrame) -> pd.Timestamp:
    """The export time: the end of the last day any date in the pipeline mentions.

    Dates carry no time, so an event dated 2017-12-31 may have happened until
    midnight; the export cannot have been taken earlier than that.
    """
    dates = pd.concat([pipeline["engage_date"], pipeline["close_date"]]).dropna()
    parsed = pd.to_datetime(dates, format="ISO8601", errors="coerce")
    if parsed.isna().all():
        raise DataValidationError(
            f"{PIPELINE}: no readable engage_date or close_date, so the data cut is unknown",
            table=PIPELINE, column="engage_date", fix="pass --cut-at with the date the export was taken",
        )
    return parsed.max().normalize() + pd.Timedelta(days=1)


def _dates(frame: pd.DataFrame, col: str) -> pd.Series:
    """Parse one ISO date column of the pipeline, naming unreadable rows by opportunity id."""
    parsed = pd.to_datetime(frame[col], format="ISO8601", errors="coerce")
    bad = frame[col].notna() & parsed.isna()
    if bad.any():
        raise DataValidationError(
            f"{PIPELINE}, column {col}: {int(bad.sum())} value(s) are not dates "
            f"(ids: {', '.join(source_ids(frame, bad, 'opportunity_id'))})",
            table=PIPELINE, column=col, ids=source_ids(frame, bad, "opportunity_id"),
            fix="use ISO dates such as 2017-03-01",
        )
    return parsed.astype("datetime64[ns]")


def _check_stages(p: pd.DataFrame) -> None:
    """Refuse final stages and date combinations the mapping has no rule for."""
    known = set(OPEN_STAGES) | set(CLOSED_STAGES)
    checks = [
        (p["deal_stage"].isna() | ~p["deal_stage"].isin(known), "deal_stage",
         f"have a deal_stage other than {sorted(known)}", "this importer knows Maven's four stages only"),
        (p["deal_stage"].isin(list(CLOSED_STAGES)) & p["close_date"].isna(), "close_date",
         "are Won or Lost but have no close_date", "a closed deal needs its close_date"),
        (p["deal_stage"].isin(["Engaging", *CLOSED_STAGES]) & p["engage_date"].isna(), "engage_date",
         "are past Prospecting but have no engage_date", "a deal that was engaged needs its engage_date"),
        (p["deal_stage"].isin(list(OPEN_STAGES)) & p["close_date"].notna(), "close_date",
         "are still open but have a close_date", "clear close_date of open deals or set their final stage"),
    ]
    for mask, col, what, fix in checks:
        if mask.any():
            ids = source_ids(p, mask, "opportunity_id")
            raise DataValidationError(
                f"{PIPELINE}, column {col}: {int(mask.sum())} row(s) {what} (ids: {', '.join(ids)})",
                table=PIPELINE, column=col, ids=ids, fix=fix,
            )


def _accounts(raw: pd.DataFrame, pipeline: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """accounts.csv → accounts, plus the ``unknown`` row and stubs for names missing from accounts.csv.

    The rows added are in no export line: each names the pipeline lines it was made for.
    """
    sector = raw["sector"].str.lower()
    fixed = sector.map(SECTOR_FIXES)
    for wrong, right in SECTOR_FIXES.items():
        report.fill(f"accounts.industry: misspelt sector '{wrong}' written as '{right}'", int((sector == wrong).sum()))
    accounts = from_file(pd.DataFrame({
        "account_id": raw["account"],
        "industry": fixed.where(fixed.notna(), sector).fillna("unknown"),
        "employees": pd.to_numeric(raw["employees"], errors="coerce"),
        "annual_revenue": pd.to_numeric(raw["revenue"], errors="coerce") * REVENUE_UNIT,
        "region": raw["office_location"],
    }), ACCOUNTS, file_lines(raw))
    report.fill("accounts.industry: no sector, written as 'unknown'", int(raw["sector"].isna().sum()))
    named = pipeline["account"].dropna().unique()
    stubs = sorted(set(named) - set(accounts["account_id"].dropna()))
    if stubs:
        report.fill("accounts: names used by deals but absent from accounts.csv, added with industry 'unknown'",
                    len(stubs))
    naming = from_file(pipeline[["account"]], PIPELINE, file_lines(pipeline))
    lines_of = lines_by_value(naming, "account", stubs)
    extra = list(stubs)
    notes = [added_note("an account deals name but accounts.csv lacks", lines_of[name]) for name in stubs]
    no_account = pipeline["account"].isna()
    if no_account.any():
        extra.append(UNKNOWN_ACCOUNT)
        notes.append(added_note("the deals without an account", describe_rows(naming[no_account])))
    if extra:
        added = added_by_import(pd.DataFrame({"account_id": extra, "industry": "unknown"}), notes)
        accounts = pd.concat([accounts, added], ignore_index=True)
    return accounts


def _amounts(pipeline: pd.DataFrame, products: pd.DataFrame, report: ImportReport) -> tuple[pd.Series, pd.Series]:
    """The product's list price per deal (and the product's products.csv spelling)."""
    prices = products.assign(key=products["product"].map(_product_key)).drop_duplicates("key").set_index("key")
    key = pipeline["product"].map(_product_key, na_action="ignore")
    canonical = key.map(prices["product"])
    renamed = canonical.notna() & (canonical != pipeline["product"])
    for (src, dst), n in pipeline[renamed].groupby(["product", canonical[renamed]]).size().items():
        report.fill(f"deals.product: '{src}' written as products.csv's '{dst}'", int(n))
    price = pd.to_numeric(key.map(prices["sales_price"]), errors="coerce")
    report.fill("deals.amount: product without a list price in products.csv, amount left empty",
                int(price.isna().sum()))
    product = canonical.where(canonical.notna(), pipeline["product"])
    return price.astype("float64"), product


def import_maven(src: str | Path, *, cut_at: str | pd.Timestamp | None = None) -> ImportResult:
    """Convert the Maven CRM export folder ``src`` into a contract history (validated, not written).

    ``cut_at`` is the export time; by default the end of the last day the export mentions.
    """
    folder = Path(src)
    if not folder.is_dir():
        raise DataValidationError(
            f"Maven export folder {folder} does not exist or is not a folder",
            fix=f"pass the folder holding {PIPELINE}, {ACCOUNTS}, {PRODUCTS} and {TEAMS}",
        )
    report = ImportReport(importer="maven", source=str(folder))
    p = read_source_csv(folder / PIPELINE, label=PIPELINE, required=PIPELINE_COLUMNS)
    raw_accounts = read_source_csv(folder / ACCOUNTS, label=ACCOUNTS, required=ACCOUNT_COLUMNS)
    products = read_source_csv(folder / PRODUCTS, label=PRODUCTS, required=PRODUCT_COLUMNS)
    teams = read_source_csv(folder / TEAMS, label=TEAMS, required=TEAM_COLUMNS)
    for name, frame in ((PIPELINE, p), (ACCOUNTS, raw_accounts), (PRODUCTS, products), (TEAMS, teams)):
        report.rows_read[name] = len(frame)

    _check_stages(p)
    engage, close = _dates(p, "engage_date"), _dates(p, "close_date")
    given = parse_cut_at(cut_at)
    cut = default_cut_at(p) if given is None else given
    report.notes.append(f"cut_at {cut.isoformat()}: " + (
        "the end of the last day the export mentions" if cut_at is None else "given on import"))

    stage = p["deal_stage"]
    prospecting = stage == "Prospecting"
    created = engage.where(~prospecting, cut)
    report.fill("deals.created_at: Prospecting deal without engage_date, taken as first seen at the data cut",
                int(prospecting.sum()))

    accounts = _accounts(raw_accounts, p, report)
    no_account = p["account"].isna()
    report.fill(f"deals.account_id: no account, pointed to the '{UNKNOWN_ACCOUNT}' account row",
                int(no_account.sum()))
    amount, product = _amounts(p, products, report)
    team = p["sales_agent"].map(teams.drop_duplicates("sales_agent").set_index("sales_agent")["manager"])
    report.fill("deals.team: sales agent not in sales_teams.csv, team left empty",
                int((p["sales_agent"].notna() & team.isna()).sum()))
    report.notes.append(
        f"close_value ({int(p['close_value'].notna().sum())} values) is outcome information and is not carried"
    )

    deals = from_file(pd.DataFrame({
        "deal_id": p["opportunity_id"],
        "account_id": p["account"].where(~no_account, UNKNOWN_ACCOUNT),
        "owner_id": p["sales_agent"],
        "created_at": created,
        "amount": amount,
        "product": product,
        "closed_at": close,
        "outcome": stage.map(CLOSED_STAGES),
        "team": team,
    }), PIPELINE, file_lines(p))
    stage_history = from_file(pd.DataFrame({
        "deal_id": p["opportunity_id"],
        "stage": np.where(prospecting, OPEN_STAGES["Prospecting"], OPEN_STAGES["Engaging"]),
        "changed_at": created,
        "amount": amount,
    }), PIPELINE, file_lines(p))
    activities = pd.DataFrame({c: pd.Series(dtype=object) for c in ACTIVITIES.column_names})
    report.notes.append("no touchpoints in this export: activities is empty")
    frames = {"accounts": accounts, "deals": deals, "stage_history": stage_history, "activities": activities}
    return finish(frames, report, cut_at=cut, meta={"source": "maven_crm"})
