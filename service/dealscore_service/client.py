"""The client side of the service: one deal of a history as the JSON body a CRM sends to ``POST /v1/score``.

The demo, the service benchmarks and the web-page tests all need to replay a
history through the HTTP API exactly as a CRM would; this is the one place that
renders a deal in the request's contract shape (deal fields, ``account``,
``stage_history``, ``activities``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.data.schema import ACCOUNTS, ACTIVITIES, DEALS, STAGE_HISTORY, Table


def _clean(value: Any, kind: str) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if kind == "timestamp":
        return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S")
    if kind == "date":
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def _record(row: pd.Series, table: Table, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in table.columns:
        if col.name in skip or col.name not in row.index:
            continue
        value = _clean(row[col.name], col.kind)
        if value is not None:
            out[col.name] = value
    return out


def deal_payload(history: DealHistory, deal_id: str, as_of: pd.Timestamp | None = None) -> dict[str, Any]:
    """The request body for one deal, holding only facts known at ``as_of`` (default: the data cut)."""
    t = history.data_cut if as_of is None else pd.Timestamp(as_of)
    known = history.for_deals([deal_id])
    if as_of is not None:
        known = known.as_known_at(t)
    deals = known.deals
    if deals.empty:
        raise KeyError(f"deal {deal_id} is not in the history (as of {t})")
    deal = deals.iloc[0]
    body = _record(deal, DEALS)
    account = history.accounts[history.accounts["account_id"] == deal["account_id"]]
    body["account"] = _record(account.iloc[0], ACCOUNTS) if len(account) else {"industry": "unknown"}
    body["stage_history"] = [_record(r, STAGE_HISTORY, ("deal_id",)) for _, r in known.stage_history.iterrows()]
    body["activities"] = [_record(r, ACTIVITIES, ("deal_id",)) for _, r in known.activities.iterrows()]
    body["as_of"] = t.strftime("%Y-%m-%dT%H:%M:%S")
    return body


def deal_payloads(folder: str, *, limit: int | None = 25, open_only: bool = True) -> list[dict[str, Any]]:
    """Request bodies for the (open) deals of a history folder, at most ``limit`` of them, as of the data cut."""
    from dealscore.data.validate import load_and_validate

    history, _ = load_and_validate(folder)
    deals = history.deals
    if open_only:
        deals = deals[deals["outcome"].isna()]
    if limit is not None:
        deals = deals.head(limit)
    accounts = {r["account_id"]: _record(r, ACCOUNTS) for _, r in history.accounts.iterrows()}
    wanted = set(deals["deal_id"])
    stages = history.stage_history[history.stage_history["deal_id"].isin(wanted)]
    acts = history.activities[history.activities["deal_id"].isin(wanted)]
    stage_rows = {
        d: [_record(r, STAGE_HISTORY, ("deal_id",)) for _, r in g.iterrows()] for d, g in stages.groupby("deal_id")
    }
    act_rows = {d: [_record(r, ACTIVITIES, ("deal_id",)) for _, r in g.iterrows()] for d, g in acts.groupby("deal_id")}
    cut = history.data_cut.strftime("%Y-%m-%dT%H:%M:%S")
    out = []
    for _, deal in deals.iterrows():
        body = _record(deal, DEALS)
        body["account"] = accounts.get(deal["account_id"], {"industry": "unknown"})
        body["stage_history"] = stage_rows.get(deal["deal_id"], [])
        body["activities"] = act_rows.get(deal["deal_id"], [])
        body["as_of"] = cut
        out.append(body)
    return out
