"""Training config: YAML overrides, typos refused, the shipped default file in sync with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealscore.errors import ConfigError
from dealscore.tracking import flatten
from dealscore.training.config import TrainConfig

SHIPPED = Path(__file__).resolve().parents[2] / "training" / "configs" / "default.yaml"


def test_shipped_default_yaml_matches_the_code_defaults():
    assert TrainConfig.load(SHIPPED) == TrainConfig()


def test_overrides_and_unknown_keys(tmp_path):
    cfg = TrainConfig.from_dict({"win": {"num_boost_round": 5}, "split": {"max_train_deals": 10}})
    assert cfg.win.num_boost_round == 5 and cfg.win.early_stopping_rounds == 50 and cfg.split.max_train_deals == 10
    with pytest.raises(ConfigError, match=r"config.win: unknown setting\(s\) \['num_boost_rounds'\]"):
        TrainConfig.from_dict({"win": {"num_boost_rounds": 5}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("win: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        TrainConfig.load(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.load(tmp_path / "missing.yaml")


def test_flatten_for_mlflow_params():
    flat = flatten(TrainConfig().to_dict())
    assert flat["gate.auc_tolerance"] == 0.005 and flat["split.fractions"] == [0.6, 0.1, 0.1, 0.2]
