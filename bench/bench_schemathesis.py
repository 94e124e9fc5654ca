"""Schemathesis over every operation of a real ``dealscore serve``: server errors and schema violations.

Target (issue 17): at least 5,000 generated requests over every operation of the
OpenAPI schema, 0 server errors (5xx) and 0 schema violations (status code,
content type and body each as documented). The smaller run in the test suite
(``tests/service/test_openapi.py``) drives the app in-process; this one goes
through uvicorn, the listener, the middlewares and a real store, as a CRM would.

The request budget (``--requests``) is spread over the operations, in rounds with
a fresh Hypothesis seed each, half valid data (``positive``) and half data
breaking the schema (``negative``), until the budget is sent. Every failure is
counted by check, with the first few kept (operation, check, message) to
reproduce. The last line printed is one JSON object with every figure.

    python bench/bench_schemathesis.py --requests 5000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_service import bench_bundle, free_port, start, stop, wait_ready

from dealscore_service.auth import generate_key, hash_key

BIN = Path(sys.executable).parent
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class Tally:
    """Requests sent and failures seen, per operation and per check."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.failures: Counter[str] = Counter()
        self.server_errors = 0
        self.transport_errors = 0
        self.examples: list[dict[str, str]] = []

    def fail(self, operation: str, check: str, message: str) -> None:
        self.failures[check] += 1
        if len(self.examples) < 8:
            self.examples.append({"operation": operation, "check": check, "message": message[:300]})


def run_operation(op: Any, mode: Any, base: str, headers: dict[str, str], examples: int, rng_seed: int,
                  tally: Tally, session: requests.Session) -> None:
    """Up to ``examples`` generated requests for one operation; failures are tallied, never raised."""
    label = op.label

    @seed(rng_seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        try:
            response = case.call(base_url=base, headers=headers, session=session, timeout=60)
        except requests.RequestException as exc:
            tally.transport_errors += 1
            tally.fail(label, "transport", f"{type(exc).__name__}: {exc}")
            return
        tally.sent[label] += 1
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # one failure, or a group (a BaseExceptionGroup)
            failures = getattr(exc, "exceptions", [exc])
            for f in failures:
                tally.fail(label, getattr(f, "title", type(f).__name__), str(getattr(f, "message", f)))

    try:
        check()
    except Unsatisfiable:  # no invalid request exists for an operation without inputs
        pass
    # a failure schemathesis re-raised through Hypothesis (its FailureGroup is a BaseExceptionGroup, not an
    # Exception): tallied, the run goes on
    except (Exception, BaseExceptionGroup) as exc:
        for f in getattr(exc, "exceptions", [exc]):
            tally.fail(label, getattr(f, "title", type(f).__name__), str(getattr(f, "message", f)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=5000, help="generated requests to send, all operations together")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--train-deals", type=int, default=600)
    ap.add_argument("--max-rounds", type=int, default=40)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dealscore-bench-schemathesis-"))
    bench_bundle(args.train_deals, args.seed, 100, "schemathesis/1", work / "bundle")

    key = generate_key()
    env = {**os.environ, "DEALSCORE_DATA_DIR": str(work / "data"), "DEALSCORE_MODEL_PATH": str(work / "bundle"),
           "DEALSCORE_USE_REGISTRY": "false", "DEALSCORE_LOG_LEVEL": "WARNING",
           "DEALSCORE_API_KEYS": json.dumps([{"name": "schemathesis", "hash": hash_key(key), "scopes": ["admin"]}])}
    port = free_port()
    log = work / "server.log"
    proc = start([str(BIN / "dealscore"), "serve", "--port", str(port), "--workers", str(args.workers),
                  "--log-level", "warning"], env, log)
    tally = Tally()
    started = time.perf_counter()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", proc, log)
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations()]
        modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
        headers = {"X-API-Key": key}
        per_op = max(1, math.ceil(args.requests / (len(operations) * len(modes))))
        with requests.Session() as session:
            for rnd in range(args.max_rounds):
                before = sum(tally.sent.values())
                for op in operations:
                    for mode in modes:
                        run_operation(op, mode, base, headers, per_op, args.seed * 1000 + rnd, tally, session)
                sent = sum(tally.sent.values())
                print(f"round {rnd + 1}: {sent} requests", file=sys.stderr)
                if sent >= args.requests or sent == before:
                    break
        logged_500s = log.read_text().count("unhandled_error")
    finally:
        stop(proc)
    figures = {
        "requests": sum(tally.sent.values()), "operations": len(tally.sent), "seconds": round(
            time.perf_counter() - started, 1),
        "server_errors": tally.server_errors, "schema_violations": sum(
            n for check, n in tally.failures.items() if check not in ("Server error", "transport")),
        "failures_by_check": dict(tally.failures), "transport_errors": tally.transport_errors,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "requests_by_operation": dict(sorted(tally.sent.items())), "examples": tally.examples,
        "unhandled_errors_logged": logged_500s, "schemathesis": schemathesis.__version__,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
