"""What a deal's real stage and the customer's responsiveness are worth, learned from the training slice.

A next-best action is worth what it changes in the deal's *state*, not what the
win model associates with one more touchpoint: on a CRM, replies and meetings
come with deals that go well anyway, so re-scoring a deal with one more reply
credits every reply with the health of the deals that get them (measured against
the simulator's intervention oracle: a reply that moved nothing was valued at
+12 points, docs/scoring.md). The state a customer's response can change is

- the **real stage** (the response may be the step that completes a stage: the
  decision maker engaging in discovery, the demo in solution), and
- how long the customer has been **silent**, and how many outbound touches in a
  row went unanswered (a reply ends both: a quiet deal revives).

This module counts, over the training slice's snapshots, how often deals in each
(real stage, silence bucket, chase bucket) went on to win: the real stage is the
training label (audited or inferred from the company's recording habits), silence
the point-in-time days since the customer's last inbound touch, chase the
point-in-time outbound touches since it. Scoring reads the
table through :class:`dealscore.scoring.stage_values.StageValues`. It is
stored in ``bundle.stage_stats["_stage_values"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dealscore.playbook import CHASE_BUCKETS, SILENCE_BUCKETS, chase_bucket, silence_bucket


def learn_stage_values(real_stage: np.ndarray, days_since_inbound: np.ndarray, unanswered: np.ndarray,
                       won: np.ndarray, deal_ids: np.ndarray, stages: Sequence[str]) -> dict[str, Any]:
    """Snapshots, wins and distinct deals per (real stage, silence, chase) of the rows given (the training slice).

    Rows without a real-stage label or an outcome are left out. Counts are kept raw;
    :class:`~dealscore.scoring.stage_values.StageValues` smooths them when it reads them.
    """
    stage = pd.Series(np.asarray(real_stage, dtype=object))
    y = np.asarray(won, dtype=float)
    ok = stage.isin(list(stages)).to_numpy() & ~np.isnan(y)
    if not ok.any():
        return {"rows": []}
    frame = pd.DataFrame({
        "stage": stage.to_numpy()[ok],
        "silence": np.asarray(SILENCE_BUCKETS, dtype=object)[silence_bucket(np.asarray(days_since_inbound,
                                                                                        dtype=float)[ok])],
        "chase": np.asarray(CHASE_BUCKETS, dtype=object)[chase_bucket(np.asarray(unanswered, dtype=float)[ok])],
        "won": y[ok], "deal_id": np.asarray(deal_ids, dtype=object)[ok],
    })
    g = frame.groupby(["stage", "silence", "chase"], sort=True)
    table = pd.DataFrame({"snapshots": g.size(), "won": g["won"].sum(), "deals": g["deal_id"].nunique()})
    return {"rows": [{"stage": s, "silence": b, "chase": c, "snapshots": int(x.snapshots), "won": float(x.won),
                      "deals": int(x.deals)} for (s, b, c), x in table.iterrows()]}
