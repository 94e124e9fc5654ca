"""``dealscore generate --partitions N``: a big simulated history written partition by partition.

The deals are simulated in N chunks, one per partition, each with a seed
derived from the run's seed (``SeedSequence(seed).spawn(N)``), renumbered into
one id space and written before the next chunk is drawn: memory holds one
chunk, never the whole history.

This is a different draw than ``simulate(n_deals, seed)`` in one piece, and
cannot be byte-identical to it: each chunk is a company division with its own
accounts and reps (as many in total as one piece would have, since both grow
with the deals), so no account or rep spans two partitions. It is an equally
valid history from the same simulator and configuration, and the same
``(deals, partitions, seed)`` gives the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.data.simulate import SimConfig, simulate
from dealscore.errors import ConfigError
from dealscore.scale.layout import partition_key, write_meta, write_partition

MIN_DEALS_PER_PARTITION = 500
"""Fewer deals per chunk would give each division too few reps and accounts to look like a company."""


@dataclass(frozen=True)
class Chunk:
    """One partition's share of the run: its position, size and where its ids start."""

    index: int
    deals: int
    deal_offset: int
    seed: int


def plan_chunks(n_deals: int, partitions: int, seed: int) -> list[Chunk]:
    """Split ``n_deals`` into ``partitions`` near-equal chunks, each with its derived seed."""
    if partitions < 1:
        raise ConfigError(f"--partitions must be at least 1 (got {partitions})")
    if n_deals < partitions * MIN_DEALS_PER_PARTITION:
        raise ConfigError(
            f"{n_deals:,} deals in {partitions} partitions is fewer than {MIN_DEALS_PER_PARTITION} deals each",
            fix=f"use at most {max(1, n_deals // MIN_DEALS_PER_PARTITION)} partitions for {n_deals:,} deals",
        )
    sizes = np.full(partitions, n_deals // partitions)
    sizes[: n_deals % partitions] += 1
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    children = np.random.SeedSequence(seed).spawn(partitions)
    seeds = [int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)) for s in children]
    return [Chunk(i, int(n), int(o), seeds[i]) for i, (n, o) in enumerate(zip(sizes, offsets, strict=True))]


def _renumber(prefix: str, values: pd.Series, offset: int, width: int) -> pd.Series:
    """Ids ``<prefix><n>`` moved by ``offset`` into the run's id space (missing stays missing)."""
    present = values.notna()
    out = pd.Series(np.full(len(values), None, dtype=object), index=values.index, dtype=object)
    numbers = values[present].str.slice(len(prefix)).astype(np.int64).to_numpy() + offset
    out[present] = [f"{prefix}{n:0{width}d}" for n in numbers]
    return out


def chunk_history(chunk: Chunk, n_total: int, *, cut_date: str | None, config: SimConfig | None,
                  profile: str | None = None) -> DealHistory:
    """One chunk simulated and renumbered: deals, accounts, activities and reps unique across the run."""
    sim = simulate(chunk.deals, chunk.seed, cut_date=cut_date, config=config, profile=profile)
    h = sim.history
    width = max(7, len(str(n_total)))
    # accounts per chunk are at most its deals; activities at most 200 per deal: offsets keep ids disjoint
    acc_offset, act_offset = chunk.deal_offset, chunk.deal_offset * 200
    rep = f"R{chunk.index:04d}-"

    def deal(s: pd.Series) -> pd.Series:
        return _renumber("D", s, chunk.deal_offset, width)

    def account(s: pd.Series) -> pd.Series:
        return _renumber("A", s, acc_offset, width)

    accounts = h.accounts.assign(account_id=account(h.accounts["account_id"]))
    deals = h.deals.assign(deal_id=deal(h.deals["deal_id"]), account_id=account(h.deals["account_id"]),
                           owner_id=(rep + h.deals["owner_id"].str.slice(1)).astype(object))
    acts = h.activities
    contact = acts["contact_id"].str.split("-", n=1, expand=True) if len(acts) else None
    acts = acts.assign(
        activity_id=_renumber("T", acts["activity_id"], act_offset, width + 3), deal_id=deal(acts["deal_id"]),
        contact_id=(account(contact[0]) + "-" + contact[1]).astype(object) if contact is not None
        else acts["contact_id"])
    acts["contact_id"] = acts["contact_id"].where(h.activities["contact_id"].notna(), None)
    stage_history = h.stage_history.assign(deal_id=deal(h.stage_history["deal_id"]))
    truth = h.stage_truth
    if truth is not None:
        truth = truth.assign(deal_id=deal(truth["deal_id"]))
    return h.replace(accounts=accounts, deals=deals, activities=acts, stage_history=stage_history,
                     stage_truth=truth)


def write_chunk(url: str, chunk: Chunk, n_total: int, cut_date: str | None, config: SimConfig | None,
                profile: str | None = None) -> dict[str, Any]:
    """Simulate one chunk and write it as its partition; returns its row counts and data cut."""
    h = chunk_history(chunk, n_total, cut_date=cut_date, config=config, profile=profile)
    write_partition(url, partition_key(chunk.index), h)
    counts: dict[str, Any] = {name: len(frame) for name, frame in h.tables().items()}
    counts["cut_at"] = h.cut_at
    counts["meta"] = dict(h.meta)
    return counts


def generate_partitioned(url: str, n_deals: int, partitions: int, seed: int = 0, *, cut_date: str | None = None,
                         config: SimConfig | None = None, profile: str | None = None, client: Any = None,
                         progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write a simulated history of ``n_deals`` deals as ``partitions`` partitions under ``url``.

    With a Dask ``client`` the chunks are drawn on the workers; otherwise one after
    the other here. Returns the total rows per table.
    """
    chunks = plan_chunks(n_deals, partitions, seed)
    if client is not None:
        futures = client.map(write_chunk, [url] * len(chunks), chunks, n_total=n_deals, cut_date=cut_date,
                             config=config, profile=profile, pure=False)
        results = client.gather(futures)
        if progress is not None:
            progress(len(chunks))
    else:
        results = []
        for c in chunks:
            results.append(write_chunk(url, c, n_deals, cut_date, config, profile))
            if progress is not None:
                progress(1)
    totals: dict[str, int] = {}
    for r in results:
        for k, v in r.items():
            if k not in ("cut_at", "meta"):
                totals[k] = totals.get(k, 0) + int(v)
    meta = dict(results[0]["meta"])
    meta.update({"cut_at": results[0]["cut_at"], "deals": n_deals, "partitions": partitions, "seed": seed,
                 "profile": profile})
    write_meta(url, meta)
    return totals
