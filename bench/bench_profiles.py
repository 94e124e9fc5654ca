"""Simulator presets: how far each company's declared stage is from the real one.

For every preset of ``dealscore.data.simulate.config.PROFILES`` it simulates a
history and compares, at weekly snapshots of every deal while open, the stage
the CRM showed then (declared, as recorded by then) with the real stage
(``stage_truth``). The peer is the default preset (``mixed``) in the same run.
docs/simulator.md quotes the table. The last line is one JSON object.

    python bench/bench_profiles.py [--deals 5000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from dealscore.data.simulate import simulate
from dealscore.data.simulate.config import profile_names
from dealscore.data.simulate.figures import aggregate_figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deals", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rows: dict[str, dict[str, Any]] = {}
    print(f"{'profile':<16} {'declared=real':>13} {'ahead':>7} {'behind':>7} {'win rate':>8} "
          f"{'cycle d':>7} {'touches':>7}")
    for name in profile_names():
        f = aggregate_figures(simulate(args.deals, args.seed, profile=name))
        rows[name] = {k: round(f[k], 4) for k in ("declared_real_agreement", "declared_ahead", "declared_behind",
                                                    "win_rate", "median_cycle_days", "touches_median")}
        print(f"{name:<16} {f['declared_real_agreement']:>13.1%} {f['declared_ahead']:>7.1%} "
              f"{f['declared_behind']:>7.1%} {f['win_rate']:>8.1%} {f['median_cycle_days']:>7.0f} "
              f"{f['touches_median']:>7.0f}", flush=True)
    print(json.dumps({"benchmark": "profiles", "deals": args.deals, "seed": args.seed, "profiles": rows}))


if __name__ == "__main__":
    main()
