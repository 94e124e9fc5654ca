"""Service load benchmark: a real ``dealscore serve`` beside ``mlflow models serve`` of the same bundle.

Targets (issue 6), all against real uvicorn processes on localhost:

- ``POST /v1/score`` of one deal with 200 touchpoints, full result (reasons,
  warnings, three actions), stored in the score store: p50 < 10 ms and
  p99 < 30 ms at 100 requests/s for 60 s, zero errors;
- in the same run, ``mlflow models serve`` of the same bundle answering the same
  deal (its precomputed feature row: the pyfunc cannot take a deal history):
  dealscore's p50 at most 1.5x MLflow's p50;
- sustained throughput with 2 workers: at least 300 scores/s, zero errors,
  measured both with single-deal requests and with ``POST /v1/score/batch``
  (``--batch-size`` deals per request); the target counts scores, so the better
  of the two is judged and both are printed.

The latency phase runs ``dealscore serve --workers N`` (``--latency-workers``,
default 2: a 2-core machine's deployment). When MLflow cannot keep up with the
rate its p50 is queueing, not serving, and any ratio against it means little;
so both servers are also measured at a rate each sustains (``--peer-rate``),
where the ratio compares the time each takes to answer.

Every request carries a different amount, so each one is really scored and
stored (no idempotent replays). The load is open-loop: requests leave on a fixed
schedule whatever the server's pace, so a slow server shows up as latency, not
as a politely lower rate. The last line printed is one JSON object with every figure.

    python bench/bench_service.py [--rate 100] [--duration 60] [--throughput-seconds 20] [--latency-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scoring import deal_with_touchpoints

from dealscore.data.simulate import simulate
from dealscore.data.validate import validate_history
from dealscore.features import build_features, scoring_snapshots
from dealscore.scoring import Scorer
from dealscore.training.config import TrainConfig
from dealscore.training.pipeline import train_models
from dealscore_service.auth import generate_key, hash_key
from dealscore_service.client import deal_payload

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server not ready after {timeout}s; see {log}")


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a server in its own process group (its workers and helpers with it)."""
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """Stop the server's whole process group and wait until it is gone.

    ``mlflow models serve`` runs its HTTP server as a child process; terminating only
    the parent left that child working through the backlog of a saturated run, on
    the CPU the next phase was measuring.
    """
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything of the group still running
    proc.wait()


def encode(body: Any) -> bytes:
    """A request body as JSON bytes, exactly as ``httpx.post(json=...)`` sends it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class Bodies:
    """Request ``i``'s JSON body, made without re-encoding the whole deal for each request.

    Every request differs (``vary(i)`` gives its amounts, so each one is really
    scored and stored); the body is encoded once with placeholders and each
    request's numbers are spliced in, giving the same bytes as encoding the
    varied body itself (checked for a few ``i`` at construction). On a 2-core
    machine shared with the server, encoding a 200-touchpoint deal per request
    in the load generator took CPU time from the server being measured.
    """

    def __init__(self, make: Any, vary: Any) -> None:
        self._vary = vary
        marks = [f"__bench_{k}__" for k in range(len(vary(0)))]
        self._parts = encode(make(marks)).split(b'"__bench_')
        for i in (0, 1, 7, 12345):
            assert self(i) == encode(make(vary(i))), "spliced body differs from the encoded one"

    def __call__(self, i: int) -> bytes:
        values = self._vary(i)
        out = [self._parts[0]]
        for part in self._parts[1:]:
            k, rest = part.split(b'__"', 1)
            out += [json.dumps(values[int(k)]).encode(), rest]
        return b"".join(out)


class LeanClient:
    """Keep-alive HTTP/1.1 POSTs over asyncio streams: what a load generator needs and nothing more.

    httpx's per-request work (building request objects, header models, its
    connection pool's bookkeeping) cost the load generator more CPU per request
    than the server's answer on this benchmark's 2-core machine. This sends the
    same request (method, path, JSON body, API key) and reads every response in
    full (status, headers, body).
    """

    def __init__(self, url: str, headers: dict[str, str], max_connections: int = 200) -> None:
        u = httpx.URL(url)
        self.host, self.port, self.path = u.host, u.port or 80, u.raw_path.decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                      f"Content-Type: application/json\r\n{extra}Content-Length: ").encode()
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """POST ``body``; the status and the full response body."""
        return await self._send(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def _send(self, raw: bytes) -> tuple[int, bytes]:
        """Write one whole request on an idle kept-alive connection (or a new one) and read its response."""
        async with self._slots:
            conn = self._take_idle() or await asyncio.open_connection(self.host, self.port)
            reader, writer = conn
            try:
                writer.write(raw)
                status, data, keep = await self._response(reader)
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append(conn)
            else:
                writer.close()
            return status, data

    def _take_idle(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """An idle keep-alive connection the server has not closed meanwhile (uvicorn closes idle
        ones after 5 s), as httpx's pool checks before reusing one; ``None`` when there is none."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    @staticmethod
    async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            data = b"".join(chunks)
        else:
            data = await reader.readexactly(int(fields.get("content-length", "0")))
        return status, data, fields.get("connection", "").lower() != "close"

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def open_loop(url: str, bodies: Any, rate: float, seconds: float, headers: dict[str, str]) -> dict[str, Any]:
    """Send ``rate`` requests per second for ``seconds`` on a fixed schedule; latency per request."""
    n = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    client = LeanClient(url, headers)

    async def one(i: int) -> None:
        body = bodies(i)
        t = time.perf_counter()
        try:
            status, _ = await asyncio.wait_for(client.post(body), timeout=60)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
                return
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append(time.perf_counter() - t)

    for i in range(20):  # warm-up, untimed
        await one(-1 - i)
    latencies.clear()
    errors.clear()
    start_t = time.perf_counter()
    tasks = []
    for i in range(n):
        delay = start_t + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start_t
    await client.aclose()
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "requests": n, "ok": len(latencies), "errors": errors, "achieved_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1e3 * float(np.nanmedian(lat)), 2), "p90_ms": round(1e3 * float(np.nanquantile(lat, 0.9)), 2),
        "p99_ms": round(1e3 * float(np.nanquantile(lat, 0.99)), 2),
    }


async def closed_loop(url: str, bodies: Any, per_request: int, concurrency: int, seconds: float,
                      headers: dict[str, str]) -> dict[str, Any]:
    """``concurrency`` clients sending back to back for ``seconds``; scores per second."""
    done = 0
    errors: dict[str, int] = {}
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds
    client = LeanClient(url, headers, max_connections=concurrency)

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            try:
                status, _ = await asyncio.wait_for(client.post(bodies(next(counter))), timeout=120)
                if status == 200:
                    done += per_request
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t
    await client.aclose()
    return {"scores": done, "scores_per_s": round(done / elapsed, 1), "errors": errors}



def bench_bundle(train_deals: int, seed: int, rounds: int, version: str, path: Path) -> tuple[Any, Any]:
    """A simulated history and the training result on it (one thread), its bundle saved at ``path``.

    What each service bench serves.

    ``rounds`` caps the win model's boosting rounds (the stage model gets half); the
    benches measure the service, so a smaller model only shortens the set-up.
    """
    history, _ = validate_history(simulate(train_deals, seed=seed).history)
    result = train_models(history, TrainConfig.from_dict({
        "num_threads": 1, "win": {"num_boost_round": rounds, "early_stopping_rounds": rounds // 10},
        "stage": {"num_boost_round": rounds // 2, "early_stopping_rounds": rounds // 20}}))
    result.bundle.version = version
    result.bundle.save(path)
    return history, result

def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-deals", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--throughput-seconds", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=20, help="deals per batch request (200 touchpoints each)")
    ap.add_argument("--batch-concurrency", type=int, default=4,
                    help="batch requests in flight (two per worker: one scored, one waiting)")
    ap.add_argument("--latency-workers", type=int, default=2, help="dealscore workers in the latency phase")
    ap.add_argument("--peer-rate", type=float, default=5.0, help="requests/s both servers sustain (ratio phase)")
    ap.add_argument("--peer-seconds", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dealscore-bench-service-"))

    # ---- the model, trained here, saved as a bundle and logged to a private MLflow store
    _, result = bench_bundle(args.train_deals, args.seed, 400, "bench/1", work / "bundle")
    bundle = result.bundle
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    from dealscore import tracking

    run = tracking.log_training_run(result)

    # ---- the request: one deal with 200 touchpoints, as JSON for each server
    probe, _ = validate_history(simulate(max(2000, args.train_deals // 2), seed=args.seed + 1).history)
    one = deal_with_touchpoints(probe, 200)
    body = deal_payload(one, str(one.deals["deal_id"].iloc[0]))
    base_amount = float(body.get("amount") or 10000.0)
    scorer = Scorer(bundle)
    X = build_features(one, scoring_snapshots(one), spec=bundle.spec, taxonomy=bundle.taxonomy,
                       context=scorer.feature_context(one))
    rows = json.loads(tracking.example_rows(bundle, X).to_json(orient="split", index=False))
    mlflow_body = {"dataframe_split": rows}

    def deal_body(i: int) -> dict[str, Any]:
        return {**body, "amount": base_amount + i + 1000}

    def batch_deals(amounts: list[Any]) -> dict[str, Any]:
        deals = [{**body, "amount": a} for a in amounts]
        for k, d in enumerate(deals):
            d.pop("as_of")
            d["deal_id"] = f"{body['deal_id']}-{k}"
            d["activities"] = [{**a, "activity_id": f"{a.get('activity_id', j)}-{k}"}
                               for j, a in enumerate(body["activities"])]
        return {"deals": deals, "as_of": body["as_of"]}

    # request bodies as the bytes sent, made without encoding the whole deal again per request
    deal_bytes = Bodies(lambda v: {**body, "amount": v[0]}, lambda i: [base_amount + i + 1000])
    batch_bytes = Bodies(batch_deals, lambda i: [base_amount + 1e6 + i * args.batch_size + k
                                                 for k in range(args.batch_size)])
    mlflow_bytes = encode(mlflow_body)

    key = generate_key()
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # mlflow starts `uvicorn` from PATH
    env = {**os.environ, "PATH": path, "DEALSCORE_DATA_DIR": str(work / "data"),
           "DEALSCORE_MODEL_PATH": str(work / "bundle"), "DEALSCORE_USE_REGISTRY": "false",
           "DEALSCORE_LOG_LEVEL": "WARNING",
           "DEALSCORE_API_KEYS": json.dumps([{"name": "bench", "hash": hash_key(key), "scopes": ["score"]}])}
    auth = {"X-API-Key": key}
    figures: dict[str, Any] = {"touchpoints": len(body["activities"]), "rate_rps": args.rate,
                               "duration_s": args.duration, "latency_workers": args.latency_workers}

    # The load generator shares this process with the training data, the model and MLflow's
    # modules: freeze that heap so the collector's passes in the generator (thousands of
    # requests' objects) do not walk it and stall the load they are meant to keep steady.
    gc.collect()
    gc.freeze()

    # ---- latency at a fixed rate: dealscore, then MLflow, same machine, same run
    port = free_port()
    log = work / "dealscore.log"
    proc = start([str(BIN / "dealscore"), "serve", "--port", str(port), "--workers", str(args.latency_workers),
                  "--log-level", "warning"], env, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log)
        url = f"http://127.0.0.1:{port}/v1/score"
        check = httpx.post(url, json=deal_body(-100), headers=auth, timeout=60)
        assert check.status_code == 200 and "actions" in check.json(), check.text[:500]
        figures["dealscore"] = asyncio.run(open_loop(url, deal_bytes, args.rate, args.duration, auth))
        print("dealscore", figures["dealscore"], file=sys.stderr, flush=True)
        figures["dealscore_at_peer_rate"] = asyncio.run(open_loop(
            url, lambda i: deal_bytes(2 * 10**6 + i), args.peer_rate, args.peer_seconds, auth))
    finally:
        stop(proc)

    mport = free_port()
    mlog = work / "mlflow.log"
    mproc = start([str(BIN / "mlflow"), "models", "serve", "-m", run.model_uri, "-p", str(mport),
                   "--env-manager", "local"], env, mlog)
    try:
        wait_ready(f"http://127.0.0.1:{mport}/ping", mproc, mlog)
        murl = f"http://127.0.0.1:{mport}/invocations"
        check = httpx.post(murl, json=mlflow_body, timeout=60)
        assert check.status_code == 200, check.text[:500]
        figures["mlflow_at_peer_rate"] = asyncio.run(open_loop(
            murl, lambda i: mlflow_bytes, args.peer_rate, args.peer_seconds, {}))
        figures["mlflow"] = asyncio.run(open_loop(murl, lambda i: mlflow_bytes, args.rate, args.duration, {}))
        print("mlflow", figures["mlflow"], file=sys.stderr, flush=True)
    finally:
        stop(mproc)
    figures["p50_ratio_vs_mlflow"] = float(f"{figures['dealscore']['p50_ms'] / figures['mlflow']['p50_ms']:.3g}")
    figures["p50_ratio_vs_mlflow_at_peer_rate"] = float(
        f"{figures['dealscore_at_peer_rate']['p50_ms'] / figures['mlflow_at_peer_rate']['p50_ms']:.3g}")

    # ---- throughput with two workers
    port = free_port()
    log = work / "dealscore2.log"
    proc = start([str(BIN / "dealscore"), "serve", "--port", str(port), "--workers", "2", "--log-level",
                  "warning"], env, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log)
        base = f"http://127.0.0.1:{port}"
        figures["throughput_single"] = asyncio.run(closed_loop(
            f"{base}/v1/score", lambda i: deal_bytes(10**6 + i), 1, args.concurrency, args.throughput_seconds, auth))
        figures["throughput_batch"] = asyncio.run(closed_loop(
            f"{base}/v1/score/batch", batch_bytes, args.batch_size, args.batch_concurrency, args.throughput_seconds,
            auth))
    finally:
        stop(proc)

    d = figures["dealscore"]
    figures["targets"] = {"p50_ms": 10, "p99_ms": 30, "ratio_vs_mlflow": 1.5, "scores_per_s_2_workers": 300}
    clean = [t for t in (figures["throughput_single"], figures["throughput_batch"]) if not t["errors"]]
    figures["scores_per_s_2_workers"] = max((t["scores_per_s"] for t in clean), default=0.0)
    figures["meets_targets"] = bool(
        d["p50_ms"] < 10 and d["p99_ms"] < 30 and not d["errors"] and d["ok"] == d["requests"]
        and figures["p50_ratio_vs_mlflow"] <= 1.5
        and figures["scores_per_s_2_workers"] >= 300
    )
    for k, v in figures.items():
        print(f"{k:24s} {v}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
