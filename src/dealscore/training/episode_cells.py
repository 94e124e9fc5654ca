"""Counting training rows per cell when one of the cell's keys is a probability: the deal's episode.

The response rates and the state values both count rows (attempts, snapshots) per
cell of a table one of whose keys is the episode (active, slow, stalled, quiet, no
reply yet), which the episode filter gives as probabilities, not a label. Each row
counts for every episode by its probability, so the counts are sums of weights and
no row is forced into an episode the filter is unsure of; a cell's *deals* (how
many past deals back it, which the scorer shrinks thin evidence by) are the distinct
deals of the rows whose most likely episode it is, so each deal counts once per
cell of its own keys.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from dealscore.models.episodes import EPISODES


def count_by_episode(keys: Mapping[str, np.ndarray], episodes: np.ndarray, deal_ids: np.ndarray,
                     measures: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per cell (``keys`` then ``"episode"``): ``"weight"`` (the rows' summed episode probabilities), each measure's
    weighted sum, and ``"deals"``; one row per cell that any row has weight in, sorted by the cell's keys."""
    w = np.asarray(episodes, dtype=float)
    n, k = w.shape
    # keys as integer codes (each key's values factorised on the n rows, not the n × episodes long form)
    coded = {name: pd.factorize(np.asarray(v, dtype=object), sort=True, use_na_sentinel=False)
             for name, v in keys.items()}
    long = pd.DataFrame({
        **{name: np.repeat(codes, k) for name, (codes, _) in coded.items()},
        "episode": np.tile(np.arange(k), n),
        "weight": w.ravel(),
        **{name: (w * np.asarray(v, dtype=float)[:, None]).ravel() for name, v in measures.items()},
        "deal": np.repeat(pd.factorize(np.asarray(deal_ids, dtype=object))[0], k),
        "likeliest": (np.arange(k)[None, :] == w.argmax(1)[:, None]).ravel(),
    })
    long = long[long["weight"] > 0]
    cells = [*keys, "episode"]
    table = long.groupby(cells, sort=True)[["weight", *measures]].sum()
    table["deals"] = long[long["likeliest"]].groupby(cells)["deal"].nunique()
    table["deals"] = table["deals"].fillna(0).astype(int)
    labels = [uniques for _, uniques in coded.values()]
    table.index = pd.MultiIndex.from_arrays(
        [*(np.asarray(u, dtype=object)[table.index.get_level_values(i)] for i, u in enumerate(labels)),
         np.asarray(EPISODES, dtype=object)[table.index.get_level_values(len(labels))]], names=cells)
    return table
