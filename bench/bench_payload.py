"""Payload benchmark: one API request's tables to a validated history, and the full-history load.

Targets (issue 6, the data layer's share of the ``POST /v1/score`` budget):
- ``from_frames`` + ``validate_history`` of one deal with its account, 200 touchpoints
  and a few stage changes: median at most 2 ms in process. Measured in the same run
  beside the peer ``pd.DataFrame(records)`` of the same four tables (what merely
  putting the request into pandas costs), for the tables laid out as the service
  builds them today (text columns inferred as pandas' string dtype) and as already
  typed tables (text as Python objects), which the loader passes through untouched,
  and for what the service does now: the request's columns of Python values through
  ``history_from_columns`` (the direct path for clean values, same output);
- validating a 100,000-deal history (about 3M touchpoints) must not get slower than
  its ~5 s; measured beside ``pd.read_csv`` of the same files with the loader's options.

The last line printed is one JSON object with every figure.

    python bench/bench_payload.py [--deals 100000] [--history DIR] [--repeats 1000] [--skip-scale]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory, from_frames, load_history, write_history
from dealscore.data.request import history_from_columns
from dealscore.data.schema import TABLES
from dealscore.data.simulate import simulate
from dealscore.data.validate import validate_history
from dealscore.taxonomy import default_taxonomy
from dealscore_service.client import deal_payload

N_TOUCH = 200

# ----------------------------------------------------------------------------- one request


def request_records(history: DealHistory, n_touch: int = N_TOUCH) -> tuple[dict[str, list[dict[str, Any]]], datetime]:
    """The four tables of one ``POST /v1/score`` body as row records (timestamps parsed, as after pydantic).

    Takes the open deal with the most touchpoints, renders it as the request body a
    CRM sends, and spreads copies of its touchpoints over the deal's life until it
    has ``n_touch``, keeping a realistic mix of types, directions and roles.
    """
    deals = history.deals
    open_ids = deals.loc[deals["closed_at"].isna(), "deal_id"]
    acts = history.activities[history.activities["deal_id"].isin(open_ids)]
    deal_id = str(acts["deal_id"].value_counts().index[0])
    body = deal_payload(history, deal_id)
    as_of = datetime.fromisoformat(body.pop("as_of"))

    def parsed(record: dict[str, Any]) -> dict[str, Any]:
        return {k: datetime.fromisoformat(v) if k.endswith(("_at", "_date")) and isinstance(v, str) else v
                for k, v in record.items()}

    created = datetime.fromisoformat(body["created_at"])
    own = [parsed(a) for a in body.pop("activities")]
    step = (as_of - created) / (n_touch + 1)
    touches = []
    for i in range(n_touch):
        a = dict(own[i % len(own)])
        a.update(activity_id=f"T{i}", occurred_at=created + step * (i + 1))
        a.pop("recorded_at", None)
        touches.append({"deal_id": deal_id, **a})
    account = {"account_id": body["account_id"], **body.pop("account")}
    stages = [{"deal_id": deal_id, **parsed(s)} for s in body.pop("stage_history")]
    return {"accounts": [account], "deals": [parsed(body)], "stage_history": stages, "activities": touches}, as_of


def service_frames(records: dict[str, list[dict[str, Any]]]) -> dict[str, pd.DataFrame]:
    """The tables as the service lays them out: one typed NumPy array per contract column.

    Text columns are object arrays, which pandas turns into its Arrow-backed string
    dtype when it builds the frame.
    """
    out = {}
    for name, rows in records.items():
        data: dict[str, Any] = {}
        for col in TABLES[name].columns:
            values = [r.get(col.name) for r in rows]
            if col.kind in ("timestamp", "date"):
                data[col.name] = np.array([np.datetime64("NaT") if v is None else np.datetime64(v, "ns")
                                           for v in values], dtype="datetime64[ns]")
            elif col.kind in ("int", "float"):
                data[col.name] = np.array([np.nan if v is None else v for v in values], dtype="float64")
            else:
                data[col.name] = np.array(values, dtype=object)
        out[name] = pd.DataFrame(data)
    return out


def typed_frames(records: dict[str, list[dict[str, Any]]]) -> dict[str, pd.DataFrame]:
    """The same tables already in the contract's types (text as Python objects, None for missing)."""
    return {name: frame for name, frame in from_frames(service_frames(records)).tables().items()}


def _timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    for _ in range(max(20, repeats // 20)):  # warm caches (taxonomy lookups, pandas dispatch)
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c, w = time.thread_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.thread_time() - c)
    ms = 1e3
    return {"median_ms": float(np.median(wall)) * ms, "p99_ms": float(np.quantile(wall, 0.99)) * ms,
            "cpu_median_ms": float(np.median(cpu)) * ms}


def one_request(n_deals: int, seed: int, repeats: int) -> dict[str, Any]:
    history, _ = validate_history(simulate(n_deals, seed=seed).history)
    records, as_of = request_records(history)
    cut = pd.Timestamp(as_of)
    tax = default_taxonomy()
    service, typed = service_frames(records), typed_frames(records)
    clean, report = validate_history(from_frames(service, cut_at=cut), tax, on_out_of_life="fail")
    assert len(clean.activities) == N_TOUCH and len(clean.deals) == 1, report
    again, _ = validate_history(from_frames(typed, cut_at=cut), tax, on_out_of_life="fail")
    for name in ("accounts", "deals", "stage_history", "activities"):  # both layouts give the same history
        pd.testing.assert_frame_equal(getattr(clean, name), getattr(again, name), obj=name)

    figures: dict[str, Any] = {"one_deal_touchpoints": N_TOUCH, "one_deal_stage_changes": len(records["stage_history"]),
                               "one_deal_repeats": repeats}
    runs: dict[str, Callable[[], object]] = {
        "peer_records": lambda: {name: pd.DataFrame(rows) for name, rows in records.items()},
        "service_tables": lambda: validate_history(from_frames(service, cut_at=cut), tax, on_out_of_life="fail"),
        "from_frames": lambda: from_frames(service, cut_at=cut),
        "typed_tables": lambda: validate_history(from_frames(typed, cut_at=cut), tax, on_out_of_life="fail"),
        "build_service_tables": lambda: service_frames(records),
    }
    columns = {name: {col.name: [r.get(col.name) for r in rows] for col in TABLES[name].columns}
               for name, rows in records.items()}
    direct = history_from_columns(columns, taxonomy=tax, cut_at=cut)
    for name in ("accounts", "deals", "stage_history", "activities"):  # the direct path gives the same history
        pd.testing.assert_frame_equal(getattr(direct, name), getattr(clean, name), obj=name)
    runs["request_columns"] = lambda: history_from_columns(columns, taxonomy=tax, cut_at=cut)
    history_once = from_frames(service, cut_at=cut)
    runs["validate"] = lambda: validate_history(history_once, tax, on_out_of_life="fail")
    for name, fn in runs.items():
        figures.update({f"{name}_{k}": v for k, v in _timed(fn, repeats).items()})
    peer = figures["peer_records_median_ms"]
    figures["service_tables_vs_peer"] = figures["service_tables_median_ms"] / peer
    figures["typed_tables_vs_peer"] = figures["typed_tables_median_ms"] / peer
    figures["request_columns_vs_peer"] = figures["request_columns_median_ms"] / peer
    return figures


# ----------------------------------------------------------------------------- whole history


def _read_csvs(folder: Path) -> dict[str, pd.DataFrame]:
    """The peer: the same files read with the loader's CSV options, nothing typed or checked."""
    return {name: pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""],
                              encoding="utf-8-sig")
            for name in TABLES if (folder / f"{name}.csv").is_file()}


def whole_history(folder: Path) -> dict[str, Any]:
    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    w, c = clock()
    frames = _read_csvs(folder)
    read_s, read_cpu = time.perf_counter() - w, time.process_time() - c
    del frames
    w, c = clock()
    history = load_history(folder)
    load_s, load_cpu = time.perf_counter() - w, time.process_time() - c
    w, c = clock()
    _, report = validate_history(history)
    validate_s, validate_cpu = time.perf_counter() - w, time.process_time() - c
    return {
        "scale_deals": report.rows["deals"], "scale_activities": report.rows["activities"],
        "scale_stage_rows": report.rows["stage_history"],
        "read_csv_s": read_s, "read_csv_cpu_s": read_cpu,
        "load_history_s": load_s, "load_history_cpu_s": load_cpu,
        "validate_s": validate_s, "validate_cpu_s": validate_cpu,
        "load_and_validate_vs_read_csv": (load_s + validate_s) / read_s,
    }


def scale(n_deals: int, seed: int, folder: str | None) -> dict[str, Any]:
    if folder is not None:
        return whole_history(Path(folder))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_history(simulate(n_deals, seed=seed).history, Path(tmp) / "h")
        written = time.perf_counter() - t
        out = whole_history(Path(tmp) / "h")
    out["simulate_and_write_s"] = written
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000, help="deals in the whole-history run")
    parser.add_argument("--history", help="validate this history folder (CSV) instead of simulating one")
    parser.add_argument("--repeats", type=int, default=1000, help="timed repetitions of the one-request runs")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-scale", action="store_true", help="only the one-request figures")
    args = parser.parse_args()

    result = one_request(400, args.seed, args.repeats)
    print(f"one request, {N_TOUCH} touchpoints: from_frames + validate_history median "
          f"{result['service_tables_median_ms']:.2f} ms (p99 {result['service_tables_p99_ms']:.2f}, "
          f"cpu {result['service_tables_cpu_median_ms']:.2f}); typed tables {result['typed_tables_median_ms']:.2f} ms; "
          f"peer pd.DataFrame(records) {result['peer_records_median_ms']:.2f} ms; as the service does it "
          f"(history_from_columns) {result['request_columns_median_ms']:.2f} ms "
          f"(cpu {result['request_columns_cpu_median_ms']:.2f})", flush=True)
    if not args.skip_scale:
        s = scale(args.deals, args.seed, args.history)
        print(f"whole history: {s['scale_deals']:,} deals, {s['scale_activities']:,} activities: "
              f"validate {s['validate_s']:.1f} s (cpu {s['validate_cpu_s']:.1f}), load {s['load_history_s']:.1f} s, "
              f"peer read_csv {s['read_csv_s']:.1f} s", flush=True)
        result.update(s)
    result["target_one_request_ms"] = 2.0
    result["one_request_target_met"] = result["request_columns_median_ms"] <= 2.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
