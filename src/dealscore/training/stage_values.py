"""What a deal's real stage and the customer's responsiveness are worth, learned from the training slice.

A next-best action is worth what it changes in the deal's *state*, not what the
win model associates with one more touchpoint: on a CRM, replies and meetings
come with deals that go well anyway, so re-scoring a deal with one more reply
credits every reply with the health of the deals that get them (measured against
the simulator's intervention oracle: a reply that moved nothing was valued at
+12 points, docs/scoring.md). The state a customer's response can change is

- the **real stage** (the response may be the step that completes a stage: the
  decision maker engaging in discovery, the demo in solution), and
- the **episode** (active, slow, stalled, quiet, or no reply yet) that
  :class:`dealscore.models.episodes.EpisodeModel` reads from the company's own
  touch pattern: a reply revives a quiet deal, which days of silence alone cannot
  tell from one merely between two meetings.

How long the customer has been silent and how many outbound touches in a row went
unanswered are counted too, as what the deal's state is priced among: they tell
how the customer has behaved so far, which one reply does not undo.

This module counts, over the training slice's snapshots, how often deals in each
(real stage, episode, silence bucket, chase bucket) went on to win: the real stage
is the training label (audited or inferred from the company's recording habits),
the episode the filter's point-in-time probabilities (each snapshot counts for
every episode by its probability), silence the point-in-time days since the
customer's last inbound touch, chase the point-in-time outbound touches since it.
Scoring reads the table through :class:`dealscore.scoring.stage_values.StageValues`.
It is stored in ``bundle.stage_stats["_stage_values"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dealscore.models.episodes import EPISODES
from dealscore.playbook import CHASE_BUCKETS, SILENCE_BUCKETS, chase_bucket, silence_bucket
from dealscore.training.episode_cells import count_by_episode


def learn_stage_values(real_stage: np.ndarray, days_since_inbound: np.ndarray, unanswered: np.ndarray,
                       won: np.ndarray, deal_ids: np.ndarray, stages: Sequence[str], episodes: np.ndarray
                       ) -> dict[str, Any]:
    """Snapshots, wins and distinct deals per (real stage, episode, silence, chase) of the rows given (the training
    slice); ``episodes`` holds each row's probability of each of :data:`~dealscore.models.episodes.EPISODES`.

    Rows without a real-stage label or an outcome are left out. A row counts for each
    episode by its probability (snapshots and wins are sums of those weights); a cell's
    deals are the distinct deals whose most likely episode it is. Counts are kept raw;
    :class:`~dealscore.scoring.stage_values.StageValues` smooths them when it reads them.
    """
    stage = pd.Series(np.asarray(real_stage, dtype=object))
    y = np.asarray(won, dtype=float)
    ok = stage.isin(list(stages)).to_numpy() & ~np.isnan(y)
    if not ok.any():
        return {"rows": []}
    table = count_by_episode(
        {"stage": stage.to_numpy()[ok],
         "silence": np.asarray(SILENCE_BUCKETS, dtype=object)[silence_bucket(np.asarray(days_since_inbound,
                                                                                     dtype=float)[ok])],
         "chase": np.asarray(CHASE_BUCKETS, dtype=object)[chase_bucket(np.asarray(unanswered, dtype=float)[ok])]},
        np.asarray(episodes, dtype=float)[ok], np.asarray(deal_ids, dtype=object)[ok], {"won": y[ok]})
    return {"episodes": list(EPISODES),
            "rows": [{"stage": s, "episode": e, "silence": b, "chase": c, "snapshots": float(x.weight),
                      "won": float(x.won), "deals": int(x.deals)} for (s, b, c, e), x in table.iterrows()]}
