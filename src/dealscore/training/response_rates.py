"""How often customers answered the reps' outreach, learned from the training slice.

A next-best action is an *attempt*: the rep reaches out, and the customer may or
may not take it up. What the attempt is worth depends on that chance, which the
history tells: every outbound touchpoint of a training deal is an attempt, and it
was answered when an inbound touchpoint followed within ``REPLY_WINDOW_DAYS``
(from the same role when the outreach went to a decision maker or a champion:
"the decision maker took the call"). Attempts are counted per *deals like this*:
the declared stage at the time, how long the customer had been silent
(:data:`dealscore.playbook.SILENCE_BUCKETS`) and the role reached out to. The table is stored in
``bundle.stage_stats["_response_rates"]``; scoring reads it through
:class:`dealscore.scoring.response.ResponseRates`.

Only deals of the training slice count, and only touches they had before they
closed, so nothing of the evaluation periods leaks into scoring them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory
from dealscore.playbook import SILENCE_BUCKETS, role_group, silence_bucket

REPLY_WINDOW_DAYS = 14.0


def learn_response_rates(history: DealHistory, train_deal_ids: pd.Index) -> dict[str, Any]:
    """Attempts and answers per (declared stage, silence bucket, role group) over the training deals."""
    acts = history.activities
    empty = {"window_days": REPLY_WINDOW_DAYS, "rows": []}
    if not len(acts) or "direction" not in acts.columns:
        return empty
    acts = acts[acts["deal_id"].isin(train_deal_ids) & acts["direction"].isin(["inbound", "outbound"])]
    if not len(acts):
        return empty
    role = acts["contact_role"] if "contact_role" in acts.columns else pd.Series(None, index=acts.index)
    a = pd.DataFrame({
        "deal_id": acts["deal_id"].astype(str).to_numpy(), "t": acts["occurred_at"].to_numpy("datetime64[ns]"),
        "inbound": (acts["direction"] == "inbound").to_numpy(),
        "role": np.array([role_group(r) for r in role.to_numpy(dtype=object)], dtype=object),
    })
    closed = history.deals.set_index("deal_id")["closed_at"]
    a["closed"] = a["deal_id"].map(closed).to_numpy("datetime64[ns]")
    a = a[a["t"] <= a["closed"]].sort_values("t", kind="stable")
    out = a[~a["inbound"]].reset_index(drop=True)
    inb = a[a["inbound"]]
    if not len(out):
        return empty
    # the customer's last inbound touch before each attempt (strictly before: a same-instant reply is an answer)
    last = pd.merge_asof(out[["deal_id", "t"]].reset_index(), inb[["deal_id", "t"]].rename(columns={"t": "t_in"}),
                         left_on="t", right_on="t_in", by="deal_id", direction="backward", allow_exact_matches=False)
    last = last.sort_values("index")["t_in"].to_numpy("datetime64[ns]")
    days = (out["t"].to_numpy("datetime64[ns]") - last) / np.timedelta64(1, "D")
    # an answer: the next inbound touch (any role; the same role for decision makers and champions)
    window = np.timedelta64(int(REPLY_WINDOW_DAYS * 86400), "s")
    answered = np.zeros(len(out), dtype=bool)
    for grp, by in (("any", ["deal_id"]), ("role", ["deal_id", "role"])):
        nxt = pd.merge_asof(out[[*by, "t"]].reset_index(), inb[[*by, "t"]].rename(columns={"t": "t_next"}),
                            left_on="t", right_on="t_next", by=by, direction="forward")
        nxt = nxt.sort_values("index")["t_next"].to_numpy("datetime64[ns]")
        hit = ~np.isnat(nxt) & (nxt - out["t"].to_numpy("datetime64[ns]") <= window)
        use = out["role"].isin(["decision_maker", "champion"]).to_numpy() == (grp == "role")
        answered |= hit & use
    # the declared stage at the attempt
    sh = history.stage_history[history.stage_history["deal_id"].isin(train_deal_ids)]
    st = pd.merge_asof(out[["deal_id", "t"]].reset_index(),
                       pd.DataFrame({"deal_id": sh["deal_id"].astype(str).to_numpy(),
                                     "t_s": sh["changed_at"].to_numpy("datetime64[ns]"),
                                     "stage": sh["stage"].to_numpy(dtype=object)}).sort_values("t_s"),
                       left_on="t", right_on="t_s", by="deal_id", direction="backward")
    stage = st.sort_values("index")["stage"].to_numpy(dtype=object)
    frame = pd.DataFrame({"stage": stage, "silence": np.asarray(SILENCE_BUCKETS, dtype=object)[silence_bucket(days)],
                          "role": out["role"].to_numpy(), "answered": answered, "deal_id": out["deal_id"].to_numpy()})
    frame = frame[pd.notna(frame["stage"])]
    g = frame.groupby(["stage", "silence", "role"], sort=True)
    table = pd.DataFrame({"attempts": g.size(), "answered": g["answered"].sum(), "deals": g["deal_id"].nunique()})
    rows = [{"stage": s, "silence": b, "role": r, "attempts": int(x.attempts), "answered": int(x.answered),
             "deals": int(x.deals)} for (s, b, r), x in table.iterrows()]
    return {"window_days": REPLY_WINDOW_DAYS, "rows": rows}
