"""The oracle: the true win probability of a simulated deal at any moment.

Evaluations report it beside the model as the ceiling: it knows each deal's
latent qualities and real state, which no model sees. It works on an in-memory
:class:`SimulatedCRM` or on a written simulation (the ``truth/`` folder, or the
history folder holding it), rebuilding the exact latent law from
``truth/params.json`` and ``truth/deal_truth.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dealscore.data.simulate.config import KIND_NAMES, SEGMENTS, STAGES, SimConfig
from dealscore.data.simulate.core import TRUTH_DIR, SimulatedCRM
from dealscore.data.simulate.latent import LatentLaw, Qualities, build_law, win_probability
from dealscore.errors import DataValidationError

_SHIFT = np.int64(2) ** 40


def _truth_folder(path: str | Path) -> Path:
    p = Path(path)
    if (p / "params.json").is_file():
        return p
    if (p / TRUTH_DIR / "params.json").is_file():
        return p / TRUTH_DIR
    raise DataValidationError(
        f"no simulator truth in {p}: expected {p / 'params.json'} or {p / TRUTH_DIR / 'params.json'}",
        table="truth", fix="pass the folder written by `dealscore generate` (or its truth/ sub-folder)",
    )


def _load(path: str | Path) -> tuple[LatentLaw, pd.Index, pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    folder = _truth_folder(path)
    params = json.loads((folder / "params.json").read_text(encoding="utf-8"))
    cfg = SimConfig.from_dict(params["config"])
    origin = pd.Timestamp(params["origin"])
    dt = pd.read_csv(folder / "deal_truth.csv", dtype={"deal_id": str, "segment": str})
    q = Qualities(
        fit=dt["fit"].to_numpy(float), engagement=dt["engagement"].to_numpy(float),
        skill=dt["rep_skill"].to_numpy(float), segment=pd.Index(SEGMENTS).get_indexer(dt["segment"]),
        competition=dt["competition"].to_numpy(np.int64), speed=dt["speed"].to_numpy(float),
        champion=dt["champion"].to_numpy(np.int64), dm_access=dt["dm_access"].to_numpy(np.int64),
        extra=dt["extra_contacts"].to_numpy(np.int64),
    )
    law = build_law(cfg, q)
    lp = pd.read_csv(folder / "latent_path.csv", dtype={"deal_id": str, "state": str, "stage": str})
    ids = pd.Index(dt["deal_id"])
    path = pd.DataFrame({
        "deal": ids.get_indexer(lp["deal_id"]),
        "kind": pd.Index(KIND_NAMES).get_indexer(lp["state"]),
        "stage": pd.Index(STAGES).get_indexer(lp["stage"]),
        "revivals": lp["revivals"].to_numpy(np.int64),
        "start": (pd.to_datetime(lp["entered_at"]) - origin) / pd.Timedelta(days=1),
    })
    return law, ids, origin, path, dt


def _from_sim(sim: SimulatedCRM) -> tuple[LatentLaw, pd.Index, pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    p = sim.paths
    path = pd.DataFrame({"deal": p.deal, "kind": p.kind, "stage": p.stage, "revivals": p.revivals,
                         "start": p.start})
    truth = sim.truth["deal_truth"]
    return sim.law, pd.Index(truth["deal_id"]), sim.origin, path, truth


def load_truth(sim_or_truth_dir: SimulatedCRM | str | Path,
               ) -> tuple[LatentLaw, pd.Index, pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """The latent law, deal ids, origin, latent path and deal truth of a simulation (in memory or written)."""
    if isinstance(sim_or_truth_dir, SimulatedCRM):
        return _from_sim(sim_or_truth_dir)
    return _load(sim_or_truth_dir)


def latent_state_at(ids: pd.Index, origin: pd.Timestamp, path: pd.DataFrame, snapshots: pd.DataFrame,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each snapshot's deal index, latent (kind, stage, revivals), days τ spent in that state, and validity.

    ``ok`` is False before the deal was created. A state entered at t counts from t on.
    """
    missing = [c for c in ("deal_id", "as_of") if c not in snapshots]
    if missing:
        raise DataValidationError(f"snapshots: missing column(s) {missing}", table="snapshots", column=missing[0],
                                  fix="pass a DataFrame with columns deal_id and as_of")
    idx = ids.get_indexer(snapshots["deal_id"].astype(str))
    if (idx < 0).any():
        bad = snapshots["deal_id"][idx < 0].astype(str).unique()[:5].tolist()
        raise DataValidationError(
            f"snapshots, column deal_id: {int((idx < 0).sum())} snapshot(s) name deals the simulation does not "
            f"hold: {bad}", table="snapshots", column="deal_id", ids=bad,
            fix="score the oracle on the same simulation the snapshots were taken from",
        )
    delta = (pd.to_datetime(snapshots["as_of"]).to_numpy().astype("datetime64[ns]") - origin.to_datetime64())
    t = delta / np.timedelta64(1, "D")
    path = path.sort_values(["deal", "start"], kind="stable")
    # integer keys (deal, whole seconds) so that a state entered at t counts from t on, whatever the float rounding
    keys = path["deal"].to_numpy().astype(np.int64) * _SHIFT + np.round(path["start"].to_numpy() * 86400.0).astype(
        np.int64)
    q_sec = delta.astype("timedelta64[s]").astype(np.int64)  # numpy floors, also before the origin
    pos = np.searchsorted(keys, idx.astype(np.int64) * _SHIFT + q_sec, side="right") - 1
    p_deal = path["deal"].to_numpy()
    ok = (pos >= 0) & (p_deal[np.maximum(pos, 0)] == idx)
    pos = np.maximum(pos, 0)
    kind = path["kind"].to_numpy()[pos]
    stage = path["stage"].to_numpy()[pos]
    rev = path["revivals"].to_numpy()[pos]
    tau = t - path["start"].to_numpy()[pos]
    return idx, kind, stage, rev, tau, ok


def oracle_win_probability(sim_or_truth_dir: SimulatedCRM | str | Path, snapshots: pd.DataFrame) -> np.ndarray:
    """True P(win) of each snapshot ``(deal_id, as_of)`` from the deal's real latent state then.

    Exact for the simulator's process (see :mod:`dealscore.data.simulate.latent`):
    it conditions on the latent state at ``as_of``, the time already spent in it
    and the deal's latent qualities, nothing later. Snapshots at or after the
    deal's (true) close give 1 or 0; snapshots before the deal was created give NaN.
    """
    law, ids, origin, path, _ = load_truth(sim_or_truth_dir)
    idx, kind, stage, rev, tau, ok = latent_state_at(ids, origin, path, snapshots)
    out = win_probability(law, idx, kind, stage, rev, tau)
    out[~ok] = np.nan
    return out
