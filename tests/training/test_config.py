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


@pytest.mark.parametrize(("raw", "needles"), [
    # each used to crash mid-run (a traceback from LightGBM or min() of nothing) or be taken silently
    ({"win": {"num_boost_round": "many"}}, ['config.win.num_boost_round: got "many"', "a whole number, at least 1"]),
    ({"win": {"params": {"num_leaves": -3}}}, ["config.win.params.num_leaves: got -3", "num_leaves > 1"]),
    ({"win": {"search": {}}}, ["config.win.search: got {}", "at least one named setting"]),
    ({"gate": {"log_loss_tolerance": "x"}}, ['config.gate.log_loss_tolerance: got "x"', "a number, at least 0"]),
    ({"thin": {"min_won": -1}}, ["config.thin.min_won: got -1", "at least 1"]),
    ({"win": {"blends": [1.5]}}, ["config.win.blends: got [1.5]", "each from 0 to 1"]),
    ({"win": {"search": {"base": {"monotone": "yes"}}}}, ['config.win.search.base.monotone: got "yes"',
                                                          "true or false"]),
    ({"split": {"fractions": [0.6, 0.1, 0.1, 0.5]}}, ["config.split.fractions", "add up to 1.3",
                                                      "four positive numbers", "add up to 1"]),
    ({"win": {"calibration": "sigmoid"}}, ['config.win.calibration: got "sigmoid"', "one of auto, isotonic"]),
    ({"win": {"max_train_rows": 1.5}}, ["config.win.max_train_rows: got 1.5", "a whole number or null"]),
    ({"snapshots": {"at_stage_changes": 1}}, ["config.snapshots.at_stage_changes: got 1", "true or false"]),
    ({"warnings": {"target_precision": 1.0}}, ["config.warnings.target_precision: got 1.0", "above 0 and below 1"]),
    ({"win": 3}, ["config.win: got 3", "a mapping of settings"]),
])
def test_values_of_the_wrong_type_or_range_are_refused_when_read(raw, needles):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(raw)
    for needle in needles:
        assert needle in str(err.value), str(err.value)
    assert "default.yaml" in err.value.detail["fix"]


def test_every_problem_of_a_file_comes_in_one_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("win:\n  num_boost_rounds: 5\n  blends: [1.5]\n  params: {num_leaves: -3}\n"
                    "gate: {log_loss_tolerance: x}\nthin: {min_won: -1}\n")
    with pytest.raises(ConfigError) as err:
        TrainConfig.load(path)
    text = str(err.value)
    assert text.startswith(f"5 problems in training config {path}:")
    for path_named in ("config.win: unknown setting(s) ['num_boost_rounds']", "config.win.blends",
                       "config.win.params.num_leaves", "config.gate.log_loss_tolerance", "config.thin.min_won"):
        assert path_named in text
    assert err.value.detail["problems"][0].startswith("config.win")


def test_good_values_and_null_where_allowed_are_kept():
    cfg = TrainConfig.from_dict({"win": {"max_train_rows": None, "blends": [0, 1], "linear_c": 2,
                                         "search": {"only": {"monotone": True, "num_leaves": 7}}},
                                 "split": {"fractions": [0.5, 0.2, 0.1, 0.2]}, "gate": {"auc_tolerance": 0}})
    assert cfg.win.max_train_rows is None and cfg.win.blends == [0, 1] and cfg.win.linear_c == 2
    assert cfg.split.fractions == [0.5, 0.2, 0.1, 0.2] and cfg.gate.auc_tolerance == 0


def test_lightgbm_parameters_are_checked_by_name_by_what_dealscore_sets_and_by_lightgbm():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"win": {"params": {"num_leave": 7, "n_jobs": 2, "learning_rate": "fast"}},
                               "stage": {"params": {"n_estimators": 10, "feature_fraction": 1.5}}})
    text = str(err.value)
    assert "config.win.params: 'num_leave' is not a LightGBM parameter (did you mean num_leaves?)" in text
    assert "config.win.params.n_jobs: dealscore sets num_threads itself" in text
    assert "set num_threads at the top of the config" in text
    assert 'config.win.params.learning_rate: got "fast"; accepts a number (the default is 0.05)' in text
    assert "config.stage.params.n_estimators: dealscore sets num_iterations itself" in text
    assert "set stage.num_boost_round" in text
    assert "config.stage.params.feature_fraction: got 1.5; LightGBM requires feature_fraction <= 1.0" in text
    # aliases and settings LightGBM knows but dealscore ships no default for pass
    cfg = TrainConfig.from_dict({"win": {"params": {"reg_alpha": 0.5, "extra_trees": True}}})
    assert cfg.win.params == {"reg_alpha": 0.5, "extra_trees": True}


def test_the_splitter_and_the_folds_accept_what_the_config_accepts():
    """One statement per setting: code taking a setting's value refuses it by the config's rule."""
    from dealscore.training.config import require

    require("split.fractions", [0.6, 0.1, 0.1, 0.2])
    with pytest.raises(ConfigError, match=r"config.win.cv_folds: got 1; accepts a whole number, at least 2"):
        require("win.cv_folds", 1)
