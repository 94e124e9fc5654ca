#!/usr/bin/env bash
# `make bench`: the benchmarks that finish in minutes on a laptop, one after another, each printing its
# table and a final JSON line (figures and ratios against its peer in the same run).
# BENCH_ALL=1 adds the long ones (every preset trained at 20,000 deals, training at 100,000 deals, the
# service against MLflow's server, a Dask LocalCluster): an hour or more on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH="${PWD}/src:${PWD}/service:${PWD}${PYTHONPATH:+:$PYTHONPATH}"
quick=(bench_generate bench_profiles bench_payload bench_features bench_scoring)
long=(bench_service bench_forecast bench_forecast_api bench_quality bench_stage bench_actions bench_train bench_dask
      bench_soak bench_schemathesis)
run=("${quick[@]}")
if [[ "${BENCH_ALL:-0}" == "1" ]]; then run+=("${long[@]}"); fi
for b in "${run[@]}"; do
  echo "=== bench/${b}.py"
  "$PY" "bench/${b}.py"
done
if [[ "${BENCH_ALL:-0}" != "1" ]]; then
  echo "=== not run: ${long[*]} (BENCH_ALL=1 make bench, or each script with --help; bench/README.md)"
fi
