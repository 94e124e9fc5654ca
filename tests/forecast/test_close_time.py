"""Close outlooks of many deals in one pass give, deal by deal, what the one-deal rule says."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealscore.forecast.close_time import BUCKET_EDGES, describe_close, describe_closes, period_probabilities

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _one_by_one(pmf: np.ndarray, as_of: pd.Timestamp, mass: float = 0.5) -> tuple[str, float]:
    """The rule written plainly with pandas periods: shortest run of months holding ``mass``; this quarter's share."""
    n = int(np.ceil(BUCKET_EDGES[-1] / 28)) + 2
    month = as_of.to_period("M")
    bounds = [max(0.0, ((month + k).start_time - as_of) / pd.Timedelta(days=1)) for k in range(n + 1)]
    probs = period_probabilities(pmf[None, :], np.array([[bounds[k], bounds[k + 1]] for k in range(n)]))[0]
    for length in range(1, n + 1):
        sums = [probs[i:i + length].sum() for i in range(n - length + 1)]
        if max(sums) >= mass - 1e-9:
            i = int(np.argmax(sums))
            break
    first, last = MONTHS[(month + i).month - 1], MONTHS[(month + i + length - 1).month - 1]
    quarter = as_of.to_period("Q")
    q = sum(p for k, p in enumerate(probs) if (month + k).asfreq("Q") == quarter)
    return (first if length == 1 else f"{first}–{last}"), q


def test_many_deals_at_once_match_the_rule_deal_by_deal() -> None:
    rng = np.random.default_rng(3)
    k = len(BUCKET_EDGES) - 1
    pmf = rng.dirichlet(np.full(k, 0.4), size=300)
    pmf[0] = np.eye(k)[0]  # all mass in the first bucket
    as_of = (pd.Timestamp("2024-11-15") + pd.to_timedelta(rng.integers(0, 900, 300), unit="D")
             + pd.to_timedelta(rng.integers(0, 86_400, 300), unit="s"))
    got = describe_closes(pmf, as_of.values)
    likely, quarter = got.likely(), got.p_this_quarter()
    for i in range(len(pmf)):
        name, q = _one_by_one(pmf[i], as_of[i])
        assert likely[i] == name, i
        assert quarter[i] == round(min(1.0, max(0.0, q)), 4), i
        one = describe_close(pmf[i], as_of[i])
        assert one["likely"] == name and one["p_this_quarter_if_won"] == quarter[i]
        assert one["this_quarter"] == f"{as_of[i].year}-Q{as_of[i].quarter}"
        assert one["text"].startswith(f"likely to close: {name} (")
        assert MONTHS[int(one["likely_months"][0][-2:]) - 1] == name.split("–")[0]


def test_a_quarter_share_near_zero_reads_below_one_percent_not_zero() -> None:
    """"likely to close: Aug–Sep (0% this quarter if won)" read as a certainty the data does not hold."""
    k = len(BUCKET_EDGES) - 1
    pmf = np.zeros(k)
    pmf[-1] = 0.998
    pmf[0] = 0.002  # a sliver of mass in the first days
    one = describe_close(pmf, pd.Timestamp("2025-06-29"))
    assert 0 < one["p_this_quarter_if_won"] < 0.005
    assert one["text"].endswith("(<1% this quarter if won)"), one["text"]
