"""Helpers shared by the manager page tests: keys, hand-built results, an app with the page mounted."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from dealscore.scoring.result import DealWarning, NextAction, Reason, ScoreResult
from dealscore_service.auth import hash_key
from dealscore_service.main import create_app
from dealscore_service.settings import Settings
from dealscore_service.store import ScoreStore, ScoreToSave
from dealscore_service.store.timeline import STAGE_CHANGE_FIELDS, TOUCHPOINT_FIELDS
from dealscore_service.ui import mount_ui

KEYS = {
    "manager": ("ui-manager-key-0123456789abcdef", ["read"], {}),
    "emea": ("ui-emea-key-0123456789abcdef", ["read"], {"teams": ["EMEA"]}),
    "ana": ("ui-ana-key-0123456789abcdef", ["read"], {"owners": ["ana"]}),
    "crm": ("ui-crm-key-0123456789abcdef", ["score"], {}),
    "admin": ("ui-admin-key-0123456789abcdef", ["admin"], {}),
}
T0 = datetime(2025, 5, 1)


def keys_json(keys: dict[str, tuple[str, list[str], dict[str, Any]]] = KEYS) -> str:
    """``DEALSCORE_API_KEYS`` for these keys (hashes only, as the service expects)."""
    return json.dumps([{"name": n, "hash": hash_key(raw), "scopes": scopes, **limits}
                       for n, (raw, scopes, limits) in keys.items()])


def key(name: str) -> str:
    return KEYS[name][0]


def result(
    deal_id: str, *, owner: str = "ana", team: str | None = "NA", amount: float | None = 50_000.0,
    declared: str = "proposal", inferred: str = "proposal", p_win: float = 0.30, typical: float | None = 0.45,
    as_of: datetime = T0, warnings: list[DealWarning] | None = None, account: str | None = None,
    mismatch: str | None = None,
) -> ScoreResult:
    """A plausible full result; only the fields a test cares about need passing."""
    if mismatch is None:
        mismatch = "consistent" if declared == inferred else "ahead_of_evidence"
    grade = "A" if p_win >= 0.6 else "B" if p_win >= 0.4 else "C" if p_win >= 0.2 else "D"
    return ScoreResult(
        deal_id=deal_id, as_of=as_of, account_id=account or f"acct-{deal_id}", owner_id=owner, team=team,
        amount=amount, p_win=p_win, grade=grade, declared_stage=declared, inferred_stage=inferred,
        inferred_stage_probability=0.7, stage_probabilities={declared: 0.2, inferred: 0.7} if declared != inferred
        else {declared: 0.8, "negotiation": 0.2},
        stage_mismatch=mismatch,  # type: ignore[arg-type]
        mismatch_explanation=("The CRM says proposal but no proposal was sent and pricing was never discussed."
                              if mismatch == "ahead_of_evidence" else "The evidence agrees with the CRM stage."),
        stage_typical_p_win=typical,
        reasons_up=[Reason(group="engagement", text="Decision maker met", points=6.0,
                           features=["decision_maker_engaged"])],
        reasons_down=[Reason(group="silence", text="No reply from the customer in 21 days", points=-9.0,
                             features=["days_since_last_inbound"]),
                      Reason(group="threading", text="Only one contact involved", points=-4.0,
                             features=["n_contacts"])],
        base_points=38.0, other_points=-1.0,
        warnings=warnings if warnings is not None else [
            DealWarning(code="gone_quiet", title="Gone quiet", evidence="No inbound touch for 21 days (usual gap 9)",
                        threshold="p90 gap of won deals: 9 days", severity="high")],
        actions=[NextAction(code=f"a{i}", text=t, stage="proposal", expected_change=c, reason="won deals did this")
                 for i, (t, c) in enumerate([("Call the champion to restart the conversation", 7.5),
                                             ("Book a meeting with the decision maker", 5.0),
                                             ("Send a mutual close plan", 2.0)])],
        model_version="dealscore/1",
    )


def save(store: ScoreStore, *results: ScoreResult, is_open: bool = True,
         touchpoints: list[dict[str, Any]] | None = None, stage_changes: list[dict[str, Any]] | None = None) -> None:
    """Store results as the API would (one payload hash per deal and as-of time), with a timeline if given.

    ``touchpoints`` / ``stage_changes`` are rows (``{field: value}``), stored in
    the store's columnar form; ``None`` stores "not kept", as older scores are.
    """
    store.save([ScoreToSave(result=r, payload_hash=f"{r.deal_id}-{r.as_of.isoformat()}", is_open=is_open,
                            touchpoints=columns(touchpoints, TOUCHPOINT_FIELDS),
                            stage_changes=columns(stage_changes, STAGE_CHANGE_FIELDS))
                for r in results])


def columns(rows: list[dict[str, Any]] | None, fields: tuple[str, ...]) -> dict[str, list[Any]] | None:
    """Rows as the store's columnar form (missing fields → ``None``)."""
    if rows is None:
        return None
    return {f: [row.get(f) for row in rows] for f in fields}


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings for a test app in ``tmp`` (validated like the environment would be)."""
    values: dict[str, Any] = {
        "data_dir": tmp, "database_url": f"sqlite:///{tmp / 'scores.db'}", "use_registry": False,
        "model_retry_seconds": 0, "api_keys": keys_json(), "log_json": False, "log_level": "WARNING",
        "list_totals_max_age_seconds": 0,  # exact totals right after a write, as the tests read them
        "freeze_heap": False,  # each start would walk and freeze the whole suite's heap (~0.15 s)
    }
    return Settings(**{**values, **overrides})


def build_app(settings: Settings) -> FastAPI:
    """The service app with the page mounted (``create_app`` may already do it; mounting is idempotent)."""
    app = create_app(settings)
    mount_ui(app)
    return app


def login(client: TestClient, name: str) -> None:
    """Sign in through the form, as a browser would."""
    resp = client.post("/ui/login", data={"api_key": key(name), "next": "/ui"})
    assert resp.status_code == 303, resp.text
