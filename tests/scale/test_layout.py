"""The partitioned layout: fsspec URLs read like paths; missing pieces are refused with the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dealscore.errors import ConfigError, DataValidationError
from dealscore.scale.cluster import parse_local
from dealscore.scale.generate import plan_chunks
from dealscore.scale.layout import is_partitioned, open_partitioned


def test_a_file_url_reads_as_the_path(partitioned: Any) -> None:
    by_url = open_partitioned(f"file://{partitioned.root}")
    assert by_url.keys == partitioned.source.keys
    a, b = by_url.read(by_url.keys[1]), partitioned.source.read(by_url.keys[1])
    for name, frame in a.tables().items():
        assert frame.equals(b.table(name)), name
    assert is_partitioned(str(partitioned.root)) and by_url.cut_at == partitioned.source.cut_at


def test_missing_pieces_name_what_to_write(partitioned: Any, tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="not a partitioned history"):
        open_partitioned(str(tmp_path))
    (tmp_path / "deals").mkdir()
    with pytest.raises(DataValidationError, match="no Parquet files"):
        open_partitioned(str(tmp_path))
    (tmp_path / "deals" / "p1.parquet").write_bytes(
        (partitioned.root / "deals" / "part-00000.parquet").read_bytes())
    source = open_partitioned(str(tmp_path))
    with pytest.raises(DataValidationError, match="accounts") as err:
        source.read("p1")
    assert "accounts.parquet" in (err.value.fix or "")


def test_chunks_and_scheduler_addresses() -> None:
    chunks = plan_chunks(2003, 4, seed=1)
    assert [c.deals for c in chunks] == [501, 501, 501, 500]
    assert [c.deal_offset for c in chunks] == [0, 501, 1002, 1503]
    assert len({c.seed for c in chunks}) == 4 and chunks == plan_chunks(2003, 4, seed=1)
    with pytest.raises(ConfigError, match="fewer than 500 deals each"):
        plan_chunks(1000, 3, seed=0)
    assert parse_local("local:3") == 3 and parse_local("local") == 2 and parse_local("tcp://h:8786") is None
