"""Dask scale-out benchmark: features + batch scoring of a big partitioned history on a LocalCluster.

Targets (issue 20):
- 1,000,000 simulated deals: features (every training snapshot, labelled) and batch
  scoring (every deal open at the cut) on a LocalCluster of 2 workers with an 8 GiB
  memory limit each complete without spilling failures; wall time and peak memory
  per worker reported;
- the throughput of 2 workers against 1 worker (the peer, same run, same history)
  on 200,000 deals: at least 1.7x (both cores busy).

The history is written first by ``generate_partitioned`` (``dealscore generate
--partitions``) unless the folder already holds one; the bundle is trained on a
small simulated history (its quality does not matter for throughput). For each
worker count a fresh LocalCluster (worker processes, one thread each) runs the
two passes; a sampler thread reads every worker process's resident memory every
0.25 s. Wall times are printed beside the load average before and after: a ratio
measured while other jobs compete for the cores is not a scale-out figure. The
last line is one JSON object.

    python bench/bench_dask.py --deals 200000 --partitions 40 --workers 1 2
    python bench/bench_dask.py --deals 1000000 --partitions 100 --workers 2

``--training-check DEALS`` instead measures training on the cluster against one
machine on every simulator company profile: the same history trained with
``train_models`` (one process), on a 2-worker LocalCluster with every deal, and on
the cluster with a stratified sample of ``--sample-share`` of the split's deals
(``--max-deals``); AUC and log loss on each run's own test slice (the sample keeps
a sample of the test slice too, so its figures carry that extra noise).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from distributed import Client, LocalCluster

from dealscore.data.simulate import simulate
from dealscore.data.validate import validate_history
from dealscore.features import FeatureSpec
from dealscore.models import ModelBundle
from dealscore.scale import build_features_partitioned, score_partitioned
from dealscore.scale.features import prepare
from dealscore.scale.generate import generate_partitioned
from dealscore.scale.layout import is_partitioned, open_partitioned
from dealscore.taxonomy import default_taxonomy
from dealscore.training.config import TrainConfig
from dealscore.training.pipeline import train_models


def train_bundle(n_deals: int, seed: int) -> ModelBundle:
    """A bundle from a small simulated history, with bounded boosting rounds (production-depth trees)."""
    history, _ = validate_history(simulate(n_deals, seed=seed).history)
    cfg = TrainConfig.from_dict({"num_threads": 1, "win": {"num_boost_round": 300, "early_stopping_rounds": 30},
                                 "stage": {"num_boost_round": 150, "early_stopping_rounds": 20}})
    return train_models(history, cfg).bundle


class MemorySampler:
    """Peak resident memory of each worker process (and its children), sampled in a thread."""

    def __init__(self, pids: dict[str, int], every: float = 0.25) -> None:
        self.procs = {addr: psutil.Process(pid) for addr, pid in pids.items()}
        self.peak = dict.fromkeys(pids, 0)
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for addr, p in self.procs.items():
                try:
                    rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                except psutil.Error:
                    continue
                self.peak[addr] = max(self.peak[addr], rss)
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_seconds(pids: dict[str, int]) -> float:
    total = 0.0
    for pid in pids.values():
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _spilled(dask_worker: Any) -> int:
    """Bytes this worker spilled to disk so far (0 when the buffer does not say)."""
    data = getattr(dask_worker, "data", None)
    total = getattr(data, "spilled_total", None)
    if total is None:
        return 0
    return int(getattr(total, "disk_write", 0) or getattr(total, "bytes", 0) or 0)


def run_cluster(n_workers: int, memory_limit: str, history: str, work: Path, bundle: ModelBundle,
                every_days: float) -> dict[str, Any]:
    """Features then scores of the whole history on a fresh LocalCluster of ``n_workers`` processes."""
    tax = default_taxonomy()
    out: dict[str, Any] = {"workers": n_workers, "memory_limit": memory_limit,
                           "load_before": os.getloadavg()[0]}
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit=memory_limit) as cluster, Client(cluster) as client:
        client.wait_for_workers(n_workers)
        pids = client.run(os.getpid)
        workers_before = set(pids)
        cpu0 = _cpu_seconds(pids)
        with MemorySampler(pids) as mem:
            t0 = time.perf_counter()
            # one first pass (validation + cross-deal parts) serves both, as in one session on a cluster
            first = prepare(client, history, tax, FeatureSpec.default(tax))
            tv = time.perf_counter()
            counts, _ = build_features_partitioned(client, history, str(work / f"features-{n_workers}"), tax,
                                                   every_days=every_days, prepared=first)
            t1 = time.perf_counter()
            scored = score_partitioned(client, history, str(work / f"scores-{n_workers}"), bundle, prepared=first)
            t2 = time.perf_counter()
        workers_after = set(client.scheduler_info()["workers"])
        out.update({
            "first_pass_seconds": round(tv - t0, 1), "features_seconds": round(t1 - tv, 1),
            "scoring_seconds": round(t2 - t1, 1),
            "total_seconds": round(t2 - t0, 1), "snapshots": counts["snapshots"], "deals": counts["deals"],
            "open_deals_scored": scored["rows"],
            "snapshots_per_second": round(counts["snapshots"] / (t1 - tv)),
            "worker_cpu_seconds": round(_cpu_seconds(pids) - cpu0, 1),
            "peak_memory_gib_per_worker": [round(v / 2**30, 2) for v in mem.peak.values()],
            "spilled_bytes_per_worker": list(client.run(_spilled).values()),
            "workers_lost": len(workers_before - workers_after),
            "load_after": os.getloadavg()[0],
        })
    return out


def training_check(n_deals: int, partitions: int, share: float, work: Path, seed: int) -> None:
    """Cluster training (all deals, and a deal sample) beside one-machine training, per company profile."""
    from dealscore.data.history import from_frames
    from dealscore.data.simulate.config import profile_names
    from dealscore.scale.layout import read_whole
    from dealscore.scale.train import train_partitioned

    cfg = TrainConfig.from_dict({"num_threads": 1})
    rows = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        for profile in profile_names():
            root = work / f"train-{profile}-{n_deals}"
            if not is_partitioned(str(root)):
                generate_partitioned(str(root), n_deals, partitions, seed, profile=profile)
            source = open_partitioned(str(root))
            whole, _ = validate_history(from_frames(read_whole(source), cut_at=source.cut_at))
            single = train_models(whole, cfg).report
            full, _, _ = train_partitioned(client, str(root), cfg)
            in_split = full.report["data"]["cluster"]["deals_in_split"]
            sampled, _, _ = train_partitioned(client, str(root), cfg, max_deals=int(share * in_split))
            row = {"profile": profile}
            for name, rep in (("single", single), ("cluster", full.report), ("sample", sampled.report)):
                for k in ("roc_auc", "log_loss"):
                    row[f"{name}_{k}"] = round(rep["win"]["model"][k], 4)
                row[f"{name}_stage_accuracy"] = round(rep["stage"]["model"]["accuracy"], 4)
            row["deals_trained_on_sample"] = sampled.report["data"]["cluster"]["deals_trained_on"]
            row["deals_in_split"] = in_split
            rows.append(row)
            print(json.dumps(row), flush=True)
    worst = {f"max_abs_delta_{w}_{k}": round(max(abs(r[f"{w}_{k}"] - r[f"single_{k}"]) for r in rows), 4)
             for w in ("cluster", "sample") for k in ("roc_auc", "log_loss")}
    print(json.dumps({"training_check": rows, "deals": n_deals, "sample_share": share, **worst}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=40)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--memory-limit", default="8GiB")
    ap.add_argument("--history", type=Path, default=None, help="partitioned history folder (generated if absent)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/dealscore-bench-dask"))
    ap.add_argument("--every-days", type=float, default=7.0)
    ap.add_argument("--train-deals", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--training-check", type=int, default=None, metavar="DEALS")
    ap.add_argument("--sample-share", type=float, default=0.5)
    args = ap.parse_args()
    if args.training_check:
        training_check(args.training_check, 4, args.sample_share, args.work, args.seed)
        return

    history = args.history or args.work / f"history-{args.deals}-{args.partitions}"
    result: dict[str, Any] = {"deals": args.deals, "partitions": args.partitions, "cpus": os.cpu_count(),
                              "uptime_load_start": os.getloadavg()}
    if not is_partitioned(str(history)):
        t = time.perf_counter()
        generate_partitioned(str(history), args.deals, args.partitions, args.seed)
        result["generate_seconds_in_process"] = round(time.perf_counter() - t, 1)
    source = open_partitioned(str(history))
    print(f"history: {history} ({len(source)} partitions)", flush=True)
    t = time.perf_counter()
    bundle = train_bundle(args.train_deals, args.seed + 1)
    result["train_bundle_seconds"] = round(time.perf_counter() - t, 1)

    runs = []
    for n in args.workers:
        for name in (f"features-{n}", f"scores-{n}"):
            shutil.rmtree(args.work / name, ignore_errors=True)
        run = run_cluster(n, args.memory_limit, str(history), args.work, bundle, args.every_days)
        runs.append(run)
        print(f"{n} worker(s): first pass {run['first_pass_seconds']} s, features {run['features_seconds']} s "
              f"({run['snapshots']:,} snapshots, "
              f"{run['snapshots_per_second']:,}/s), scoring {run['scoring_seconds']} s "
              f"({run['open_deals_scored']:,} open deals); peak memory per worker "
              f"{run['peak_memory_gib_per_worker']} GiB; spilled {run['spilled_bytes_per_worker']} B; "
              f"workers lost {run['workers_lost']}; load {run['load_before']:.1f} -> {run['load_after']:.1f}",
              flush=True)
    result["runs"] = runs
    by = {r["workers"]: r for r in runs}
    if 1 in by and 2 in by:
        ratio = by[1]["total_seconds"] / by[2]["total_seconds"]
        result["throughput_ratio_2_vs_1"] = round(ratio, 2)
        result["target_ratio"] = 1.7
        print(f"throughput 2 workers vs 1: {ratio:.2f}x (target >= 1.7x)", flush=True)
    result["uptime_load_end"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
