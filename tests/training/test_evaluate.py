"""Evaluation sections: stage model vs declared stage, oracle share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore.training.evaluate import oracle_section, stage_section

STAGES = ["a", "b", "c"]


def test_stage_section_reports_disagreement_and_confidence():
    real = np.array(["a", "b", "c", "c"], dtype=object)
    inferred = np.array(["a", "b", "c", "b"], dtype=object)
    declared = np.array(["a", "a", "b", "c"], dtype=object)
    conf = np.array([0.95, 0.8, 0.6, 0.4])
    imp = pd.Series({"declared_stage": 1.0, "n_touches": 3.0})
    out = stage_section(real, inferred, declared, conf, STAGES, imp)
    m, d = out["model"], out["declared"]
    assert m["accuracy"] == 0.75 and d["accuracy"] == 0.5
    assert m["disagrees_with_declared_rate"] == 0.75
    assert abs(m["accuracy_when_disagreeing"] - 2 / 3) < 1e-12
    assert m["declared_stage_gain_share"] == 0.25
    assert m["accuracy_by_confidence"]["0.9-1.0"] == {"n": 1, "accuracy": 1.0}


def test_oracle_section_share_and_absence():
    y = np.array([0, 0, 1, 1], dtype=float)
    frame = pd.DataFrame({"declared_stage": ["a"] * 4, "deal_age_days": [1, 2, 3, 4]})
    out = oracle_section(y, np.array([0.1, 0.2, 0.8, 0.9]), 0.75, frame)
    assert out["available"] and out["roc_auc"] == 1.0 and out["model_auc_share_of_oracle"] == 0.5
    assert oracle_section(y, None, 0.75, frame)["available"] is False
