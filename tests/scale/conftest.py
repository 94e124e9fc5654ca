"""A small partitioned history, its single-machine twin, a small bundle and a real 2-process LocalCluster."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dealscore.data.history import DealHistory, from_frames
from dealscore.data.validate import LoadReport, validate_history
from dealscore.scale.generate import generate_partitioned
from dealscore.scale.layout import PartitionedHistory, open_partitioned, read_whole
from dealscore.taxonomy import default_taxonomy
from dealscore.training.config import TrainConfig


@dataclass(frozen=True)
class Partitioned:
    """A partitioned history on disk and the same rows as one validated history in memory."""

    root: Path
    source: PartitionedHistory
    whole: DealHistory
    report: LoadReport


@pytest.fixture(scope="session")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> Partitioned:
    """1,500 simulated deals in 3 partitions (~2 s to draw)."""
    root = tmp_path_factory.mktemp("partitioned") / "crm"
    generate_partitioned(str(root), 1500, 3, seed=11)
    source = open_partitioned(str(root))
    whole, report = validate_history(from_frames(read_whole(source), cut_at=source.cut_at), default_taxonomy())
    return Partitioned(root, source, whole, report)


@pytest.fixture(scope="session")
def cluster_client() -> Iterator[Any]:
    """A real LocalCluster: two worker processes with one thread each (what `--scheduler local:2` starts)."""
    from dealscore.scale.cluster import connect

    with connect("local:2", memory_limit="2GiB") as client:
        yield client


@pytest.fixture(scope="session")
def small_bundle(partitioned: Partitioned, fast_config: TrainConfig) -> Any:
    """A bundle trained on the single-machine twin with the suite's fast settings (one thread: the same trees on
    every run, which the cluster-equality tests rely on)."""
    from dealscore.training.pipeline import train_models

    return train_models(partitioned.whole, fast_config).bundle
