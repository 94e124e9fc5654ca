"""How often customers answered the reps' outreach, learned from the training slice.

A next-best action is an *attempt*: the rep reaches out, and the customer may or
may not take it up. What the attempt is worth depends on that chance, which the
history tells: every outbound touchpoint of a training deal is an attempt, and it
was answered when an inbound touchpoint followed within ``REPLY_WINDOW_DAYS``
(from the same role when the outreach went to a decision maker or a champion:
"the decision maker took the call"). Before a decision maker or champion has
ever answered in a deal, every attempt counts for that role's *new* cell: how
often the role engaged for the first time within the window, in deals like this.
Attempts are counted per *deals like this*:
the declared stage the CRM showed at the time (a stage change counts from when it was entered,
as the features read it), the deal's episode just before the attempt (active,
slow, stalled, quiet or no reply yet, as the episode model reads the touch pattern
known then: :func:`dealscore.models.episodes.weights_at`; each attempt counts for
every episode by its probability), the role reached out to and whether that role
had engaged before (a reply counts once it was logged). The episode is what the chance of an answer turns on: a
customer who went quiet answers far less often than one in an active spell, and
days of silence alone cannot tell a quiet deal from one between two meetings.
The table is stored in ``bundle.stage_stats["_response_rates"]``; scoring reads it
through :class:`dealscore.scoring.response.ResponseRates`.

Only deals of the training slice count, and only touches they had before they
closed, so nothing of the evaluation periods leaks into scoring them. A long
history's attempts are sampled down to ``MAX_ATTEMPTS`` (a fixed seed): the
table is a set of rates, which that many attempts pin down.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory, known_time
from dealscore.models.episodes import EPISODES, EpisodeModel, weights_at
from dealscore.playbook import role_group
from dealscore.training.episode_cells import count_by_episode

REPLY_WINDOW_DAYS = 14.0
#: attempts read at most (sampled with a fixed seed beyond): each needs the episode filter at its time
MAX_ATTEMPTS = 200_000


def learn_response_rates(history: DealHistory, train_deal_ids: pd.Index, episodes: EpisodeModel | None = None,
                         *, seed: int = 0) -> dict[str, Any]:
    """Attempts and answers per (declared stage, episode, role group, first engagement) over the training deals.

    ``episodes``: the company's episode model (None: every attempt counts as "before a reply", so the
    table is one of stage, role and first engagement). Attempts and answers are sums of episode weights;
    a cell's deals are the distinct deals of the attempts whose most likely episode it is.
    """
    acts = history.activities
    empty = {"window_days": REPLY_WINDOW_DAYS, "episodes": list(EPISODES), "rows": []}
    if not len(acts) or "direction" not in acts.columns:
        return empty
    acts = acts[acts["deal_id"].isin(train_deal_ids) & acts["direction"].isin(["inbound", "outbound"])]
    if not len(acts):
        return empty
    role = acts["contact_role"] if "contact_role" in acts.columns else pd.Series(None, index=acts.index)
    a = pd.DataFrame({
        "deal_id": acts["deal_id"].astype(str).to_numpy(), "t": acts["occurred_at"].to_numpy("datetime64[ns]"),
        # when the CRM showed the touch: what an attempt's cell ("had this role answered?") may read
        "seen": known_time(acts, "occurred_at").to_numpy("datetime64[ns]"),
        "inbound": (acts["direction"] == "inbound").to_numpy(),
        "role": np.array([role_group(r) for r in role.to_numpy(dtype=object)], dtype=object),
    })
    closed = history.deals.set_index("deal_id")["closed_at"]
    a["closed"] = a["deal_id"].map(closed).to_numpy("datetime64[ns]")
    a = a[a["t"] <= a["closed"]].sort_values("t", kind="stable")
    inb = a[a["inbound"]]
    out = a[~a["inbound"]]
    if len(out) > MAX_ATTEMPTS:
        out = out.loc[np.sort(np.random.default_rng(seed).choice(out.index.to_numpy(), MAX_ATTEMPTS,
                                                                  replace=False))].sort_values("t", kind="stable")
    out = out.reset_index(drop=True)
    if not len(out):
        return empty
    # an answer: the next inbound touch within the window (any role; the same role for decision makers and
    # champions). An attempt made before its role ever answered in the deal counts for that role's *new* cell
    # ("the decision maker engages for the first time"), whichever contact the rep wrote to: that is how often
    # such a first engagement follows outreach in deals like this, including the deals that have nobody in
    # that role to engage.
    window = np.timedelta64(int(REPLY_WINDOW_DAYS * 86400), "s")
    t_out = out["t"].to_numpy("datetime64[ns]")
    keys = out[["deal_id", "t"]].reset_index()
    parts = [frame_part(out, _answered(keys, inb[["deal_id", "t"]], ["deal_id"], t_out, window),
                        out["role"].to_numpy(), np.zeros(len(out), dtype=bool))]
    parts[0] = parts[0][~out["role"].isin(["decision_maker", "champion"]).to_numpy()]
    for role in ("decision_maker", "champion"):
        mine = inb[inb["role"] == role]
        seen_before = _seen_before(keys, mine[["deal_id", "seen"]].rename(columns={"seen": "t"}), len(out))
        answered = _answered(keys, mine[["deal_id", "t"]], ["deal_id"], t_out, window)
        # known: the rep wrote to this role after it had answered; new: the role never answered before
        known = (out["role"] == role).to_numpy() & seen_before
        parts.append(frame_part(out, answered, np.full(len(out), role, dtype=object), ~seen_before)[
            known | ~seen_before])
    # the declared stage the CRM showed at the attempt (the last stage row entered by then, as the features read
    # it: a back-dated change counts from when it was entered), and the episode just before it (the touches known
    # then)
    sh = history.stage_history[history.stage_history["deal_id"].isin(train_deal_ids)]
    shown = pd.DataFrame({"deal_id": sh["deal_id"].astype(str).to_numpy(),
                          "t_s": known_time(sh, "changed_at").to_numpy("datetime64[ns]"),
                          "changed": sh["changed_at"].to_numpy("datetime64[ns]"),
                          "stage": sh["stage"].to_numpy(dtype=object)})
    st = pd.merge_asof(keys, shown.sort_values(["t_s", "changed"], kind="stable").drop(columns="changed"),
                       left_on="t", right_on="t_s", by="deal_id", direction="backward")
    stage = st.sort_values("index")["stage"].to_numpy(dtype=object)
    weight = weights_at(episodes, history, out["deal_id"].to_numpy(dtype=object), t_out - np.timedelta64(1, "ns"))
    frame = pd.concat([p.assign(stage=stage[p.index.to_numpy()], row=p.index.to_numpy()) for p in parts],
                      ignore_index=True)
    frame = frame[pd.notna(frame["stage"])]
    table = count_by_episode({"stage": frame["stage"].to_numpy(dtype=object),
                              "role": frame["role"].to_numpy(dtype=object), "new": frame["new"].to_numpy()},
                             weight[frame["row"].to_numpy()], frame["deal_id"].to_numpy(dtype=object),
                             {"answered": frame["answered"].to_numpy(dtype=float)})
    rows = [{"stage": s, "episode": e, "role": r, "new": bool(n), "attempts": float(x.weight),
             "answered": float(x.answered), "deals": int(x.deals)} for (s, r, n, e), x in table.iterrows()]
    return {"window_days": REPLY_WINDOW_DAYS, "episodes": list(EPISODES), "rows": rows}


def frame_part(out: pd.DataFrame, answered: np.ndarray, role: np.ndarray, new: np.ndarray) -> pd.DataFrame:
    """Attempts (indexed like ``out``) with their answer, the role they count for and whether it was new."""
    return pd.DataFrame({"deal_id": out["deal_id"].to_numpy(), "role": role, "new": new, "answered": answered},
                        index=out.index)


def _answered(keys: pd.DataFrame, inbound: pd.DataFrame, by: list[str], t_out: np.ndarray,
              window: np.timedelta64) -> np.ndarray:
    """Whether an inbound touch of ``inbound`` followed each attempt within the window."""
    if not len(inbound):
        return np.zeros(len(keys), dtype=bool)
    nxt = pd.merge_asof(keys, inbound.rename(columns={"t": "t_next"}).sort_values("t_next"), left_on="t",
                        right_on="t_next", by=by, direction="forward")
    nxt = nxt.sort_values("index")["t_next"].to_numpy("datetime64[ns]")
    return ~np.isnat(nxt) & (nxt - t_out <= window)


def _seen_before(keys: pd.DataFrame, inbound: pd.DataFrame, n: int) -> np.ndarray:
    """Whether an inbound touch of ``inbound`` was known (its ``t``: when the CRM showed it) strictly before each
    attempt in its deal."""
    if not len(inbound):
        return np.zeros(n, dtype=bool)
    prev = pd.merge_asof(keys, inbound.rename(columns={"t": "t_prev"}).sort_values("t_prev"), left_on="t",
                         right_on="t_prev", by="deal_id", direction="backward", allow_exact_matches=False)
    return ~np.isnat(prev.sort_values("index")["t_prev"].to_numpy("datetime64[ns]"))
