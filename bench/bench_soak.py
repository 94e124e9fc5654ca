"""Soak benchmark: a real ``dealscore serve`` under mixed score / at-risk / history traffic for a long while.

Targets (issue 17), against real uvicorn processes on localhost, SQLite or PostgreSQL:

- 10 minutes at 100 requests/s of mixed traffic on two workers: 0 errors, p99 of
  ``POST /v1/score`` under 50 ms;
- with 200,000 deals and 1,000,000 stored scores (``--seed-deals``/``--seed-scores``),
  ``GET /v1/deals/at-risk`` (any filter, any page) p99 under 200 ms on one worker.

The store is pre-filled before the server starts, by bulk inserts straight into
the ``scores`` and ``deals`` tables (thousands of rows per statement, one
transaction per chunk): scoring 200,000 deals through the API first would take
hours. Seeded rows are valid scores (a real result of the trained model with its
numbers varied per deal), ranked by the store's own ``rank_of``, so the at-risk
list, its filters and pages, and the score history read them as they read any score.

The load is open-loop: request ``i`` leaves at ``start + i / rate`` whatever the
server's pace, and its latency counts from that scheduled time, so a server that
falls behind shows it as latency (no coordinated omission). Each score request
sends a different amount, so each is really scored and stored. The last line
printed is one JSON object with every figure.

    python bench/bench_soak.py --store sqlite --workers 2 --rate 100 --duration 600
    python bench/bench_soak.py --store postgresql --workers 1 --rate 50 --duration 120 \\
        --seed-deals 200000 --seed-scores 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_service import LeanClient, bench_bundle, encode, free_port, start, stop, wait_ready

from dealscore.scoring import Scorer
from dealscore.scoring.result import ScoreResult
from dealscore_service.auth import generate_key, hash_key
from dealscore_service.client import deal_payload
from dealscore_service.store import ScoreStore
from dealscore_service.store.models import DealRecord, ScoreRecord
from dealscore_service.store.ranking import rank_of

BIN = Path(sys.executable).parent
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROUTES = ("score", "at_risk", "history")


# --------------------------------------------------------------------------- the store, pre-filled


def store_url(kind: str, work: Path, pg_admin: str) -> tuple[str, Any]:
    """A fresh store URL (a SQLite file, or a new PostgreSQL schema) and how to drop it afterwards."""
    if kind == "sqlite":
        return f"sqlite:///{work / 'scores.db'}", lambda: None
    schema = f"dealscore_soak_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_admin)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return f"{pg_admin}?options=-csearch_path%3D{schema}", drop


def _slim(result: ScoreResult) -> ScoreResult:
    """The model's real result with one reason, warning and action: a seeded row like a stored one, but small."""
    return result.model_copy(update={
        "reasons_up": result.reasons_up[:1], "reasons_down": result.reasons_down[:1],
        "warnings": result.warnings[:1], "actions": result.actions[:1], "notices": []})


def seed_store(url: str, template: ScoreResult, n_deals: int, n_scores: int, teams: int, owners: int,
               seed: int, chunk: int = 5000) -> dict[str, Any]:
    """Bulk-insert ``n_deals`` open deals holding ``n_scores`` scores in all (the latest of each in ``deals``).

    Each row is the template's result with the deal's own ids, amount, stage and
    win probability (its grade, reasons and actions stay the template's: the
    lists read and rank on the numbers, the history shows them as stored).
    """
    if n_deals <= 0:
        return {"deals": 0, "scores": 0, "seconds": 0.0}
    rng = np.random.default_rng(seed)
    per_deal = np.full(n_deals, n_scores // n_deals)
    per_deal[: n_scores % n_deals] += 1
    per_deal = np.maximum(per_deal, 1)
    engine = create_engine(url)
    base = datetime(2025, 1, 1)
    stages = ["qualification", "discovery", "solution", "proposal", "negotiation"]
    t0 = time.perf_counter()
    typical = template.stage_typical_p_win or 0.5
    template_json = template.model_dump(mode="json")
    warnings = [w.code for w in template.warnings]
    scores = deals = 0
    score_rows: list[dict[str, Any]] = []
    deal_rows: list[dict[str, Any]] = []

    def flush(final: bool = False) -> None:
        nonlocal score_rows, deal_rows
        if len(score_rows) >= chunk or (final and score_rows):
            with engine.begin() as conn:
                conn.execute(insert(ScoreRecord.__table__), score_rows)
            score_rows = []
        if len(deal_rows) >= chunk or (final and deal_rows):
            with engine.begin() as conn:
                conn.execute(insert(DealRecord.__table__), deal_rows)
            deal_rows = []

    for i in range(n_deals):
        deal_id = f"SEED-{i:07d}"
        team, owner = f"team-{i % teams}", f"rep-{i % owners}"
        amount = float(np.round(rng.lognormal(10, 1), 2))
        stage = stages[i % len(stages)]
        k = int(per_deal[i])
        p_wins = np.clip(rng.beta(2, 3, size=k), 0.01, 0.99)
        for j in range(k):
            p = float(p_wins[j])
            as_of = base + timedelta(days=j, minutes=i % 1440)
            var = amount * max(0.0, typical - p)
            # the template's JSON with this score's numbers: no model object per row (1M rows)
            result = {**template_json, "deal_id": deal_id, "account_id": f"ACC-{i:07d}", "owner_id": owner,
                      "team": team, "amount": amount, "declared_stage": stage, "p_win": p,
                      "as_of": as_of.isoformat(), "value_at_risk": var}
            score_rows.append({
                "deal_id": deal_id, "payload_hash": f"{i:032x}{j:032x}", "model_version": template.model_version,
                "as_of": as_of, "scored_at": as_of, "account_id": result["account_id"], "owner_id": owner,
                "team": team, "amount": amount, "declared_stage": stage, "inferred_stage": template.inferred_stage,
                "stage_mismatch": template.stage_mismatch, "p_win": p, "grade": template.grade,
                "value_at_risk": var, "is_open": True, "warnings": warnings, "result": result,
                "touchpoints": None, "stage_changes": None,
            })
        latest = template.model_copy(update={
            "deal_id": deal_id, "account_id": f"ACC-{i:07d}", "owner_id": owner, "team": team, "amount": amount,
            "declared_stage": stage, "p_win": p, "as_of": as_of, "value_at_risk": var})
        rank = rank_of(latest)
        deal_rows.append({
            "deal_id": deal_id, "owner_id": owner, "team": team, "account_id": latest.account_id, "is_open": True,
            "outcome": None, "closed_at": None, "outcome_recorded_at": None,
            "payload_hash": f"{i:032x}{k - 1:032x}", "model_version": latest.model_version, "as_of": latest.as_of,
            "scored_at": latest.as_of, "amount": amount, "declared_stage": stage,
            "inferred_stage": latest.inferred_stage, "p_win": latest.p_win, "value_at_risk": rank.value_at_risk,
            "rank_group": rank.group, "rank_key": rank.key,
        })
        scores += k
        deals += 1
        flush()
    flush(final=True)
    if url.startswith("postgresql"):
        with engine.begin() as conn:  # fresh statistics, as autovacuum would give a store that grew over months
            conn.execute(text("ANALYZE scores")).close()
            conn.execute(text("ANALYZE deals")).close()
    engine.dispose()
    seconds = time.perf_counter() - t0
    return {"deals": deals, "scores": scores, "seconds": round(seconds, 1),
            "scores_per_second": round(scores / seconds)}


# --------------------------------------------------------------------------- the traffic


class SoakClient(LeanClient):
    """``bench_service``'s lean keep-alive client, for any method and path.

    httpx's pool costs the load generator more CPU per request than the server
    spends on some of these routes, and on a shared 2-core machine a starved
    generator stalled (its queue of waiting requests grows, and its pool scans
    the queue on every release): the figures measured the client.
    """

    def __init__(self, url: str, headers: dict[str, str], max_connections: int = 64) -> None:
        super().__init__(url, headers, max_connections)
        self._extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    async def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._extra}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return await self._send((head + "\r\n").encode() + (body or b""))


def slowest_seconds(timeline: list[tuple[float, str, float]], top: int = 5) -> list[dict[str, Any]]:
    """The seconds of the run whose requests waited longest (by their worst latency), with how many were slow.

    A p99 over a long run can come from a steady tail or from one stall; this says which.
    """
    per: dict[int, list[tuple[str, float]]] = {}
    for at, route, ms in timeline:
        per.setdefault(int(at), []).append((route, ms))
    worst = sorted(per.items(), key=lambda kv: -max(ms for _, ms in kv[1]))[:top]
    return [{"second": s, "requests": len(v), "max_ms": round(max(ms for _, ms in v), 1),
             "over_50_ms": {r: sum(ms > 50 for rr, ms in v if rr == r) for r in ROUTES}} for s, v in worst]


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


async def soak(base: str, key: str, mix: dict[str, float], rate: float, seconds: float, bodies: list[dict[str, Any]],
               deal_ids: list[str], teams: int, owners: int, seed: int, page_limit: int) -> dict[str, Any]:
    """Open-loop mixed traffic; per route: requests, errors (with the first few), p50/p99/max in ms."""
    rng = random.Random(seed)
    routes = list(mix)
    weights = [mix[r] for r in routes]
    lat: dict[str, list[float]] = {r: [] for r in routes}
    timeline: list[tuple[float, str, float]] = []  # (scheduled second, route, latency ms): where a tail comes from
    errors: dict[str, int] = dict.fromkeys(routes, 0)
    samples: list[str] = []
    n = int(rate * seconds)
    scored_ids: list[str] = []
    client = SoakClient(base, {"X-API-Key": key})
    try:

        async def one(i: int, route: str, at: float) -> None:
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if route == "score":
                    body = {**bodies[i % len(bodies)], "amount": 1000.0 + i}
                    status, data = await client.request("POST", "/v1/score", encode(body))
                    if status == 200:
                        scored_ids.append(body["deal_id"])
                elif route == "at_risk":
                    params: dict[str, Any] = {"limit": page_limit, "offset": page_limit * rng.randrange(0, 50)}
                    which = rng.randrange(4)
                    if which == 1:
                        params["team"] = f"team-{rng.randrange(teams)}"
                    elif which == 2:
                        params["owner"] = f"rep-{rng.randrange(owners)}"
                    elif which == 3:
                        params["min_amount"] = rng.choice([1000, 10000, 50000])
                    status, data = await client.request("GET", f"/v1/deals/at-risk?{urlencode(params)}")
                else:
                    pool = scored_ids if scored_ids and rng.random() < 0.3 else deal_ids
                    status, data = await client.request("GET", f"/v1/deals/{rng.choice(pool)}/scores")
                ok = status == 200
                what = f"{route} {status} {data[:160]!r}"
            except (OSError, asyncio.IncompleteReadError) as exc:
                ok, what = False, f"{route} {type(exc).__name__}: {exc}"
            lat[route].append((time.perf_counter() - at) * 1000)
            timeline.append((at - start_at, route, lat[route][-1]))
            if not ok:
                errors[route] += 1
                if len(samples) < 5:
                    samples.append(what)

        # each request's task is started at its time, not all up front: at 60,000 requests the first steps of
        # the waiting tasks alone held the event loop for most of a second, and the first requests left late
        plan = [rng.choices(routes, weights)[0] for _ in range(n)]
        start_at = time.perf_counter() + 0.5
        # only the requests in flight are kept: finished tasks (with their frames) would pile up to the run's
        # total and the collector's full passes over them stall the generator, and so every request in flight
        in_flight: set[asyncio.Task[None]] = set()
        for i in range(n):
            at = start_at + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(i, plan[i], at))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        took = time.perf_counter() - start_at
    finally:
        await client.aclose()
    out: dict[str, Any] = {"requests": n, "seconds": round(took, 1), "achieved_rps": round(n / took, 1),
                           "errors": sum(errors.values()), "error_samples": samples, "routes": {}}
    out["slowest_seconds"] = slowest_seconds(timeline)
    for r in routes:
        out["routes"][r] = {"requests": len(lat[r]), "errors": errors[r], "p50_ms": percentile(lat[r], 50),
                            "p99_ms": percentile(lat[r], 99), "max_ms": percentile(lat[r], 100)}
    return out


# --------------------------------------------------------------------------- main


def parse_mix(text_: str) -> dict[str, float]:
    out = {}
    for part in text_.split(","):
        name, _, weight = part.partition(":")
        if name not in ROUTES:
            raise SystemExit(f"--mix: unknown route {name!r}; use {ROUTES}")
        out[name] = float(weight or 1)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--pg-url", default=PG_ADMIN_URL, help="PostgreSQL to create the store's schema in")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=100.0, help="requests/s, all routes together")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of traffic")
    ap.add_argument("--mix", default="score:0.5,at_risk:0.3,history:0.2", help="route:weight,...")
    ap.add_argument("--seed-deals", type=int, default=0, help="deals pre-filled in the store (bulk inserts)")
    ap.add_argument("--seed-scores", type=int, default=0, help="scores over the pre-filled deals")
    ap.add_argument("--teams", type=int, default=8)
    ap.add_argument("--owners", type=int, default=200)
    ap.add_argument("--page-limit", type=int, default=20)
    ap.add_argument("--train-deals", type=int, default=1500)
    ap.add_argument("--score-deals", type=int, default=200, help="distinct open deals the score requests send")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    mix = parse_mix(args.mix)
    work = Path(tempfile.mkdtemp(prefix="dealscore-bench-soak-"))

    # ---- the model and the deals the score requests send
    history, result = bench_bundle(args.train_deals, args.seed, 200, "soak/1", work / "bundle")
    bundle = result.bundle
    open_ids = sorted(history.deals.loc[history.deals["outcome"].isna(), "deal_id"].tolist())[: args.score_deals]
    bodies = []
    for k, d in enumerate(open_ids):
        body = deal_payload(history, d)
        body["team"] = f"team-{k % args.teams}"
        body["owner_id"] = f"rep-{k % args.owners}"
        bodies.append(body)
    template = _slim(Scorer(bundle).score(history, as_of=history.data_cut, deal_id=open_ids[0]))

    # ---- the store: migrated, then pre-filled
    url, drop = store_url(args.store, work, args.pg_url)
    figures: dict[str, Any] = {"store": args.store, "workers": args.workers, "rate_rps": args.rate,
                               "duration_s": args.duration, "mix": mix, "score_touchpoints_mean":
                               round(float(np.mean([len(b["activities"]) for b in bodies])), 1)}
    try:
        store = ScoreStore(url)
        store.migrate()
        store.dispose()
        figures["seed"] = seed_store(url, template, args.seed_deals, args.seed_scores, args.teams, args.owners,
                                     args.seed)
        print(f"seeded: {figures['seed']}", file=sys.stderr)

        key = generate_key()
        env = {**os.environ, "DEALSCORE_DATA_DIR": str(work / "data"), "DEALSCORE_MODEL_PATH": str(work / "bundle"),
               "DEALSCORE_USE_REGISTRY": "false", "DEALSCORE_LOG_LEVEL": "WARNING", "DEALSCORE_DATABASE_URL": url,
               "DEALSCORE_API_KEYS": json.dumps([{"name": "soak", "hash": hash_key(key),
                                                  "scopes": ["score", "read"]}])}
        port = free_port()
        log = work / "server.log"
        proc = start([str(BIN / "dealscore"), "serve", "--port", str(port), "--workers", str(args.workers),
                      "--log-level", "warning"], env, log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/readyz", proc, log)
            seeded_ids = [f"SEED-{i:07d}" for i in range(0, max(args.seed_deals, 1), max(1, args.seed_deals // 1000))]
            # the generator's own long-lived objects (the trained bench bundle, the history) out of the
            # collector's passes: a full pass over them is a pause in sending, counted as the server's latency
            gc.collect()
            gc.freeze()
            figures["soak"] = asyncio.run(soak(
                base, key, mix, args.rate, args.duration, bodies, seeded_ids if args.seed_deals else open_ids,
                args.teams, args.owners, args.seed, args.page_limit))
            figures["server_restarts_logged"] = log.read_text().count("died")
        finally:
            stop(proc)
    finally:
        drop()
    figures["started"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
