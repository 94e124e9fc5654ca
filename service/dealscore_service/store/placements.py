"""Who works in which team now, as the score store knows it: the rule a team's by-owner forecast reads.

The creation model knows the owners and teams of the history it was fitted on; the
store learns of a move from the scores that carry it. So an owner's team now is
the team of their most recently scored open deal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def owner_teams(owners: Sequence[Any], teams: Sequence[Any], as_of: Any) -> dict[str, str]:
    """Each owner's team now per the score store's open deals (their owner, team and as-of time, one per deal).

    The team of the owner's most recently scored open deal; when several were scored at that time, the team
    most of them are in, then the first by name. A deal without an owner or a team says nothing. ``as_of``
    as :meth:`ScoreStore.forecast_inputs` reads it (a ``datetime64`` array, or datetimes or ISO text).
    """
    if isinstance(as_of, np.ndarray) and as_of.dtype.kind == "M":
        times = as_of.astype("datetime64[ns]").astype(np.int64)
    else:
        times = pd.to_datetime(pd.Series(list(as_of), dtype=object), utc=True, format="ISO8601").to_numpy(
            dtype="datetime64[ns]").astype(np.int64)
    owner, team = np.asarray(owners, dtype=object), np.asarray(teams, dtype=object)
    known = pd.notna(owner) & pd.notna(team)
    if not known.any():
        return {}
    o_code, o_names = pd.factorize(owner[known].astype(str), sort=True)
    t_code, t_names = pd.factorize(team[known].astype(str), sort=True)  # codes in name order
    t = times[known]
    newest = np.full(len(o_names), np.iinfo(np.int64).min)
    np.maximum.at(newest, o_code, t)
    at = t == newest[o_code]  # each owner's deals scored at their newest time
    pairs, n = np.unique(o_code[at].astype(np.int64) * len(t_names) + t_code[at], return_counts=True)
    po, pt = pairs // len(t_names), pairs % len(t_names)
    order = np.lexsort((pt, -n, po))  # by owner, most deals first, then team name
    first = order[np.r_[True, po[order][1:] != po[order][:-1]]]
    return {str(o_names[po[i]]): str(t_names[pt[i]]) for i in first}
