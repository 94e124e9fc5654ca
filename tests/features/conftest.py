"""Fixtures for feature tests: small random histories with every point-in-time trap in them.

The generator deliberately produces what real CRMs do: stage changes and
touchpoints logged late (``recorded_at`` after the event), touchpoints logged
before they happen (scheduled meetings), back-dated stage changes, amount-only
stage rows, pushed close dates, regressions and skipped stages, contacts without
roles, missing account fields, open deals, and a ``stage_truth`` table for some
deals. Histories go through ``validate_history`` like every real input.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from dealscore.data.history import DealHistory, from_frames
from dealscore.data.validate import validate_history
from tests.features import reference_features

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["prospecting", "qualification", "discovery", "solution", "proposal", "negotiation"]
TYPES = ["email", "call", "meeting", "demo", "proposal", "contract", "note"]
ROLES = ["decision_maker", "champion", "influencer", "user", "other"]
DAY = pd.Timedelta(days=1)


def random_history(seed: int, n_deals: int = 12, n_owners: int = 3, n_accounts: int = 5,
                   start: str = "2023-01-02", late_share: float = 0.3, jitter_ns: bool = False) -> DealHistory:
    """A small validated history whose deals overlap in time (so cross-deal features matter).

    ``jitter_ns`` adds random nanoseconds to every event time, so that sub-second
    ordering and exact ties at odd resolutions are exercised too.
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    cut = t0 + pd.Timedelta(days=240)
    accounts = pd.DataFrame({
        "account_id": [f"A{i}" for i in range(n_accounts)],
        "industry": [rng.choice(["software", "retail", "finance"]) for _ in range(n_accounts)],
        "employees": [float(rng.integers(10, 5000)) if rng.random() < 0.8 else np.nan for _ in range(n_accounts)],
        "annual_revenue": [float(rng.integers(1, 500)) * 1e5 if rng.random() < 0.8 else np.nan
                           for _ in range(n_accounts)],
        "region": [rng.choice(["emea", "na", "apac"]) for _ in range(n_accounts)],
        "created_at": [t0 - pd.Timedelta(days=int(rng.integers(0, 400))) if rng.random() < 0.7 else pd.NaT
                       for _ in range(n_accounts)],
    })
    deals, stages, acts, truth = [], [], [], []
    for i in range(n_deals):
        did = f"D{i:03d}"
        created = t0 + pd.Timedelta(minutes=int(rng.integers(0, 200 * 24 * 60)))
        life = pd.Timedelta(minutes=int(rng.integers(2 * 24 * 60, 120 * 24 * 60)))
        closed = created + life
        if closed > cut:
            closed, outcome = pd.NaT, None
        else:
            outcome = "won" if rng.random() < 0.45 else "lost"
        end = cut if pd.isna(closed) else closed
        deals.append({
            "deal_id": did, "account_id": f"A{rng.integers(0, n_accounts)}",
            "owner_id": f"O{rng.integers(0, n_owners)}",
            "created_at": created, "amount": float(rng.integers(1, 100)) * 1000 if rng.random() < 0.9 else np.nan,
            "product": rng.choice(["basic", "pro", None]), "source": rng.choice(["inbound", "outbound", "partner"]),
            "expected_close_date": (end + pd.Timedelta(days=int(rng.integers(-5, 30)))).normalize()
            if rng.random() < 0.8 else pd.NaT,
            "closed_at": closed, "outcome": outcome,
        })
        # stage path with regressions and skips
        n_changes = int(rng.integers(0, 7))
        times = sorted(created + (end - created) * float(f) for f in rng.random(n_changes))
        if n_changes and rng.random() < 0.7:
            times[0] = created
        stage = 0
        ecd = created.normalize() + pd.Timedelta(days=int(rng.integers(20, 90)))
        for t in times:
            stage = int(np.clip(stage + rng.choice([-1, 0, 1, 1, 2]), 0, 5))
            lag = pd.Timedelta(hours=float(rng.exponential(72))) if rng.random() < late_share else pd.NaT
            row = {"deal_id": did, "stage": STAGES[stage], "changed_at": t,
                   "recorded_at": t + lag if not pd.isna(lag) else pd.NaT}
            if rng.random() < 0.6:
                row["amount"] = float(rng.integers(1, 100)) * 1000
            if rng.random() < 0.6:
                ecd = ecd + pd.Timedelta(days=int(rng.integers(-10, 25)))
                row["expected_close_date"] = ecd
            stages.append(row)
        # touchpoints
        n_acts = int(rng.integers(0, 30))
        contacts = [f"C{i}_{k}" for k in range(int(rng.integers(1, 5)))]
        for k in range(n_acts):
            occ = created + (end - created) * float(rng.random())
            r = rng.random()
            if r < late_share:
                rec = occ + pd.Timedelta(hours=float(rng.exponential(120)))  # logged late
            elif r < late_share + 0.05:
                rec = occ - pd.Timedelta(hours=float(rng.uniform(1, 100)))  # logged before it happened
            else:
                rec = pd.NaT
            cid = rng.choice(contacts) if rng.random() < 0.85 else None
            acts.append({
                "activity_id": f"{did}-a{k}", "deal_id": did, "occurred_at": occ, "type": rng.choice(TYPES),
                "direction": rng.choice(["inbound", "outbound", None], p=[0.35, 0.55, 0.1]),
                "contact_id": cid, "contact_role": rng.choice(ROLES) if cid and rng.random() < 0.7 else None,
                "recorded_at": rec,
            })
        for _ in range(int(rng.integers(0, 3))):
            truth.append({"deal_id": did, "as_of": created + (end - created) * float(rng.random()),
                          "stage": STAGES[int(rng.integers(0, 6))]})
    if jitter_ns:
        for rows, cols in ((deals, ("created_at", "closed_at")), (stages, ("changed_at", "recorded_at")),
                           (acts, ("occurred_at", "recorded_at")), (truth, ("as_of",))):
            for row in rows:
                for col in cols:
                    if col in row and not pd.isna(row[col]):
                        row[col] = row[col] + pd.Timedelta(int(rng.integers(0, 10**9)), unit="ns")
        for row in deals:  # keep the close after every jittered event of the deal
            if not pd.isna(row["closed_at"]):
                row["closed_at"] = row["closed_at"] + pd.Timedelta(seconds=2)
    frames = {
        "accounts": accounts,
        "deals": pd.DataFrame(deals),
        "stage_history": pd.DataFrame(stages, columns=["deal_id", "stage", "changed_at", "recorded_at", "amount",
                                                       "expected_close_date"]),
        "activities": pd.DataFrame(acts, columns=["activity_id", "deal_id", "occurred_at", "type", "direction",
                                                  "contact_id", "contact_role", "recorded_at"]),
        "stage_truth": pd.DataFrame(truth, columns=["deal_id", "as_of", "stage"]),
    }
    history, _ = validate_history(from_frames(frames, cut_at=cut))
    return history


@pytest.fixture(scope="session")
def reference() -> ModuleType:
    """The straightforward per-snapshot implementation of every feature, the oracle of the vectorised one."""
    return reference_features


def simulator_available() -> bool:
    """Whether dealscore.data.simulate (written in parallel) can be imported."""
    try:
        from dealscore.data.simulate import simulate  # noqa: F401
    except ImportError:
        return False
    return True


T0 = pd.Timestamp("2024-01-01")


def day(n: float) -> pd.Timestamp:
    """Day ``n`` of the hand-made histories (2024-01-01 is day 0)."""
    return T0 + pd.Timedelta(days=n)


def hand_history(*, deals: list[dict], stages: list[dict] = (), acts: list[dict] = (), cut: float = 100,
                 accounts: list[dict] | None = None) -> DealHistory:
    """A validated history from a few hand-written rows (days as numbers, see :func:`day`)."""
    def times(rows: list[dict], cols: tuple[str, ...]) -> pd.DataFrame:
        out = []
        for r in rows:
            r = dict(r)
            for c in cols:
                if c in r and r[c] is not None:
                    r[c] = day(r[c])
            out.append(r)
        return pd.DataFrame(out)

    deal_rows = []
    for i, d in enumerate(deals):
        row = {"account_id": "A1", "owner_id": "O1", "amount": 1000.0, **d}
        row.setdefault("deal_id", f"D{i}")
        deal_rows.append(row)
    frames = {
        "accounts": pd.DataFrame(accounts or [{"account_id": "A1", "industry": "software", "employees": 50,
                                               "annual_revenue": 1e6, "region": "emea"}]),
        "deals": times(deal_rows, ("created_at", "closed_at", "expected_close_date")),
        "stage_history": times(list(stages), ("changed_at", "recorded_at", "expected_close_date"))
        if stages else pd.DataFrame(columns=["deal_id", "stage", "changed_at"]),
        "activities": times(list(acts), ("occurred_at", "recorded_at"))
        if acts else pd.DataFrame(columns=["deal_id", "occurred_at", "type"]),
    }
    history, _ = validate_history(from_frames(frames, cut_at=day(cut)))
    return history


def snapshot(deal_id: str | list[str], as_of: float | list[float]) -> pd.DataFrame:
    """Snapshots of hand-made histories: one deal at several days, or several deals at one day."""
    ids = [deal_id] if isinstance(deal_id, str) else deal_id
    days = [as_of] if not isinstance(as_of, list) else as_of
    if len(ids) == 1:
        ids = ids * len(days)
    if len(days) == 1:
        days = days * len(ids)
    return pd.DataFrame({"deal_id": pd.Series(ids, dtype=object), "as_of": [day(x) for x in days]})
