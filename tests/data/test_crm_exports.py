"""The shipped CRM mappings, end to end: a hand-made export in each CRM's documented column shape
(docs/importers.md names the source of each) → import → validate → score, compared with
hand-written expected tables.

The four exports describe the same small pipeline (two closed deals, two open ones),
so the expected tables below differ only where the CRMs differ: ids, what each
export records (HubSpot's "Date entered" columns, Pipedrive's single current stage)
and the rules each mapping documents (directions from subject prefixes, roles).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from dealscore.data.history import DealHistory, write_history
from dealscore.data.importers.csv_mapping import import_csv, load_mapping
from dealscore.data.importers.mapping import SHIPPED_MAPPINGS
from dealscore.data.validate import load_and_validate, validate_history
from dealscore.scoring import Scorer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPORTS = {"salesforce-api": "salesforce", "salesforce-report": "salesforce_report", "hubspot": "hubspot",
           "pipedrive": "pipedrive"}


def _rows(frame: pd.DataFrame, cols: list[str]) -> list[tuple[Any, ...]]:
    """The frame's rows as plain tuples (timestamps as ISO text, missing as None), in (deal, time) order."""
    out = []
    for rec in frame[cols].itertuples(index=False):
        out.append(tuple(None if pd.isna(v) else (v.isoformat() if isinstance(v, pd.Timestamp) else v)
                         for v in rec))
    return out


@pytest.fixture(scope="module")
def imported() -> dict[str, Any]:
    return {name: import_csv(FIXTURES / folder, name) for name, folder in EXPORTS.items()}


# ------------------------------------------------------------------ expected tables, written by hand

SF_REPORT_DEALS = [
    # deal_id, deal_name, account_id, owner_id, team, created_at (UTC), amount, currency, outcome, closed_at
    ("006A000000OppA", "Acme platform", "001A000000AcmeA", "Dana Rep", "Enterprise East", "2024-01-08T14:15:00",
     48000.0, "EUR", "won", "2024-03-18T20:40:00"),
    ("006A000000OppB", "Globex pilot", "001A000000GlobB", "Lee Rep", "Mid-Market", "2024-01-22T15:00:00",
     15000.0, "USD", "lost", "2024-03-01T16:15:00"),
    ("006A000000OppC", "Initech rollout", "001A000000InitC", "Dana Rep", "Enterprise East", "2024-02-26T18:20:00",
     30000.0, "EUR", None, None),
    ("006A000000OppD", "Acme add-on", "001A000000AcmeA", "Dana Rep", "Enterprise East", "2024-04-02T12:50:00",
     None, "EUR", None, None),
]
SF_REPORT_STAGES = [
    ("006A000000OppA", "2024-01-08T14:15:00", "prospecting"),
    ("006A000000OppA", "2024-01-15T16:02:00", "qualification"),
    ("006A000000OppA", "2024-01-29T20:40:00", "discovery"),
    ("006A000000OppA", "2024-02-20T15:05:00", "proposal"),
    ("006A000000OppB", "2024-01-22T15:00:00", "prospecting"),
    ("006A000000OppB", "2024-02-05T14:30:00", "qualification"),
    ("006A000000OppC", "2024-02-26T18:20:00", "prospecting"),
    ("006A000000OppC", "2024-03-19T18:30:00", "discovery"),
    ("006A000000OppD", "2024-04-02T12:50:00", "prospecting"),
]
SF_REPORT_ACTIVITIES = [
    # activity_id, occurred_at (UTC), type, direction, contact_role, contact_name
    ("00TA0000000T001", "2024-01-09T15:00:00", "email", "outbound", "decision_maker", "Ann Buyer"),  # → Email:
    ("00TA0000000T002", "2024-01-15T16:00:00", "call", "inbound", "decision_maker", "Ann Buyer"),  # Call Type
    ("00TA0000000T003", "2024-01-16T14:10:00", "email", "inbound", "decision_maker", "Bo Boss"),  # ← Email:
    ("00UA0000000E001", "2024-01-31T04:59:59", "meeting", None, "decision_maker", "Bo Boss"),  # event, end of day
    ("00TA0000000T004", "2024-02-20T16:00:00", "proposal", None, "decision_maker", "Bo Boss"),  # no rule: none
    ("00TA0000000T005", "2024-02-07T04:59:59", "email", "outbound", "user", "Cy User"),  # Email: (sent)
    ("00TA0000000T006", "2024-03-12T20:00:00", "call", "outbound", "champion", "Di Champ"),
]

HUBSPOT_DEALS = [
    ("9001", "Acme platform", "501", "Dana Rep", "Enterprise East", "2024-01-08T14:15:00", 48000.0, "EUR", "won",
     "2024-03-18T20:40:00"),
    ("9002", "Globex pilot", "502", "Lee Rep", "Mid-Market", "2024-01-22T15:00:00", 15000.0, "USD", "lost",
     "2024-03-01T16:15:00"),
    ("9003", "Initech rollout", "503", "Dana Rep", "Enterprise East", "2024-02-26T18:20:00", 30000.0, "EUR", None,
     None),
    ("9004", "Acme add-on", "501", "Dana Rep", "Enterprise East", "2024-04-02T12:50:00", None, "EUR", None, None),
]
HUBSPOT_STAGES = [
    # one row per filled "Date entered" cell (Decision Maker Bought-In skipped by 9001: no row)
    ("9001", "2024-01-08T14:15:00", "prospecting"),
    ("9001", "2024-01-15T16:02:00", "qualification"),
    ("9001", "2024-01-29T20:40:00", "solution"),
    ("9001", "2024-02-20T15:05:00", "negotiation"),
    ("9002", "2024-01-22T15:00:00", "prospecting"),
    ("9002", "2024-02-05T14:30:00", "qualification"),
    ("9003", "2024-02-26T18:20:00", "prospecting"),
    ("9003", "2024-03-04T15:00:00", "qualification"),
    ("9003", "2024-03-19T18:30:00", "solution"),
    # the current Deal Stage: 9003 moved back to Qualified To Buy, and stays there
    ("9003", "2024-04-03T14:45:00", "qualification"),
    ("9004", "2024-04-02T12:50:00", "prospecting"),
]
HUBSPOT_ACTIVITIES = [
    ("7001", "2024-01-09T20:00:00", "email", "outbound", None, "Ann Buyer"),  # Email direction: Sent
    ("7002", "2024-01-15T21:00:00", "call", "inbound", None, "Ann Buyer"),  # Call direction
    ("7003", "2024-01-16T14:10:00", "email", "inbound", None, "Bo Boss"),  # Email direction: Incoming
    ("7004", "2024-01-30T20:00:00", "meeting", None, None, "Bo Boss"),
    ("7005", "2024-02-20T21:00:00", "note", "outbound", None, "Bo Boss"),  # task "Email: ..."
    ("7006", "2024-02-06T15:00:00", "note", None, None, "Cy User"),
    ("7007", "2024-03-05T14:00:00", "note", "inbound", None, "Di Champ"),  # task "Re: ..."
    ("7008", "2024-03-12T21:00:00", "call", "outbound", None, "Di Champ"),
]

PIPEDRIVE_DEALS = [
    ("101", "Acme platform", "Acme Corp", "Dana Rep", None, "2024-01-08T14:15:00", 48000.0, "EUR", "won",
     "2024-03-18T20:40:00"),
    ("102", "Globex pilot", "Globex", "Lee Rep", None, "2024-01-22T15:00:00", 15000.0, "USD", "lost",
     "2024-03-01T16:15:00"),
    ("103", "Initech rollout", "Initech", "Dana Rep", None, "2024-02-26T18:20:00", 30000.0, "EUR", None, None),
    ("104", "Acme add-on", "Acme Corp", "Dana Rep", None, "2024-04-02T12:50:00", 0.0, "EUR", None, None),
]
PIPEDRIVE_STAGES = [  # the current stage at its last change (created time when it never changed)
    ("101", "2024-02-20T15:05:00", "negotiation"),
    ("102", "2024-02-05T14:30:00", "qualification"),
    ("103", "2024-03-19T18:30:00", "solution"),
    ("104", "2024-04-02T12:50:00", "prospecting"),
]
PIPEDRIVE_ACTIVITIES = [
    ("5001", "2024-01-09T20:00:00", "email", "outbound", None, "Ann Buyer"),  # "Email to ..."
    ("5002", "2024-01-15T21:00:00", "call", "inbound", None, "Ann Buyer"),  # "Call from ..."
    ("5003", "2024-01-30T21:00:00", "meeting", None, None, "Bo Boss"),
    ("5004", "2024-02-20T21:00:00", "note", None, None, "Bo Boss"),
    ("5005", "2024-02-06T23:59:59", "meeting", None, None, "Cy User"),  # lunch: due date, end of day
    ("5006", "2024-03-12T21:00:00", "call", "outbound", None, "Di Champ"),  # "Call to ..."
]

EXPECTED = {
    "salesforce-report": (SF_REPORT_DEALS, SF_REPORT_STAGES, SF_REPORT_ACTIVITIES),
    "hubspot": (HUBSPOT_DEALS, HUBSPOT_STAGES, HUBSPOT_ACTIVITIES),
    "pipedrive": (PIPEDRIVE_DEALS, PIPEDRIVE_STAGES, PIPEDRIVE_ACTIVITIES),
}
DEAL_COLS = ["deal_id", "deal_name", "account_id", "owner_id", "team", "created_at", "amount", "currency", "outcome",
             "closed_at"]
ACTIVITY_COLS = ["activity_id", "occurred_at", "type", "direction", "contact_role", "contact_name"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_mapping_gives_the_expected_tables(imported: dict[str, Any], name: str) -> None:
    deals, stages, activities = EXPECTED[name]
    clean, _ = validate_history(imported[name].history)
    assert _rows(clean.deals.sort_values("deal_id"), DEAL_COLS) == deals
    assert _rows(clean.stage_history, ["deal_id", "changed_at", "stage"]) == stages
    assert sorted(_rows(clean.activities, ACTIVITY_COLS)) == sorted(activities)


def test_accounts_carry_names_and_fill_unknown_industry(imported: dict[str, Any]) -> None:
    for name in ("salesforce-report", "hubspot", "pipedrive"):
        acc = imported[name].history.accounts.set_index("account_name")
        assert list(acc.index) == ["Acme Corp", "Globex", "Initech"], name
        assert acc.loc["Initech", "industry"] == "unknown", name


def test_hubspot_counts_skipped_cells_and_repeated_changes(imported: dict[str, Any]) -> None:
    dropped = imported["hubspot"].report.dropped
    assert dropped["deals.csv: empty cells of the 7 unpivoted columns (nothing recorded)"] == 16
    # 9001 Closed Won, 9002 Closed Lost and 9004 Appointment Scheduled appear in both stage sources
    assert dropped["stage_history: the same change (deal, stage, time) given twice, kept once"] == 3


def test_hubspot_accounts_from_the_deals_file(tmp_path: Path) -> None:
    """Without a companies export: accounts deduplicated from the deals file (distinct), names kept."""
    spec = {"file": "deals.csv", "distinct": True,
            "columns": {"account_id": "Associated Company IDs", "account_name": "Associated Company",
                        "industry": {"constant": "unknown"}}}
    raw = _mapping_dict("hubspot")
    raw["tables"]["accounts"] = spec
    res = import_csv(FIXTURES / "hubspot", raw)
    acc = res.history.accounts
    assert _rows(acc, ["account_id", "account_name", "industry"]) == [
        ("501", "Acme Corp", "unknown"), ("502", "Globex", "unknown"), ("503", "Initech", "unknown")]
    assert res.report.dropped["deals.csv: rows repeating a accounts.account_id (distinct: the first row is kept)"] == 1


def test_a_hubspot_deal_of_several_companies_takes_the_first_not_a_made_up_account(tmp_path: Path) -> None:
    """"502;501" was read as one account id no export holds, and an account with industry "unknown" was made."""
    src = tmp_path / "hubspot"
    src.mkdir()
    for f in (FIXTURES / "hubspot").iterdir():
        (src / f.name).write_bytes(f.read_bytes())
    deals = (src / "deals.csv").read_text()
    deals = deals.replace(",Mid-Market,502,Globex,", ",Mid-Market,502;501,Globex,", 1)
    deals = deals.replace(",Enterprise East,501,Acme Corp,", ",Enterprise East,;501,Acme Corp,", 1)
    (src / "deals.csv").write_text(deals)
    res = import_csv(src, "hubspot")
    d = res.history.deals.set_index("deal_id")
    assert d.loc["9002", "account_id"] == "502" and "502;501" not in set(res.history.accounts["account_id"])
    assert d.loc["9001", "account_id"] == "501"  # the first value the cell lists, not its empty first part
    key = ("deals.account_id: cells of deals.csv (column Associated Company IDs) listing several values joined by "
           "';', the first kept")
    assert res.report.filled[key] == 2


def test_every_shipped_mapping_resolves_by_name() -> None:
    for name in [*EXPORTS, "salesforce"]:
        assert load_mapping(name).sources["deals"], name


def test_a_task_without_direction_is_never_made_outbound(imported: dict[str, Any]) -> None:
    """Tasks whose subject matches no documented prefix keep no direction, and the report says how many."""
    for name in ("salesforce-report", "hubspot", "pipedrive"):
        notes = " ".join(imported[name].report.notes)
        acts = imported[name].history.activities
        talk = acts["type"].isin(["email", "call"])
        missing = int((talk & acts["direction"].isna()).sum())
        if missing:
            assert f"{missing} of {int(talk.sum())} emails and calls have no direction" in notes


def _mapping_dict(name: str) -> dict[str, Any]:
    return yaml.safe_load((SHIPPED_MAPPINGS / f"{name}.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bundle(trained: Any) -> Any:
    """A real model trained on a simulated CRM (the suite's one, ``tests/conftest.py``): the importer's output
    must score."""
    return trained.bundle


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_import_validate_score_end_to_end(imported: dict[str, Any], bundle: Any, name: str,
                                          tmp_path: Path) -> None:
    folder = write_history(imported[name].history, tmp_path / name)
    history, report = load_and_validate(folder)
    assert isinstance(history, DealHistory)
    assert report.won_deals >= 1 and report.lost_deals >= 1
    scores = Scorer(bundle).score_frame(history)
    open_deals = sorted(history.deals.loc[history.deals["outcome"].isna(), "deal_id"])
    assert sorted(scores["deal_id"]) == open_deals
    assert scores["p_win"].between(0, 1).all()
