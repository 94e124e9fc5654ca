"""Every private-API shortcut in dealscore._compat gives what its public route gives.

Each test switches one shortcut off (as a pandas or LightGBM release without it
would) and compares the product's output with the shortcut on.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from dealscore import _compat
from dealscore.data.request import history_from_columns
from dealscore.data.simulate import simulate
from dealscore.data.validate import validate_history
from dealscore.features import FeatureSpec, build_features, make_snapshots, scoring_snapshots
from tests.data.test_request import clean_tables

SPEC = FeatureSpec.default()


@pytest.fixture(scope="module")
def history() -> Any:
    return validate_history(simulate(40, seed=11).history)[0]


@pytest.mark.parametrize("switch", ["USE_COLUMN_ARRAY", "USE_ARROW_INDEX", "USE_BLOCKS", "USE_BLOCK_FRAMES",
                                    "USE_FROM_ARRAYS"])
def test_features_are_the_same_through_the_public_route(switch: str, history: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = make_snapshots(history).iloc[:300]
    fast, fast_open = build_features(history, snaps, spec=SPEC), scoring_snapshots(history)
    monkeypatch.setattr(_compat, switch, False)
    pd.testing.assert_frame_equal(build_features(history, snaps, spec=SPEC), fast)
    pd.testing.assert_frame_equal(scoring_snapshots(history), fast_open)


def test_a_request_history_is_the_same_without_block_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = history_from_columns(clean_tables())
    monkeypatch.setattr(_compat, "USE_BLOCK_FRAMES", False)
    slow = history_from_columns(clean_tables())
    for name, frame in fast.tables().items():
        pd.testing.assert_frame_equal(slow.table(name), frame)


def test_each_pandas_shortcut_matches_its_public_route(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.DataFrame({"s": pd.array(["a", None], dtype="str"), "x": [1.0, 2.0],
                          "t": pd.to_datetime(["2024-01-01", None]).astype("datetime64[ns]"),
                          "o": pd.Series(["p", "q"], dtype=object)})
    fast = [_compat.column_array(frame, i) for i in range(4)], _compat.column_names(frame.columns)
    stamps = _compat.naive_ns_columns(frame)
    assert list(stamps) == [2] and np.array_equal(stamps[2], frame["t"].to_numpy(), equal_nan=True)
    for switch in ("USE_COLUMN_ARRAY", "USE_ARROW_INDEX", "USE_BLOCKS"):
        monkeypatch.setattr(_compat, switch, False)
    slow = [_compat.column_array(frame, i) for i in range(4)], _compat.column_names(frame.columns)
    assert slow[1] == fast[1] == ["s", "x", "t", "o"]
    for a, b in zip(fast[0], slow[0], strict=True):
        assert type(a) is type(b)
        pd.testing.assert_series_equal(pd.Series(a), pd.Series(b))
    assert _compat.naive_ns_columns(frame) == {}  # the public route: each column read on its own


@pytest.fixture(scope="module")
def boosters() -> dict[str, lgb.Booster]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    binary = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                       lgb.Dataset(X, (X[:, 0] + rng.normal(size=300) > 0).astype(float)), num_boost_round=5)
    multi = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
                      lgb.Dataset(X, rng.integers(0, 3, 300).astype(float)), num_boost_round=5)
    return {"binary": binary, "multiclass": multi}


@pytest.mark.parametrize("which", ["binary", "multiclass"])
@pytest.mark.parametrize("kind", [_compat.NORMAL, _compat.RAW_SCORE, _compat.CONTRIB])
@pytest.mark.parametrize("rows", [0, 1, 7])
def test_the_direct_lightgbm_call_equals_booster_predict(boosters: dict[str, lgb.Booster], which: str, kind: int,
                                                          rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    booster = boosters[which]
    mat = np.random.default_rng(1).normal(size=(rows, 4))
    args: dict[str, Any] = {"kind": kind, "iteration": 4, "threads": 1,
                            "models": int(booster.num_model_per_iteration())}
    fast = _compat.predict_matrix(booster, mat, **args)
    monkeypatch.setattr(_compat, "_LIB", None)
    slow = _compat.predict_matrix(booster, mat, **args)
    assert fast.shape == slow.shape == (rows * args["models"] * (5 if kind == _compat.CONTRIB else 1),)
    assert np.array_equal(fast, slow)


def test_lightgbm_s_parameter_table_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table LightGBM's C API dumps: main names with their aliases; without the private handle, None (the
    config then leaves names unchecked, see tests/models/test_lgb_params.py)."""
    table = _compat.lightgbm_parameters()
    assert table is not None
    assert {"num_threads", "n_jobs"} <= table["num_threads"] and "reg_lambda" in table["lambda_l2"]
    assert set(lgb.Booster(params={"verbose": -1}, train_set=lgb.Dataset(
        np.arange(20.0).reshape(10, 2), label=np.arange(10) % 2)).params) <= set().union(*table.values())
    monkeypatch.setattr(_compat, "USE_PARAMETER_TABLE", False)
    assert _compat.lightgbm_parameters() is None
