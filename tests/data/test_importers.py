"""Importers (dealscore.data.importers): the Maven export, and the mapping-driven CSV importer on a
hand-made Salesforce export (tests/fixtures/salesforce)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from dealscore.data.history import write_history
from dealscore.data.importers import import_maven
from dealscore.data.importers.csv_mapping import (
    SHIPPED_MAPPINGS,
    MappingError,
    guess_date_format,
    import_csv,
    load_mapping,
)
from dealscore.data.importers.maven import UNKNOWN_ACCOUNT
from dealscore.data.validate import load_and_validate
from dealscore.errors import DataValidationError, DealscoreError
from tests.data.opportunity_export import opportunity_mapping

MAVEN = Path(__file__).resolve().parents[3] / "shared" / "data" / "maven_crm"
SALESFORCE = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"
needs_maven = pytest.mark.skipif(not MAVEN.is_dir(), reason=f"Maven CRM export not found at {MAVEN}")


# =========================================================================== Maven


@pytest.fixture(scope="module")
def maven() -> Any:
    return import_maven(MAVEN)


@needs_maven
def test_maven_import_validates_and_counts_what_it_changed(maven: Any, tmp_path: Path) -> None:
    h, rep = maven.history, maven.report
    assert len(h.deals) == 8800 and len(h.stage_history) == 8800 and len(h.activities) == 0
    assert rep.rows_read == {"sales_pipeline.csv": 8800, "accounts.csv": 85, "products.csv": 7,
                             "sales_teams.csv": 35}
    filled = rep.filled
    assert filled["deals.account_id: no account, pointed to the 'unknown' account row"] == 1425
    assert filled["accounts.industry: misspelt sector 'technolgy' written as 'technology'"] == 12
    assert filled["deals.product: 'GTXPro' written as products.csv's 'GTX Pro'"] > 0
    assert filled["deals.created_at: Prospecting deal without engage_date, taken as first seen at the data cut"] == 500
    lr = maven.load_report
    assert (lr.won_deals, lr.lost_deals, lr.open_deals) == (4238, 2473, 2089)
    assert lr.dropped == {}
    # written, the folder validates on its own and carries the import report
    write_history(h, tmp_path)
    _, again = load_and_validate(tmp_path)
    assert again.rows == lr.rows
    meta = yaml.safe_load((tmp_path / "history.yaml").read_text())
    assert meta["cut_at"] == "2018-01-01T00:00:00"
    assert meta["import"]["filled"] == {k: int(v) for k, v in filled.items()}
    assert (tmp_path / "activities.csv").read_text().startswith("activity_id,deal_id,occurred_at,type")


@needs_maven
def test_maven_outcome_columns_never_reach_profile_or_amount(maven: Any) -> None:
    h = maven.history
    every_column = {c for frame in h.tables().values() for c in frame.columns}
    assert not {"close_value", "close_date", "deal_stage"} & every_column
    # amount is the list price: one value per product, whatever the outcome
    assert (h.deals.groupby("product")["amount"].nunique() == 1).all()
    pipeline = pd.read_csv(MAVEN / "sales_pipeline.csv")
    won = pipeline[pipeline["deal_stage"] == "Won"].set_index("opportunity_id")
    amount = h.deals.set_index("deal_id")["amount"]
    assert (amount[won.index] != won["close_value"]).mean() > 0.9
    assert h.deals.loc[h.deals["product"] == "GTX Pro", "amount"].iloc[0] == 4821.0
    assert "GTXPro" not in set(h.deals["product"])
    # stage history amounts are the same list price, known from creation
    assert (h.stage_history.set_index("deal_id")["amount"] == amount).all()


@needs_maven
def test_maven_mapping_of_stages_dates_accounts_and_teams(maven: Any) -> None:
    h = maven.history
    cut = pd.Timestamp("2018-01-01")
    assert h.cut_at == cut
    pipeline = pd.read_csv(MAVEN / "sales_pipeline.csv").set_index("opportunity_id")
    d = h.deals.set_index("deal_id")
    stage = pipeline["deal_stage"]
    engaged = stage != "Prospecting"
    assert (d.loc[engaged, "created_at"] == pd.to_datetime(pipeline.loc[engaged, "engage_date"])).all()
    assert (d.loc[~engaged, "created_at"] == cut).all()
    assert d["outcome"].isna().sum() == 2089
    assert ((d["outcome"] == "won") == (stage == "Won")).all()
    assert (d["closed_at"].notna() == stage.isin(["Won", "Lost"])).all()
    sh = h.stage_history.set_index("deal_id")["stage"]
    assert (sh[engaged.index[engaged]] == "qualification").all()
    assert (sh[engaged.index[~engaged]] == "prospecting").all()
    accounts = h.accounts.set_index("account_id")
    assert (d["account_id"] == UNKNOWN_ACCOUNT).sum() == 1425
    assert accounts.loc[UNKNOWN_ACCOUNT, "industry"] == "unknown"
    assert "technolgy" not in set(accounts["industry"]) and "technology" in set(accounts["industry"])
    assert accounts.loc["Acme Corporation", "annual_revenue"] == pytest.approx(1100.04e6)
    assert accounts.loc["Betatech", "region"] == "Kenya"
    assert d.loc["1C1I7A6R", "team"] == "Dustin Brinkmann"  # Moses Frase's manager
    assert d.loc["1C1I7A6R", "owner_id"] == "Moses Frase"


def small_maven(folder: Path) -> Path:
    """A three-deal export in Maven's layout, for the error cases."""
    folder.mkdir()
    (folder / "sales_pipeline.csv").write_text(
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"
        "OPP1,Ann,GTXPro,Acme,Won,2017-01-02,2017-02-01,4500\n"
        "OPP2,Bob,MG Special,,Engaging,2017-01-10,,\n"
        "OPP3,Ann,GTX Basic,Newco,Prospecting,,,\n"
    )
    (folder / "accounts.csv").write_text(
        "account,sector,year_established,revenue,employees,office_location,subsidiary_of\n"
        "Acme,technolgy,1990,12.5,100,Japan,\n"
    )
    (folder / "products.csv").write_text("product,series,sales_price\nGTX Pro,GTX,4821\nMG Special,MG,55\n"
                                         "GTX Basic,GTX,550\n")
    (folder / "sales_teams.csv").write_text("sales_agent,manager,regional_office\nAnn,Meg,East\n")
    return folder


def test_maven_small_export_stubs_accounts_and_keeps_unknown_team(tmp_path: Path) -> None:
    res = import_maven(small_maven(tmp_path / "m"), cut_at="2017-06-01")
    d = res.history.deals.set_index("deal_id")
    assert d.loc["OPP2", "account_id"] == UNKNOWN_ACCOUNT
    assert d.loc["OPP3", "created_at"] == pd.Timestamp("2017-06-01")
    assert d.loc["OPP1", "amount"] == 4821.0 and d.loc["OPP1", "product"] == "GTX Pro"
    assert d.loc["OPP2", "team"] is None
    assert set(res.history.accounts["account_id"]) == {"Acme", "Newco", UNKNOWN_ACCOUNT}
    assert res.report.filled["deals.team: sales agent not in sales_teams.csv, team left empty"] == 1


@pytest.mark.parametrize(("edit", "match", "column"), [
    (lambda f: (f / "products.csv").unlink(), "products.csv.*does not exist", None),
    (lambda f: _rewrite(f / "sales_pipeline.csv", "engage_date", "engaged_on"), r"missing column.*engage_date",
     "engage_date"),
    (lambda f: _rewrite(f / "sales_pipeline.csv", "Engaging", "Negotiating"), "deal_stage other than", "deal_stage"),
    (lambda f: _rewrite(f / "sales_pipeline.csv", "2017-02-01", ""), "Won or Lost but have no close_date",
     "close_date"),
    (lambda f: _rewrite(f / "sales_pipeline.csv", "2017-01-10", "10/01/2017x"), "not dates", "engage_date"),
    (lambda f: (f / "sales_teams.csv").write_text(""), "empty", None),
])
def test_maven_errors_name_file_column_and_ids(tmp_path: Path, edit: Any, match: str, column: str | None) -> None:
    folder = small_maven(tmp_path / "m")
    edit(folder)
    with pytest.raises(DataValidationError, match=match) as e:
        import_maven(folder, cut_at="2017-06-01")
    assert e.value.column == column
    assert "Fix:" in str(e.value)


def test_maven_cut_before_the_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="after the data cut"):
        import_maven(small_maven(tmp_path / "m"), cut_at="2017-01-15")
    with pytest.raises(DataValidationError, match="not a timestamp"):
        import_maven(small_maven(tmp_path / "n"), cut_at="soon")


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


# =========================================================================== CSV mapping: Salesforce


def sf_mapping() -> dict[str, Any]:
    return yaml.safe_load((SHIPPED_MAPPINGS / "salesforce-api.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sf() -> Any:
    return import_csv(SALESFORCE, "salesforce")


def test_shipped_mapping_loads_by_name_and_by_path() -> None:
    by_name = load_mapping("salesforce")
    by_path = load_mapping(Path(str(SHIPPED_MAPPINGS / "salesforce-api.yaml")))
    assert by_name.sources.keys() == by_path.sources.keys()
    assert [s.file for s in by_name.sources["activities"]] == ["Task.csv", "Event.csv"]


def test_salesforce_deals_outcomes_and_times(sf: Any) -> None:
    d = sf.history.deals.set_index("deal_id")
    assert len(d) == 6
    # report times are America/New_York: 1/8/2024 9:15 AM EST = 14:15 UTC
    assert d.loc["006A000000OppA", "created_at"] == pd.Timestamp("2024-01-08T14:15:00")
    # closed_at is the time of the Closed Won history row (4:40 PM EDT = 20:40 UTC), not the bare CloseDate
    assert d.loc["006A000000OppA", "closed_at"] == pd.Timestamp("2024-03-18T20:40:00")
    assert d.loc["006A000000OppA", "outcome"] == "won"
    assert d.loc["006A000000OppB", "outcome"] == "lost"
    # created and won the same day: closed after it was created
    assert d.loc["006A000000OppE", "closed_at"] > d.loc["006A000000OppE", "created_at"]
    open_ = d["outcome"].isna()
    assert set(d.index[open_]) == {"006A000000OppC", "006A000000OppD", "006A000000OppF"}
    assert d.loc[open_, "closed_at"].isna().all()
    assert d.loc["006A000000OppA", "amount"] == 48000.0  # "48,000.00"
    assert pd.isna(d.loc["006A000000OppD", "amount"])
    assert d.loc["006A000000OppC", "expected_close_date"] == pd.Timestamp("2024-06-28")
    assert d.loc["006A000000OppA", "team"] == "Enterprise East"  # lookup in User.csv
    assert d.loc["006A000000OppF", "team"] is None
    assert d.loc["006A000000OppB", "source"] == "Trade Show"


def test_salesforce_stage_history_without_closing_rows(sf: Any) -> None:
    sh = sf.history.stage_history
    assert len(sh) == 14 and not sh["stage"].isin(["won", "lost"]).any()
    path = sh[sh["deal_id"] == "006A000000OppA"].sort_values("changed_at")
    assert path["stage"].tolist() == ["prospecting", "qualification", "discovery", "proposal", "negotiation"]
    assert path["amount"].tolist() == [40000.0, 40000.0, 45000.0, 48000.0, 48000.0]
    # the pushed close date of an open deal is kept per change
    c = sh[sh["deal_id"] == "006A000000OppC"].sort_values("changed_at")
    assert c["expected_close_date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-05-31", "2024-05-31", "2024-06-28"]
    assert sf.report.dropped[
        "stage_history: rows that close the deal (won/lost), used as the deal's outcome instead"] == 3


def test_salesforce_accounts(sf: Any) -> None:
    a = sf.history.accounts.set_index("account_id")
    assert a.loc["001A000000UmbrD", "industry"] == "unknown"
    assert a.loc["001A000000GlobB", "annual_revenue"] == 1.2e9
    assert a.loc["001A000000HoolZ", "industry"] == "unknown"  # referenced by a deal, not exported
    assert sf.report.filled["accounts.industry: empty in Account.csv, written as 'unknown'"] == 1


def test_salesforce_activities(sf: Any) -> None:
    acts = sf.history.activities.set_index("activity_id")
    assert "00TA0000000T005" not in acts.index  # not completed
    assert "00TA0000000T008" not in acts.index  # on an account, not an opportunity
    assert "00UA0000000E006" not in acts.index  # on no record
    assert "00UA0000000E004" not in acts.index  # scheduled after the data cut
    assert acts.loc["00TA0000000T003", "type"] == "proposal"  # Type "Send Quote"
    assert acts.loc["00TA0000000T009", "type"] == "email"  # Type empty: TaskSubtype
    assert acts.loc["00UA0000000E002", "type"] == "demo"
    assert acts.loc["00TA0000000T002", "direction"] == "inbound"
    assert acts.loc["00TA0000000T002", "contact_role"] == "user"  # Business User
    assert acts.loc["00UA0000000E001", "contact_role"] == "decision_maker"
    assert acts.loc["00TA0000000T010", "contact_role"] == "champion"
    assert acts.loc["00TA0000000T011", "contact_role"] is None  # no role on that opportunity
    # a task with only a date: by the end of that New York day
    assert acts.loc["00TA0000000T009", "occurred_at"] == pd.Timestamp("2024-03-13T03:59:59")
    # an event created a week before it happened keeps both times
    assert acts.loc["00UA0000000E001", "recorded_at"] < acts.loc["00UA0000000E001", "occurred_at"]
    rep = sf.report.dropped
    assert rep["Task.csv: Status not in ['completed']"] == 1
    assert rep["activities: rows whose deal_id is not a deal in Opportunity.csv"] == 2
    assert rep["activities: dated after the data cut (scheduled, not happened yet)"] == 1
    # the win-back call after the deal was lost is dropped by validation, with a count
    assert sf.load_report.dropped == {"activities: occurred_at after the deal closed": 1}


def test_salesforce_cut_estimated_or_given(sf: Any) -> None:
    assert sf.history.cut_at == pd.Timestamp("2024-04-25T09:00:00")  # the last record: E004 created
    given = import_csv(SALESFORCE, "salesforce", cut_at="2024-05-01T00:00:00Z")
    assert given.history.cut_at == pd.Timestamp("2024-05-01")
    assert given.report.dropped["activities: dated after the data cut (scheduled, not happened yet)"] == 1


def test_salesforce_written_history_validates(sf: Any, tmp_path: Path) -> None:
    write_history(sf.history, tmp_path)
    clean, report = load_and_validate(tmp_path)
    assert report.rows == sf.load_report.rows
    assert report.dropped == sf.load_report.dropped
    assert clean.deals["deal_id"].is_unique


# =========================================================================== CSV mapping: errors


def mapping_fails(mapping: dict[str, Any], exc: type[DealscoreError] = MappingError, src: Path = SALESFORCE,
                  ) -> DealscoreError:
    with pytest.raises(exc) as e:
        import_csv(src, mapping)
    assert "Fix:" in str(e.value)
    return e.value


def test_unknown_source_column_is_named_with_a_suggestion() -> None:
    m = sf_mapping()
    m["tables"]["stage_history"]["columns"]["stage"]["column"] = "StageNme"
    err = mapping_fails(m)
    assert "tables.stage_history.columns.stage" in str(err)
    assert "'StageNme' is not in OpportunityHistory.csv (did you mean 'StageName'?)" in str(err)


def test_unknown_contract_column_is_named() -> None:
    m = sf_mapping()
    m["tables"]["deals"]["columns"]["deal_idd"] = m["tables"]["deals"]["columns"].pop("deal_id")
    err = mapping_fails(m)
    assert "tables.deals.columns" in str(err) and "did you mean 'deal_id'" in str(err)


def test_unknown_key_in_a_column_spec() -> None:
    m = sf_mapping()
    m["tables"]["stage_history"]["columns"]["stage"]["valeus"] = m["tables"]["stage_history"]["columns"]["stage"].pop(
        "values")
    err = mapping_fails(m)
    assert "unknown key 'valeus'" in str(err) and "did you mean 'values'" in str(err)


def test_required_contract_column_not_mapped() -> None:
    m = sf_mapping()
    del m["tables"]["deals"]["columns"]["owner_id"]
    err = mapping_fails(m)
    assert "['owner_id'] are not mapped" in str(err)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda m: m.pop("tables"), "no 'tables' key"),
    (lambda m: m["tables"].pop("deals"), "table deals is not mapped"),
    (lambda m: m["tables"].update(opportunities=m["tables"]["deals"]), "unknown key 'opportunities'"),
    (lambda m: m.update(timezone="Mars/Olympus"), "unknown time zone"),
    (lambda m: m.update(csv={"delimiter": ";;"}), r"csv.delimiter: ';;' is not a delimiter"),
    (lambda m: m.update(csv={"delimiter": '"'}), r"csv.delimiter: '\"' is not a delimiter"),
    (lambda m: m["tables"]["deals"]["columns"].update(amount={"column": "Amount", "constant": 1}),
     "exactly one of column, constant or lookup"),
    (lambda m: m["tables"]["stage_history"].update(create_missing=True), "create_missing applies to accounts"),
])
def test_mapping_structure_errors(edit: Any, match: str) -> None:
    m = sf_mapping()
    edit(m)
    with pytest.raises(MappingError, match=match):
        import_csv(SALESFORCE, m)


def test_mapping_file_errors(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"does not exist.*salesforce"):
        load_mapping(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables: [unclosed\n")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(bad)


def test_unmapped_stage_value_names_file_rows_and_where_to_add_it(tmp_path: Path) -> None:
    src = copy_fixture(tmp_path)
    _rewrite(src / "OpportunityHistory.csv", "Needs Analysis", "Discovery Call")
    err = mapping_fails(sf_mapping(), DataValidationError, src)
    assert isinstance(err, DataValidationError)
    assert (err.table, err.column) == ("stage_history", "stage")
    assert err.ids == ["line 4 (deal 006A000000OppA)"]
    assert "['Discovery Call']" in str(err) and "tables.stage_history.columns.stage.values" in str(err)


def test_date_matching_no_format_names_rows(tmp_path: Path) -> None:
    src = copy_fixture(tmp_path)
    _rewrite(src / "Opportunity.csv", "2/26/2024 1:20 PM", "26.02.2024 13:20")
    err = mapping_fails(sf_mapping(), DataValidationError, src)
    assert isinstance(err, DataValidationError)
    assert (err.table, err.column, err.ids) == ("deals", "created_at", ["006A000000OppC"])
    assert "'26.02.2024 13:20'" in str(err) and "date_formats" in str(err)


def test_three_independent_errors_come_in_one_message(tmp_path: Path) -> None:
    """A date error no longer hides an unknown stage, nor a contract problem found after the import."""
    src = copy_fixture(tmp_path)
    _rewrite(src / "Opportunity.csv", "2/26/2024 1:20 PM", "26.02.2024 13:20")  # a date no format reads
    _rewrite(src / "OpportunityHistory.csv", "Needs Analysis", "Discovery Call")  # a stage no map covers
    _rewrite(src / "Opportunity.csv", '"15,000.00"', '"-15,000.00"')  # a contract rule: negative amount
    err = mapping_fails(sf_mapping(), DataValidationError, src)
    text = str(err)
    assert text.startswith("3 problems in the export:")
    assert len(err.problems) == 3
    where = {(p.table, p.column) for p in err.problems}
    assert where == {("deals", "created_at"), ("stage_history", "stage"), ("deals", "amount")}
    for needle in ("'26.02.2024 13:20'", "'%d.%m.%Y %H:%M'", "['Discovery Call']", "006A000000OppC",
                   "line 4 (deal 006A000000OppA)", "006A000000OppB"):
        assert needle in text, needle
    assert text.count("Fix:") == 3


@pytest.mark.parametrize(("example", "fmt"), [
    ("28.11.2025 14:20", "%d.%m.%Y %H:%M"),
    ("28.11.2025", "%d.%m.%Y"),
    ("3/5/2024 2:22 PM", "%m/%d/%Y %I:%M %p"),
    ("25/12/2024 18:00:05", "%d/%m/%Y %H:%M:%S"),
    ("2024-12-25 18:00", "%Y-%m-%d %H:%M"),
])
def test_date_format_hint_keeps_the_time_part(example: str, fmt: str) -> None:
    assert guess_date_format(example) == fmt
    assert pd.to_datetime(example, format=fmt) is not pd.NaT


def test_missing_export_file_and_lookup_column(tmp_path: Path) -> None:
    src = copy_fixture(tmp_path)
    (src / "Event.csv").unlink()
    err = mapping_fails(sf_mapping(), DataValidationError, src)
    assert "lacks 1 file(s) the mapping names: Event.csv (table activities)" in str(err)
    # Task.csv feeds activities too: only the missing file's entry goes, not the table
    assert "remove the entry of Event.csv under tables.activities from" in str(err)
    for name in ("Account.csv", "Opportunity.csv"):  # every missing file in one run, not one per run
        (src / name).unlink()
    err = mapping_fails(sf_mapping(), DataValidationError, src)
    assert "lacks 3 file(s)" in str(err) and "Account.csv (table accounts)" in str(err)
    m = sf_mapping()
    m["tables"]["deals"]["columns"]["team"]["lookup"]["column"] = "Dept"
    err = mapping_fails(m)
    assert "'Dept' is not in User.csv" in str(err)


def copy_fixture(tmp_path: Path) -> Path:
    dst = tmp_path / "sf"
    shutil.copytree(SALESFORCE, dst)
    return dst


# =========================================================================== CSV mapping: a generic export


def test_generic_mapping_with_renames_formats_and_taxonomy_aliases(tmp_path: Path) -> None:
    """A home-made CRM: European dates, stage names passed through the taxonomy's aliases."""
    src = tmp_path / "crm"
    src.mkdir()
    (src / "kunden.csv").write_text("nr;branche\nK1;Handel\nK2;\n")
    (src / "deals.csv").write_text(
        "nr;kunde;verkaeufer;angelegt;wert;status;abschluss\n"
        "V1;K1;anna;02.01.2024 09:00;1.200,50;gewonnen;01.03.2024 17:00\n"
        "V2;K2;ben;05.01.2024 10:00;;offen;\n"
    )
    (src / "phasen.csv").write_text("deal;phase;am\nV1;Lead;02.01.2024 09:00\nV1;Needs Analysis;10.01.2024 12:00\n"
                                    "V2;Qualified;05.01.2024 10:00\n")
    mapping = {
        "date_formats": ["%d.%m.%Y %H:%M"], "timezone": "Europe/Berlin",
        "csv": {"delimiter": ";"}, "numbers": {"thousands": ".", "decimal": ","},
        "tables": {
            "accounts": {"file": "kunden.csv", "columns": {
                "account_id": "nr", "industry": {"column": "branche", "missing": "unknown"}}},
            "deals": {"file": "deals.csv", "columns": {
                "deal_id": "nr", "account_id": "kunde", "owner_id": "verkaeufer", "created_at": "angelegt",
                "amount": "wert", "closed_at": "abschluss",
                "outcome": {"column": "status", "values": {"gewonnen": "won", "verloren": "lost"}, "other": None},
            }},
            "stage_history": {"file": "phasen.csv", "columns": {"deal_id": "deal", "stage": "phase",
                                                                 "changed_at": "am"}},
        },
    }
    res = import_csv(src, mapping, cut_at="2024-04-01")
    d = res.history.deals.set_index("deal_id")
    assert d.loc["V1", "amount"] == 1200.5
    assert d.loc["V1", "created_at"] == pd.Timestamp("2024-01-02T08:00:00")  # CET → UTC
    assert d.loc["V1", "outcome"] == "won" and d.loc["V2", "outcome"] is None
    assert res.history.stage_history["stage"].tolist() == ["prospecting", "discovery", "qualification"]
    assert len(res.history.activities) == 0
    assert "no activities mapped: the history has no touchpoints" in res.report.notes
    assert res.history.accounts.set_index("account_id").loc["K2", "industry"] == "unknown"
    # an unmapped outcome spelling is an error unless 'other' says what it means
    del mapping["tables"]["deals"]["columns"]["outcome"]["other"]
    with pytest.raises(DataValidationError, match=r"\['offen'\].*do not cover"):
        import_csv(src, mapping, cut_at="2024-04-01")
    # a stage the taxonomy does not know, with no value map, names the rows and the fix
    mapping["tables"]["deals"]["columns"]["outcome"]["other"] = None
    (src / "phasen.csv").write_text("deal;phase;am\nV1;Pitching;02.01.2024 09:00\n")
    with pytest.raises(DataValidationError, match=r"\['Pitching'\], which is not a configured stage") as e:
        import_csv(src, copy.deepcopy(mapping), cut_at="2024-04-01")
    assert e.value.ids == ["line 2 (deal V1)"]  # type: ignore[attr-defined]


def test_the_importers_doc_describes_every_mapping_key() -> None:
    from dealscore.data.importers import mapping

    doc = (Path(__file__).resolve().parents[2] / "docs" / "importers.md").read_text(encoding="utf-8")
    keys = mapping.MAPPING_KEYS | mapping.SOURCE_KEYS | mapping.COLUMN_KEYS
    for key in sorted(keys):
        assert f"| `{key}` |" in doc, key


def test_lookup_never_matches_on_empty_keys(tmp_path: Path) -> None:
    src = tmp_path / "crm"
    src.mkdir()
    (src / "a.csv").write_text("id,ind\nA1,x\n")
    (src / "d.csv").write_text("id,acc,own,at\nD1,A1,o,2024-01-01\n")
    (src / "t.csv").write_text("id,deal,who,at\nT1,D1,,2024-01-02\nT2,D1,C1,2024-01-03\n")
    (src / "roles.csv").write_text("deal,contact,role\nD1,,decision_maker\nD1,C1,champion\n")
    mapping = {"tables": {
        "accounts": {"file": "a.csv", "columns": {"account_id": "id", "industry": "ind"}},
        "deals": {"file": "d.csv", "columns": {"deal_id": "id", "account_id": "acc", "owner_id": "own",
                                               "created_at": "at"}},
        "activities": {"file": "t.csv", "columns": {
            "activity_id": "id", "deal_id": "deal", "occurred_at": "at", "contact_id": "who",
            "type": {"constant": "call"},
            "contact_role": {"lookup": {"file": "roles.csv", "match": {"deal": "deal", "contact": "who"},
                                        "column": "role"}},
        }},
    }}
    acts = import_csv(src, mapping).history.activities.set_index("activity_id")
    assert acts.loc["T1", "contact_role"] is None
    assert acts.loc["T2", "contact_role"] == "champion"


def test_outcome_and_close_time_from_closing_stage_rows(tmp_path: Path) -> None:
    """A CRM whose deals file has no outcome: the last stage-history row decides, a reopened deal is open."""
    src = tmp_path / "crm"
    src.mkdir()
    (src / "a.csv").write_text("id,ind\nA1,x\n")
    (src / "d.csv").write_text("id,acc,own,at\nD1,A1,o,2024-01-01\nD2,A1,o,2024-01-01\nD3,A1,o,2024-01-01\n")
    (src / "h.csv").write_text(
        "deal,stage,at\n"
        "D1,Prospecting,2024-01-01T00:00:00\nD1,Closed Won,2024-02-03T15:30:00\n"
        "D2,Prospecting,2024-01-01T00:00:00\nD2,Closed Lost,2024-02-01T09:00:00\nD2,Qualification,2024-02-05T09:00:00\n"
        "D3,Prospecting,2024-01-01T00:00:00\nD3,closed/lost,2024-03-01T10:00:00\n"
    )
    mapping = {"tables": {
        "accounts": {"file": "a.csv", "columns": {"account_id": "id", "industry": "ind"}},
        "deals": {"file": "d.csv", "close_from_stage_history": True,
                  "columns": {"deal_id": "id", "account_id": "acc", "owner_id": "own", "created_at": "at"}},
        "stage_history": {"file": "h.csv", "columns": {"deal_id": "deal", "stage": "stage", "changed_at": "at"}},
    }}
    res = import_csv(src, mapping)
    d = res.history.deals.set_index("deal_id")
    assert d.loc["D1", "outcome"] == "won" and d.loc["D1", "closed_at"] == pd.Timestamp("2024-02-03T15:30:00")
    assert d.loc["D2", "outcome"] is None and pd.isna(d.loc["D2", "closed_at"])  # reopened
    assert d.loc["D3", "outcome"] == "lost"  # the taxonomy's outcome spellings count too
    assert not res.history.stage_history["stage"].isin(["won", "lost"]).any()
    assert res.report.dropped[
        "stage_history: rows that close the deal (won/lost), used as the deal's outcome instead"] == 3
    assert res.report.filled["deals.outcome: empty, taken from the deal's closing stage-history row"] == 2


def _day_first_export(tmp_path: Path, created: list[str]) -> tuple[Path, dict[str, Any]]:
    """A two-file export whose dates are written day first, and a mapping listing month first before it."""
    src = tmp_path / "uk"
    src.mkdir()
    (src / "Accounts.csv").write_text("Id,Industry\nA1,software\n")
    rows = "".join(f"O{i},A1,R1,{c},,false,false\n" for i, c in enumerate(created, 1))
    rows = rows.replace("O1,A1,R1,20/02/2024,,false,false", "O1,A1,R1,20/02/2024,03/04/2024,true,true")
    (src / "Opps.csv").write_text("Id,AccountId,OwnerId,CreatedDate,CloseDate,IsClosed,IsWon\n" + rows)
    mapping = opportunity_mapping("Accounts.csv", "Opps.csv", name="uk", date_formats=["%m/%d/%Y", "%d/%m/%Y"])
    return src, mapping


def test_date_format_is_chosen_for_the_whole_export_not_per_value(tmp_path: Path) -> None:
    """'10/02/2024' beside '20/02/2024' is day first too, and so is the close date '03/04/2024' that either format
    reads: an export writes its dates one way, so every column is read with the one format, noted once."""
    src, mapping = _day_first_export(tmp_path, ["20/02/2024", "10/02/2024"])
    res = import_csv(src, mapping, cut_at="2024-05-01")
    deals = res.history.deals.set_index("deal_id")
    assert deals.at["O2", "created_at"] == pd.Timestamp("2024-02-10")
    assert deals.at["O1", "closed_at"] == pd.Timestamp("2024-04-03")  # not 4 March
    notes = [n for n in res.report.notes if "dates read with" in n]
    assert notes == ["dates read with '%d/%m/%Y': the first of the date formats ['%m/%d/%Y', '%d/%m/%Y'] that "
                     "reads every date column of the export"]


def test_a_column_the_exports_format_cannot_read_chooses_its_own(tmp_path: Path) -> None:
    """Created dates day first, a close date written month first ('04/18/2024'): no format reads the whole export,
    so each column takes the first format that reads all of its values."""
    src, mapping = _day_first_export(tmp_path, ["20/02/2024", "10/02/2024"])
    opps = (src / "Opps.csv").read_text().replace("03/04/2024", "04/18/2024")
    (src / "Opps.csv").write_text(opps)
    res = import_csv(src, mapping, cut_at="2024-05-01")
    deals = res.history.deals.set_index("deal_id")
    assert deals.at["O2", "created_at"] == pd.Timestamp("2024-02-10")
    assert deals.at["O1", "closed_at"] == pd.Timestamp("2024-04-18")
    notes = " ".join(res.report.notes)
    assert "Opps.csv, column CreatedDate → deals.created_at: dates read with '%d/%m/%Y'" in notes
    assert "column CloseDate → deals.closed_at: dates read with '%m/%d/%Y'" in notes


def test_date_read_differently_by_two_formats_is_refused(tmp_path: Path) -> None:
    """No single format reads the column: a value both formats read, differently, names file, column, line."""
    src, mapping = _day_first_export(tmp_path, ["20/02/2024", "02/14/2024", "10/02/2024"])
    with pytest.raises(DataValidationError) as info:
        import_csv(src, mapping, cut_at="2024-05-01")
    err = info.value
    assert (err.table, err.column, err.ids) == ("deals", "created_at", ["O3"])
    text = str(err)
    for needle in ("Opps.csv, column CreatedDate", "'10/02/2024'", "line(s) 4", "ambiguous", "Fix:"):
        assert needle in text, needle
    assert "'20/02/2024'" not in text and "'02/14/2024'" not in text  # one format reads those: not ambiguous


def _small_crm(tmp_path: Path, kunden: str, deals: str, **extra: Any) -> tuple[Path, dict[str, Any]]:
    """A two-file export (semicolons, German headers) and its mapping; ``extra`` deal columns by target."""
    src = tmp_path / "crm"
    src.mkdir(exist_ok=True)
    (src / "kunden.csv").write_text(kunden)
    (src / "deals.csv").write_text(deals)
    return src, {
        "date_formats": ["%d.%m.%Y %H:%M", "%d.%m.%Y"], "csv": {"delimiter": ";"},
        "tables": {
            "accounts": {"file": "kunden.csv", "columns": {"account_id": "nr", "industry": "branche"}},
            "deals": {"file": "deals.csv", "columns": {
                "deal_id": "nr", "account_id": "kunde", "owner_id": "verkaeufer", "created_at": "angelegt", **extra}},
        },
    }


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC"])
def test_a_date_column_keeps_its_calendar_day_in_any_time_zone(tmp_path: Path, zone: str) -> None:
    """East of UTC, 18.03.2024 was localised as a midnight, turned into UTC and written as 17 March."""
    src, mapping = _small_crm(tmp_path, "nr;branche\nK1;Handel\n",
                              "nr;kunde;verkaeufer;angelegt;erwartet\nV1;K1;anna;02.01.2024 09:00;18.03.2024\n",
                              expected_close_date="erwartet")
    mapping["timezone"] = zone
    d = import_csv(src, mapping, cut_at="2024-04-01").history.deals.set_index("deal_id")
    assert pd.Timestamp(d.loc["V1", "expected_close_date"]).date() == pd.Timestamp("2024-03-18").date()
    created = pd.Timestamp("2024-01-02T09:00:00").tz_localize(zone).tz_convert("UTC").tz_localize(None)
    assert d.loc["V1", "created_at"] == created  # a timestamp is still an instant, placed in the zone


def test_a_row_wider_than_its_header_is_refused_naming_its_line(tmp_path: Path) -> None:
    """A trailing separator on each data row made pandas take the ids for an index and shift every column."""
    deals = "nr;kunde;verkaeufer;angelegt\nV1;K1;anna;02.01.2024 09:00\n"
    src, mapping = _small_crm(tmp_path, "nr;branche\nK1;Handel;\nK2;Bau;\n", deals)  # empty extra fields
    accounts = import_csv(src, mapping, cut_at="2024-04-01").history.accounts
    assert accounts.set_index("account_id")["industry"].to_dict() == {"K1": "Handel", "K2": "Bau"}
    src, mapping = _small_crm(tmp_path, "nr;branche\nK1;Handel;X\nK2;Bau;Y\n", deals)  # was read shifted
    with pytest.raises(DataValidationError, match=r"kunden.csv line 2 has 3 fields where its header names 2") as e:
        import_csv(src, mapping, cut_at="2024-04-01")
    assert "line 2" in (e.value.fix or "")


def test_a_repeated_id_names_every_line_that_holds_it(tmp_path: Path) -> None:
    """Only the first of the two lines was named: the one to delete was not."""
    src, mapping = _small_crm(tmp_path, "nr;branche\nK1;Handel\n",
                              "nr;kunde;verkaeufer;angelegt\nV1;K1;anna;02.01.2024 09:00\n"
                              "V2;K1;anna;03.01.2024 09:00\nV1;K1;ben;04.01.2024 09:00\n")
    with pytest.raises(DataValidationError, match=r"repeat an id.*in the export: deals.csv lines 2, 4"):
        import_csv(src, mapping, cut_at="2024-04-01")
