"""Refuse histories too thin to learn from, saying exactly how much more is needed.

Commercial deal-scoring tools ask for 40 to 200 won *and* lost deals before they
train; below that a model mostly memorises noise and its probabilities are
meaningless. The check counts closed deals at deal level (not snapshots: many
snapshots of one deal are one example of its outcome) and separately those old
enough to enter the labelled cohort of the time split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore.errors import InsufficientDataError
from dealscore.training.split import SLICES, DealSplit


def outcome_counts(deals: pd.DataFrame) -> tuple[int, int]:
    """(won, lost) closed deals in a deals table."""
    outcome = deals["outcome"].astype(object)
    return int((outcome == "won").sum()), int((outcome == "lost").sum())


def check_history(deals: pd.DataFrame, split: DealSplit, *, min_won: int, min_lost: int) -> dict[str, int]:
    """Fail unless the labelled cohort holds enough won and lost closed deals.

    Returns the counts for the report. One-class histories get their own
    message, because "add more deals" would not help if none is ever won.
    """
    won_all, lost_all = outcome_counts(deals)
    if won_all + lost_all == 0:
        raise InsufficientDataError(
            f"the history has no closed deals ({len(deals)} deals, all open); training needs at least "
            f"{min_won} won and {min_lost} lost closed deals. Export deals that have been won or lost",
            won=0, lost=0, need_won=min_won, need_lost=min_lost,
        )
    if won_all == 0 or lost_all == 0:
        only, other = ("lost", "won") if won_all == 0 else ("won", "lost")
        raise InsufficientDataError(
            f"every closed deal in the history is {only} ({won_all} won, {lost_all} lost); a win model needs both "
            f"outcomes. Include {other} deals in the export (at least {min_won if other == 'won' else min_lost})",
            won=won_all, lost=lost_all, need_won=min_won, need_lost=min_lost,
        )
    cohort = set(split.assignment.index[np.isin(split.assignment.to_numpy(), SLICES)])
    in_cohort = deals[deals["deal_id"].astype(str).isin(cohort)]
    won, lost = outcome_counts(in_cohort)
    counts = {"won_closed": won_all, "lost_closed": lost_all, "won_in_cohort": won, "lost_in_cohort": lost}
    if won < min_won or lost < min_lost:
        short = []
        if won < min_won:
            short.append(f"{min_won - won} more won")
        if lost < min_lost:
            short.append(f"{min_lost - lost} more lost")
        late = (won_all - won) + (lost_all - lost)
        raise InsufficientDataError(
            f"too little history to train: {won} won and {lost} lost closed deals can be used "
            f"({won_all} won and {lost_all} lost closed in total; {late} closed deals were created after "
            f"{split.cohort_end:%Y-%m-%d}, the data cut minus the {split.horizon_days:.0f}-day label horizon, "
            f"and only serve as open deals). Training needs at least {min_won} won and {min_lost} lost: "
            f"add {' and '.join(short)} closed deals (a longer history)",
            **counts, need_won=min_won, need_lost=min_lost,
        )
    return counts


def check_slice_labels(y: np.ndarray, name: str, n_deals: int) -> None:
    """Each slice must contain both outcomes, or its metric (or early stopping) is meaningless."""
    values = set(np.unique(np.asarray(y, dtype=float)).tolist())
    if len(y) == 0 or len(values) < 2:
        what = "no labelled snapshots" if len(y) == 0 else f"only {'won' if values == {1.0} else 'lost'} deals"
        raise InsufficientDataError(
            f"the {name} slice ({n_deals} deals) has {what}; the time split needs won and lost deals in "
            f"every slice ({', '.join(SLICES)}). Add history or change split.fractions in the training config",
            slice=name,
        )
