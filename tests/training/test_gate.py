"""Promotion gate decisions on the same holdout."""

from __future__ import annotations

from dealscore.training.config import GateConfig
from dealscore.training.gate import decide

CFG = GateConfig(log_loss_tolerance=0.005, auc_tolerance=0.005)


def test_first_model_becomes_champion():
    d = decide({"roc_auc": 0.6, "log_loss": 0.6}, None, CFG)
    assert d.promote and d.alias == "champion" and "no champion" in d.reasons[0]


def test_within_tolerance_is_promoted():
    d = decide({"roc_auc": 0.798, "log_loss": 0.503}, {"roc_auc": 0.80, "log_loss": 0.50}, CFG, "3")
    assert d.promote


def test_worse_log_loss_or_auc_stays_challenger_and_says_why():
    d = decide({"roc_auc": 0.80, "log_loss": 0.52}, {"roc_auc": 0.80, "log_loss": 0.50}, CFG, "3")
    assert not d.promote and d.alias == "challenger"
    assert any("log loss 0.5200 is worse than champion v3" in r for r in d.reasons)
    d = decide({"roc_auc": 0.70, "log_loss": 0.49}, {"roc_auc": 0.80, "log_loss": 0.50}, CFG, "3")
    assert not d.promote and any("ROC AUC 0.7000 is below" in r for r in d.reasons)


def test_missing_metric_keeps_the_champion():
    d = decide({"roc_auc": None, "log_loss": 0.5}, {"roc_auc": 0.8, "log_loss": 0.5}, CFG, "1")
    assert not d.promote


def test_a_champion_that_could_not_be_compared_is_replaced_only_when_it_cannot_be_served_either():
    why = "champion v3 could not score the holdout (its bundle format is unknown)"
    held = decide({"roc_auc": 0.9, "log_loss": 0.3}, None, CFG, "3", unusable=why)
    assert not held.promote and held.alias == "challenger" and held.champion_version == "3"
    assert held.reasons == [why + "; the models were not compared, so the new version is held as challenger "
                            "(check the champion, or promote the new version with `dealscore promote`)"]
    replaced = decide({"roc_auc": 0.5, "log_loss": 0.7}, None, CFG, "3", unusable=why, replaceable=True)
    assert replaced.promote and "replaces it" in replaced.reasons[0] and replaced.champion == {}


def test_the_reasons_say_better_when_the_new_model_is_better_and_within_tolerance_only_when_worse():
    """A clearly better challenger read "log loss 0.3859 vs champion 0.4001 (within tolerance)"."""
    better = decide({"roc_auc": 0.8928, "log_loss": 0.3859}, {"roc_auc": 0.8836, "log_loss": 0.4001}, CFG, "3")
    assert better.promote
    assert better.reasons == ["log loss 0.3859 vs champion 0.4001 (better)",
                              "ROC AUC 0.8928 vs champion 0.8836 (better)"]
    worse = decide({"roc_auc": 0.798, "log_loss": 0.503}, {"roc_auc": 0.80, "log_loss": 0.50}, CFG, "3")
    assert worse.promote
    assert worse.reasons == ["log loss 0.5030 vs champion 0.5000 (within tolerance)",
                             "ROC AUC 0.7980 vs champion 0.8000 (within tolerance)"]
    same = decide({"roc_auc": 0.80001, "log_loss": 0.49999}, {"roc_auc": 0.80, "log_loss": 0.50}, CFG, "3")
    assert same.reasons == ["log loss 0.5000 vs champion 0.5000 (the same)",
                            "ROC AUC 0.8000 vs champion 0.8000 (the same)"]
