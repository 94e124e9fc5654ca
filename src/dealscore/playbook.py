"""Next-best-action playbook: the execution actions of each stage, from YAML.

Kept beside the taxonomy (not inside scoring) because the trained bundle stores
the playbook it was evaluated with, and the models layer must not import scoring.

An action is an *attempt* (the rep's outbound touchpoint) that the customer may
take up (the *response*, an inbound touchpoint). ``repeat: false`` marks actions
that happen once per deal: ``done_when`` names the 0/1 features saying it already
happened and ``follow_up`` the action suggested instead. The older format with a
single ``touchpoint`` still loads: it is read as the response, and the attempt is
an outbound e-mail (or the same document, for proposals and contracts) to the
same role. :func:`load_playbook` returns the normalised form.

The outreach buckets ("deals like this": how long the customer has been silent,
which role is reached) live here too, because training learns the response rates
by them and scoring looks them up by them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dealscore.errors import ConfigError
from dealscore.taxonomy import StageTaxonomy

DEFAULT_PLAYBOOK_PATH = files("dealscore.config") / "playbook.yaml"
TOUCH_FIELDS = {"type", "direction", "contact_role", "new_contact"}
ACTION_FIELDS = {"code", "text", "touchpoint", "attempt", "response", "response_text", "repeat", "done_when",
                 "follow_up"}
#: touch types a rep sends as themselves (the attempt of an old-format action is that document)
DOCUMENT_TYPES = ("proposal", "contract", "email")

#: upper edges (days since the customer's last inbound touch) of the silence buckets; "never" when none yet
SILENCE_EDGES = (7.0, 30.0)
SILENCE_BUCKETS = ("never", "under_7d", "7_to_30d", "over_30d")


def silence_bucket(days_since_inbound: np.ndarray) -> np.ndarray:
    """Bucket index of days since the customer's last inbound touch (NaN: the customer never answered)."""
    d = np.asarray(days_since_inbound, dtype=float)
    out = 1 + np.searchsorted(np.asarray(SILENCE_EDGES), np.nan_to_num(d, nan=0.0), side="right")
    return np.where(np.isnan(d), 0, out)


#: lower edges of the chase buckets (outbound touches in a row without a customer reply): 0, 1, 2–3, 4–6, 7–11, 12+
CHASE_EDGES = (1.0, 2.0, 4.0, 7.0, 12.0)
CHASE_BUCKETS = ("none", "1", "2_to_3", "4_to_6", "7_to_11", "12_plus")


def chase_bucket(unanswered: np.ndarray) -> np.ndarray:
    """Bucket index of the outbound touches in a row without a customer reply (NaN counts as none)."""
    u = np.nan_to_num(np.asarray(unanswered, dtype=float), nan=0.0)
    return np.searchsorted(np.asarray(CHASE_EDGES), u, side="right")


def role_group(role: Any) -> str:
    """The role groups response rates are kept by: decision maker, champion, anyone else."""
    return role if role in ("decision_maker", "champion") else "other"


def load_playbook(path: str | Path | None = None, taxonomy: StageTaxonomy | None = None) -> dict[str, Any]:
    """Load, check and normalise a playbook (every action gets ``attempt`` and ``response``)."""
    text = DEFAULT_PLAYBOOK_PATH.read_text(encoding="utf-8") if path is None else Path(path).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"playbook is not valid YAML: {exc}") from exc
    stages = raw.get("stages") or {}
    if taxonomy is not None:
        unknown = sorted(set(stages) - set(taxonomy.names))
        if unknown:
            raise ConfigError(
                f"playbook names stages {unknown} that are not in the taxonomy {taxonomy.names}; "
                "rename them or add the stages to the taxonomy YAML"
            )
    out = {stage: [normalise_action(a, stage, taxonomy) for a in actions or []] for stage, actions in stages.items()}
    return {"stages": out, "any_stage": [normalise_action(a, "any_stage", taxonomy)
                                          for a in raw.get("any_stage") or []]}


def normalise_action(a: Any, stage: str, taxonomy: StageTaxonomy | None = None, *, nested: bool = False
                     ) -> dict[str, Any]:
    """One action in the normalised form, checked (see the module docstring for the old format)."""
    ok = isinstance(a, dict) and {"code", "text"} <= set(a) and (
        (isinstance(a.get("touchpoint"), dict) and "type" in a["touchpoint"])
        or (isinstance(a.get("response"), dict) and "type" in a["response"]))
    if not ok:
        raise ConfigError(f"playbook action under {stage!r} needs code, text and touchpoint.type (or attempt and "
                          f"response with a type each); got {a}")
    where = f"playbook action {a['code']!r} under {stage!r}"
    unknown = sorted(set(a) - ACTION_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; use {sorted(ACTION_FIELDS)}")
    response = dict(a.get("response") or a["touchpoint"])
    attempt = dict(a.get("attempt") or {
        "type": response["type"] if response["type"] in DOCUMENT_TYPES else "email", "direction": "outbound",
        **({"contact_role": response["contact_role"]} if response.get("contact_role") else {}),
        **({"new_contact": True} if response.get("new_contact") else {})})
    if "type" not in attempt:
        raise ConfigError(f"{where}: attempt needs a type")
    if attempt.get("direction", "outbound") != "outbound":
        raise ConfigError(f"{where}: the attempt is the rep's touchpoint, so its direction must be outbound; got "
                          f"{attempt.get('direction')!r}")
    attempt["direction"] = "outbound"
    for tp in (attempt, response):
        _check_touchpoint(where, tp, taxonomy)
    repeat = bool(a.get("repeat", True))
    done_when = a.get("done_when") or []
    if isinstance(done_when, str):
        done_when = [done_when]
    if not repeat and not done_when:
        raise ConfigError(f"{where}: repeat: false needs done_when, the feature(s) saying it already happened "
                          "(e.g. [has_proposal])")
    follow = a.get("follow_up")
    if follow is not None and (nested or repeat):
        raise ConfigError(f"{where}: only a once-only action (repeat: false) has a follow_up, and a follow_up "
                          "has none of its own")
    return {
        "code": str(a["code"]), "text": str(a["text"]), "attempt": attempt, "response": response,
        "response_text": str(a.get("response_text") or "the customer takes it up"), "repeat": repeat,
        "done_when": [str(x) for x in done_when],
        "follow_up": None if follow is None else normalise_action(follow, stage, taxonomy, nested=True),
    }


def _check_touchpoint(where: str, tp: dict[str, Any], taxonomy: StageTaxonomy | None) -> None:
    """The touchpoint an action adds must be one a history could hold, or re-scoring it would fail later."""
    if tp.get("direction") not in (None, "inbound", "outbound"):
        raise ConfigError(f"{where}: touchpoint direction must be inbound or outbound; got {tp['direction']!r}")
    unknown = sorted(set(tp) - TOUCH_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown touchpoint field(s) {unknown}; use type, direction, contact_role, "
                          "new_contact")
    if taxonomy is None:
        return
    if tp["type"] not in taxonomy.activity_types:
        raise ConfigError(f"{where}: touchpoint type {tp['type']!r} is not an activity type of the taxonomy "
                          f"{list(taxonomy.activity_types)}")
    if tp.get("contact_role") not in (None, *taxonomy.contact_roles):
        raise ConfigError(f"{where}: contact_role {tp['contact_role']!r} is not one of {list(taxonomy.contact_roles)}")
