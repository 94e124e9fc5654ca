"""Customer-profile features: who the customer is, what the deal is worth, whose deal it is.

Account fields (industry, head count, revenue, region) and the deal's product
and source are taken as they stand in the history: they describe the customer
and rarely change, and the contract has no history for them. The amount is
point in time (see :mod:`dealscore.features.stage`); owner and account track
records come from :class:`~dealscore.features.context.FeatureContext`.
"""

from __future__ import annotations

import numpy as np

from dealscore.features.context import FeatureContext
from dealscore.features.inputs import DealRows
from dealscore.features.timeline import NAT
from dealscore.times import DAY_NS

#: What :func:`profile_features` returns: a function of the deal, the snapshot time and its amount alone (no
#: touchpoint, no data cut), which is why a what-if copy can take its snapshot's values.
PROFILE_FEATURES = (
    "employees", "annual_revenue", "account_age_days", "amount_to_revenue", "owner_closed_deals", "owner_win_rate",
    "owner_open_deals", "account_prior_deals", "account_closed_deals", "account_win_rate",
)


def profile_features(deals: DealRows, q_deal: np.ndarray, q_time: np.ndarray, amount: np.ndarray,
                     context: FeatureContext) -> dict[str, np.ndarray]:
    """Numeric profile and track-record features of each snapshot."""
    revenue = deals.revenue[q_deal]
    acc_created = deals.account_created[q_deal]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "employees": deals.employees[q_deal],
            "annual_revenue": revenue,
            "account_age_days": np.where(acc_created != NAT, (q_time - acc_created) / DAY_NS, np.nan),
            "amount_to_revenue": np.where(revenue > 0, amount / revenue, np.nan),
        }
    out.update(context.cross_deal_features(deals.ids[q_deal], deals.owner[q_deal], deals.account[q_deal], q_time))
    return out
