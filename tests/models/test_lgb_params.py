"""LightGBM parameters from a training config: names, what dealscore sets itself, and LightGBM's own bounds."""

from __future__ import annotations

import pytest

from dealscore import _compat
from dealscore.models import lgb_params
from dealscore.models.lgb_params import parameter_problems
from dealscore.models.win import DEFAULT_WIN_PARAMS


def _problems(params: dict[str, object]) -> list[str]:
    return parameter_problems(params, "config.win.params", defaults=DEFAULT_WIN_PARAMS, section="win")


def test_the_shipped_defaults_and_known_overrides_pass() -> None:
    assert _problems({k: v for k, v in DEFAULT_WIN_PARAMS.items() if k != "objective"}) == []
    assert _problems({"min_sum_hessian_in_leaf": 1e-2, "monotone_constraints": [1, 0, -1]}) == []


def test_lightgbm_states_its_own_bounds_and_its_log_stays_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    problems = _problems({"num_leaves": -3, "bagging_fraction": 0.0, "lambda_l2": -1})
    assert problems == ["config.win.params.num_leaves: got -3; LightGBM requires num_leaves > 1",
                        "config.win.params.bagging_fraction: got 0.0; LightGBM requires bagging_fraction > 0.0",
                        "config.win.params.lambda_l2: got -1; LightGBM requires lambda_l2 >= 0.0"]
    out, err = capfd.readouterr()
    assert "[LightGBM]" not in out + err  # the "[Fatal]" line LightGBM's core writes itself


def test_an_alias_is_judged_as_its_parameter() -> None:
    """reg_lambda is lambda_l2: its type is the default's and a bad value is not hidden by the default's."""
    assert _problems({"reg_lambda": "high"}) == [
        'config.win.params.reg_lambda: got "high"; accepts a number (the default is 10.0)']
    assert _problems({"reg_lambda": -2}) == ["config.win.params.reg_lambda: got -2; LightGBM requires lambda_l2 >= 0.0"]
    assert "dealscore sets seed itself" in _problems({"random_state": 1})[0]


def test_without_lightgbm_s_parameter_table_names_go_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table comes through a private handle: where it cannot be read, an unknown name passes (LightGBM logs
    it), and main names dealscore sets are still refused."""
    monkeypatch.setattr(_compat, "USE_PARAMETER_TABLE", False)
    lgb_params._main_names.cache_clear()
    try:
        assert _problems({"num_leave": 7}) == []
        assert "dealscore sets seed itself" in _problems({"seed": 1})[0]
    finally:
        lgb_params._main_names.cache_clear()


def test_a_mix_lightgbm_trains_with_is_taken_whole() -> None:
    """GOSS with bagging turned off was refused ("Cannot use bagging in GOSS": the probe set bagging_freq from
    the defaults beside it), and a categorical feature by name failed on the probe's nameless columns."""
    assert _problems({"data_sample_strategy": "goss", "bagging_freq": 0, "bagging_fraction": 1.0}) == []
    assert _problems({"categorical_feature": "name:industry"}) == []
    together = _problems({"data_sample_strategy": "goss", "bagging_freq": 5, "bagging_fraction": 0.8})
    assert len(together) == 1 and "Cannot use bagging in GOSS" in together[0]
