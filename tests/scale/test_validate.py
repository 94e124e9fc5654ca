"""Partition-by-partition validation: every partition's problems at once, ids unique across partitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dealscore.errors import DataValidationError
from dealscore.scale import open_partitioned, validate_partitioned
from dealscore.scale.generate import generate_partitioned


@pytest.fixture
def small(tmp_path: Path) -> Path:
    root = tmp_path / "crm"
    generate_partitioned(str(root), 1000, 2, seed=4)
    return root


def test_a_deal_repeated_in_two_partitions_is_refused_naming_both(small: Path, cluster_client: Any) -> None:
    deals0 = pd.read_parquet(small / "deals" / "part-00000.parquet")
    acc0 = pd.read_parquet(small / "accounts" / "part-00000.parquet")
    moved = deals0.iloc[[0]]
    for table, extra in (("deals", moved), ("accounts", acc0[acc0["account_id"] == moved["account_id"].iloc[0]])):
        path = small / table / "part-00001.parquet"
        pd.concat([pd.read_parquet(path), extra], ignore_index=True).to_parquet(path, index=False)
    with pytest.raises(DataValidationError) as err:
        validate_partitioned(cluster_client, open_partitioned(str(small)))
    assert err.value.table == "deals" and err.value.ids == [moved["deal_id"].iloc[0]]
    assert "part-00000" in str(err.value) and "part-00001" in str(err.value)


def test_problems_of_every_partition_are_listed_with_their_partition(small: Path, cluster_client: Any) -> None:
    for key in ("part-00000", "part-00001"):
        path = small / "activities" / f"{key}.parquet"
        acts = pd.read_parquet(path)
        acts.loc[acts.index[:2], "type"] = "carrier pigeon"
        acts.to_parquet(path, index=False)
    with pytest.raises(DataValidationError) as err:
        validate_partitioned(cluster_client, open_partitioned(str(small)))
    assert len(err.value.problems) == 2
    assert [p.message.split(":")[0] for p in err.value.problems] == ["partition part-00000", "partition part-00001"]
    assert all("carrier pigeon" in p.message for p in err.value.problems)
