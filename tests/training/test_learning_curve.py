"""The learning curve's sentence: what the training run tells a data scientist about more history."""

from __future__ import annotations

from dealscore.training.learning_curve import more_data_note


def _points(auc: tuple[float, float], ll: tuple[float, float]) -> list[dict[str, float]]:
    return [{"train_deals": 500, "roc_auc": auc[0], "log_loss": ll[0]},
            {"train_deals": 1000, "roc_auc": auc[1], "log_loss": ll[1]}]


def test_the_verb_carries_the_sign_so_the_words_never_contradict_the_numbers() -> None:
    """It printed "ROC AUC rose by -0.032" and "log loss fell by -0.031"."""
    mixed = more_data_note(_points((0.80, 0.768), (0.45, 0.40)))
    assert "more history would likely improve" in mixed
    assert "ROC AUC fell by 0.032" in mixed and "log loss fell by 0.050" in mixed and "-0" not in mixed
    rising = more_data_note(_points((0.70, 0.72), (0.50, 0.53)))
    assert "ROC AUC rose by 0.020" in rising and "log loss rose by 0.030" in rising
    flat = more_data_note(_points((0.80, 0.8001), (0.45, 0.4502)))
    assert flat.startswith("the model has about levelled off") and "did not move" in flat
