"""The learning curve's sentence: what the training run tells a data scientist about more history."""

from __future__ import annotations

from dealscore.training.learning_curve import more_data_note


def _points(auc: tuple[float, ...], ll: tuple[float, ...]) -> list[dict[str, float]]:
    deals = (385, 770, 1541)[: len(auc)]
    return [{"train_deals": n, "roc_auc": a, "log_loss": b} for n, a, b in zip(deals, auc, ll, strict=True)]


FLAT_LL = (0.40, 0.40, 0.40)


def test_a_curve_that_dips_and_recovers_is_too_noisy_to_tell() -> None:
    """0.876 / 0.864 / 0.881 read "more history would likely improve … rose by 0.018" (the last two points only),
    though 25 % of the deals did nearly as well as 100 %."""
    note = more_data_note(_points((0.876, 0.864, 0.881), FLAT_LL))
    assert note.startswith("the learning curve is too noisy to tell whether more history would help")
    assert "ROC AUC was 0.876 → 0.864 → 0.881" in note and "385 → 770 → 1,541 training deals" in note


def test_a_steadily_falling_curve_says_it_falls() -> None:
    """0.909 → 0.906 → 0.902 read "the model has about levelled off": each step is small, the fall is not."""
    note = more_data_note(_points((0.909, 0.906, 0.902), FLAT_LL))
    assert note.startswith("older history made the model worse") and "split.max_train_deals" in note


def test_rising_levelled_and_flat_curves() -> None:
    rising = more_data_note(_points((0.80, 0.81, 0.82), FLAT_LL))
    assert rising.startswith("more history would likely improve the model")
    by_log_loss = more_data_note(_points((0.80, 0.80, 0.80), (0.45, 0.43, 0.41)))  # log loss falling is better
    assert by_log_loss.startswith("more history would likely improve")
    assert "log loss 0.450 → 0.430 → 0.410" in by_log_loss
    levelled = more_data_note(_points((0.80, 0.82, 0.821), FLAT_LL))
    assert levelled.startswith("the model has about levelled off")
    flat = more_data_note(_points((0.80, 0.802, 0.801), (0.40, 0.401, 0.40)))
    assert flat.startswith("the learning curve is too noisy to tell") and "no change beyond noise" in flat


def test_metrics_pointing_opposite_ways_are_too_noisy_to_tell() -> None:
    note = more_data_note(_points((0.80, 0.81, 0.82), (0.40, 0.42, 0.44)))
    assert note.startswith("the learning curve is too noisy to tell")


def test_two_points_still_read_and_too_few_say_so() -> None:
    """A fraction whose deals hold one outcome is skipped; the thin-data sentence stays for fewer than two."""
    thin = "the learning curve could not be measured (too few deals per fold)"
    assert more_data_note(_points((0.80, 0.81), (0.45, 0.40))).startswith("more history would likely improve")
    assert more_data_note(_points((0.80,), (0.45,))) == thin
    assert more_data_note([{"train_deals": 10, "roc_auc": None, "log_loss": 0.5}] * 3) == thin
