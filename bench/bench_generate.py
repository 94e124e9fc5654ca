"""Simulator benchmark: generate and write a synthetic CRM, beside plain pandas CSV writing in the same run.

Target (issue 2): 100,000 deals generated in under 2 minutes on 2 cores.

Measured: ``simulate`` (the whole latent process, touchpoints and CRM records),
``write_simulation`` (history + truth as CSV, byte-stable formatting), and as the
peer, ``DataFrame.to_csv`` of the same tables with pandas' default formatting
(the least any tool producing these files has to spend). Wall-clock figures are
printed beside CPU-time ones and the load average: on a shared machine the CPU
time is what the same run would take alone. The last line is one JSON object.

    python bench/bench_generate.py [--deals 100000] [--seed 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from dealscore.data.simulate import simulate, write_simulation


def _timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="where to write (default: a temporary folder)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="dealscore-bench-generate-"))
    result: dict[str, Any] = {"benchmark": "generate", "deals": args.deals, "cpus": os.cpu_count(),
                              "load_avg_1m_start": os.getloadavg()[0]}
    try:
        sim, sim_s, sim_cpu = _timed(simulate, args.deals, args.seed)
        print(f"simulate: {sim_s:.1f} s (cpu {sim_cpu:.1f} s)", flush=True)
        _, write_s, write_cpu = _timed(write_simulation, sim, out / "history")
        print(f"write_simulation: {write_s:.1f} s (cpu {write_cpu:.1f} s)", flush=True)

        def pandas_write() -> None:
            peer = out / "peer"
            peer.mkdir(parents=True, exist_ok=True)
            for name, frame in sim.history.tables().items():
                frame.to_csv(peer / f"{name}.csv", index=False)
            for name, frame in sim.truth.items():
                frame.to_csv(peer / f"truth_{name}.csv", index=False)

        _, peer_s, peer_cpu = _timed(pandas_write)
        print(f"peer (pandas to_csv of the same tables): {peer_s:.1f} s (cpu {peer_cpu:.1f} s)", flush=True)
        total, total_cpu = sim_s + write_s, sim_cpu + write_cpu
        rows = {name: len(f) for name, f in sim.history.tables().items()}
        result.update({
            "rows": rows,
            "simulate_s": round(sim_s, 2), "simulate_cpu_s": round(sim_cpu, 2),
            "write_s": round(write_s, 2), "write_cpu_s": round(write_cpu, 2),
            "seconds": round(total, 2), "cpu_seconds": round(total_cpu, 2),
            "deals_per_s": round(args.deals / total, 1),
            "peer_pandas_to_csv_s": round(peer_s, 2),
            "ratio_vs_pandas_to_csv": round(total / peer_s, 2),
            "ratio_cpu_vs_pandas_to_csv": round(total_cpu / peer_cpu, 2),
            "ratio_simulate_only_vs_pandas_to_csv": round(sim_s / peer_s, 2),
            "targets_met": {"100k_deals_under_120s": bool(args.deals >= 100_000 and total < 120)},
            "load_avg_1m_end": os.getloadavg()[0],
        })
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
