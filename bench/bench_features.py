"""Feature benchmark: the training frame at scale, the per-snapshot peer, and one deal scored now.

Targets (issue 3):
- training frame (snapshots + features) of a 100,000-deal simulated history
  (about a million snapshots) in under 60 s on 2 cores, peak memory under 8 GiB;
- at least 50x faster per snapshot than the straightforward per-snapshot
  implementation in tests/features/reference_features.py, measured in the same run on the
  same history (the two must also agree there);
- one deal with 200 touchpoints, as of now, with the bundle's context: median
  under 2 ms in process.

The scale run happens in a child process that loads the simulated history from
Parquet, so its peak memory is that of loading, validating and building features,
not of simulating. The last line printed is one JSON object with every figure.

    python bench/bench_features.py [--deals 100000] [--ref-deals 1500] [--ref-snapshots 150] [--repeats 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory, from_frames, load_history, write_history
from dealscore.data.simulate import simulate
from dealscore.data.validate import validate_history
from dealscore.features import (
    FeatureContext,
    FeatureSpec,
    build_features,
    make_labels,
    make_snapshots,
    scoring_snapshots,
)

HERE = Path(__file__).resolve().parent


def _reference() -> Any:
    """The tests' oracle (tests/features/reference_features.py), importable from the repository root."""
    sys.path.insert(0, str(HERE.parent))
    from tests.features import reference_features

    return reference_features


# ----------------------------------------------------------------------------- scale (child process)


def scale_child(folder: str) -> dict[str, Any]:
    """Load, validate, snapshot, build features and labels; report times (run in a fresh process)."""
    t0 = time.perf_counter()
    history, _ = validate_history(load_history(folder))
    t1 = time.perf_counter()
    snaps = make_snapshots(history)
    t2 = time.perf_counter()
    frame = build_features(history, snaps)
    t3 = time.perf_counter()
    labels = make_labels(history, snaps)
    t4 = time.perf_counter()
    return {
        "deals": len(history.deals), "activities": len(history.activities),
        "stage_rows": len(history.stage_history), "snapshots": len(snaps), "columns": frame.shape[1],
        "load_validate_s": t1 - t0, "snapshots_s": t2 - t1, "features_s": t3 - t2, "labels_s": t4 - t3,
        "labelled": int(labels["won"].notna().sum()),
    }


def scale(n_deals: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_history(simulate(n_deals, seed=seed).history, Path(tmp) / "h", fmt="parquet")
        simulate_s = time.perf_counter() - t
        done = subprocess.run([sys.executable, __file__, "--child", str(Path(tmp) / "h")], capture_output=True,
                              text=True, check=True)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["training_frame_s"] = out["snapshots_s"] + out["features_s"]
    out["peak_rss_gib"] = peak_kib / 2**20
    out["simulate_and_write_s"] = simulate_s
    return out


# ----------------------------------------------------------------------------- reference peer


def versus_reference(n_deals: int, n_snapshots: int, seed: int) -> dict[str, Any]:
    """Per-snapshot time of the vectorised pipeline (whole history) and of the reference (a sample)."""
    history, _ = validate_history(simulate(n_deals, seed=seed + 1).history)
    snaps = make_snapshots(history)
    spec = FeatureSpec.default()
    t = time.perf_counter()
    ours = build_features(history, snaps, spec=spec)
    ours_s = time.perf_counter() - t
    sample = snaps.sample(min(n_snapshots, len(snaps)), random_state=seed).sort_index()
    ref = _reference()
    t = time.perf_counter()
    theirs = ref.reference_features(history, sample, spec)
    ref_s = time.perf_counter() - t
    mine = ours.loc[sample.index]
    agree = True
    for col in spec.feature_names:
        a, b = mine[col], theirs[col]
        if isinstance(a.dtype, pd.CategoricalDtype):
            agree &= a.astype(object).fillna("").tolist() == b.astype(object).fillna("").tolist()
        else:
            x, y = a.to_numpy(float), b.to_numpy(float)
            agree &= bool((np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y))).all())
    per_ours = ours_s / len(snaps) * 1e3
    per_ref = ref_s / len(sample) * 1e3
    return {
        "reference_history_deals": n_deals, "reference_history_snapshots": len(snaps),
        "reference_sample": len(sample), "pipeline_ms_per_snapshot": per_ours,
        "reference_ms_per_snapshot": per_ref, "speedup_vs_reference": per_ref / per_ours,
        "reference_agrees": agree,
    }


# ----------------------------------------------------------------------------- one deal now


def one_deal_payload(history: DealHistory, n_touch: int = 200) -> tuple[DealHistory, pd.Timestamp]:
    """An API-like history (object columns, one deal and its account) whose deal has ``n_touch`` touchpoints.

    Takes the open deal with the most touchpoints and repeats its touchpoints at
    earlier times until there are ``n_touch``, keeping a realistic mix.
    """
    deals = history.deals
    open_ids = deals.loc[deals["closed_at"].isna(), "deal_id"]
    acts = history.activities[history.activities["deal_id"].isin(open_ids)]
    deal_id = acts["deal_id"].value_counts().index[0]
    one = history.for_deals([deal_id])
    own = one.activities.reset_index(drop=True)
    reps = -(-n_touch // len(own))
    grown = pd.concat([own.assign(occurred_at=own["occurred_at"] - pd.Timedelta(hours=7 * k),
                                  recorded_at=own["recorded_at"] - pd.Timedelta(hours=7 * k),
                                  activity_id=own["activity_id"].astype(str) + f"-{k}") for k in range(reps)])
    created = one.deals["created_at"].iloc[0]
    grown = grown[grown["occurred_at"] >= created].head(n_touch)
    if len(grown) < n_touch:  # a young deal: squeeze the copies into its life
        span = (history.data_cut - created) / (n_touch + 1)
        grown = pd.concat([own] * reps).head(n_touch).reset_index(drop=True)
        grown["occurred_at"] = [created + span * (i + 1) for i in range(n_touch)]
        grown["recorded_at"] = pd.NaT
        grown["activity_id"] = [f"T{i}" for i in range(n_touch)]
    account = history.accounts[history.accounts["account_id"].isin(one.deals["account_id"])]
    frames = {name: t.astype({c: object for c in t.columns if t[c].dtype != "datetime64[ns]"
                              and not pd.api.types.is_float_dtype(t[c])})
              for name, t in {"accounts": account, "deals": one.deals, "stage_history": one.stage_history,
                              "activities": grown}.items()}
    payload = from_frames(frames)
    payload, _ = validate_history(payload)
    return payload, history.data_cut


def one_deal(n_deals: int, seed: int, repeats: int) -> dict[str, Any]:
    history, _ = validate_history(simulate(n_deals, seed=seed + 2).history)
    spec = FeatureSpec.default().fit_vocabulary(build_features(history, make_snapshots(history)))
    context = FeatureContext().fit(history, spec=spec)
    payload, now = one_deal_payload(history)
    snaps = scoring_snapshots(payload, now)
    assert len(payload.activities) == 200 and len(snaps) == 1
    for _ in range(30):  # warm caches (compiled spec plan, stage norms at this checkpoint)
        build_features(payload, snaps, spec=spec, context=context)
    wall, cpu, wall_with_snaps = [], [], []
    for _ in range(repeats):
        c, w = time.thread_time(), time.perf_counter()
        build_features(payload, snaps, spec=spec, context=context)
        wall.append(time.perf_counter() - w)
        cpu.append(time.thread_time() - c)
        w = time.perf_counter()
        build_features(payload, scoring_snapshots(payload, now), spec=spec, context=context)
        wall_with_snaps.append(time.perf_counter() - w)
    ms = 1e3
    return {
        "one_deal_touchpoints": len(payload.activities), "one_deal_repeats": repeats,
        "one_deal_median_ms": float(np.median(wall)) * ms, "one_deal_p90_ms": float(np.quantile(wall, 0.9)) * ms,
        "one_deal_p99_ms": float(np.quantile(wall, 0.99)) * ms, "one_deal_min_ms": float(np.min(wall)) * ms,
        "one_deal_cpu_median_ms": float(np.median(cpu)) * ms,
        "one_deal_with_scoring_snapshots_median_ms": float(np.median(wall_with_snaps)) * ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000, help="deals in the scale run")
    parser.add_argument("--ref-deals", type=int, default=1_500, help="deals in the reference comparison")
    parser.add_argument("--ref-snapshots", type=int, default=150, help="snapshots the reference computes")
    parser.add_argument("--repeats", type=int, default=1_000, help="one-deal repetitions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-scale", action="store_true", help="skip the 100k-deal run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(scale_child(args.child)))
        return
    result: dict[str, Any] = {"benchmark": "features", "cpus": os.cpu_count(), "load_avg_1m_start": os.getloadavg()[0]}
    result.update(one_deal(args.ref_deals, args.seed, args.repeats))
    print(f"one deal: median {result['one_deal_median_ms']:.2f} ms (cpu {result['one_deal_cpu_median_ms']:.2f} ms)",
          flush=True)
    result.update(versus_reference(args.ref_deals, args.ref_snapshots, args.seed))
    print(f"reference: {result['speedup_vs_reference']:.0f}x slower per snapshot", flush=True)
    if not args.skip_scale:
        s = scale(args.deals, args.seed)
        result.update({f"scale_{k}": v for k, v in s.items()})
        print(f"scale: {s['snapshots']:,} snapshots in {s['training_frame_s']:.1f} s, "
              f"peak {s['peak_rss_gib']:.2f} GiB", flush=True)
        result["targets_met"] = {
            "training_frame_under_60s": s["training_frame_s"] < 60,
            "peak_memory_under_8gib": s["peak_rss_gib"] < 8,
        }
    result.setdefault("targets_met", {})
    result["targets_met"].update({
        "speedup_at_least_50x": result["speedup_vs_reference"] >= 50,
        "reference_agrees": result["reference_agrees"],
        "one_deal_median_under_2ms": result["one_deal_median_ms"] < 2,
    })
    result["load_avg_1m_end"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
