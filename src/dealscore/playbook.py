"""Next-best-action playbook: the execution actions of each stage, from YAML.

Kept beside the taxonomy (not inside scoring) because the trained bundle stores
the playbook it was evaluated with, and the models layer must not import scoring.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from dealscore.errors import ConfigError
from dealscore.taxonomy import StageTaxonomy

DEFAULT_PLAYBOOK_PATH = files("dealscore.config") / "playbook.yaml"


def load_playbook(path: str | Path | None = None, taxonomy: StageTaxonomy | None = None) -> dict[str, Any]:
    """Load and check a playbook: every stage key must be a configured stage, every action a touchpoint."""
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
    for stage, actions in [*stages.items(), ("any_stage", raw.get("any_stage") or [])]:
        for a in actions or []:
            if not isinstance(a, dict) or not {"code", "text", "touchpoint"} <= set(a) \
                    or not isinstance(a["touchpoint"], dict) or "type" not in a["touchpoint"]:
                raise ConfigError(
                    f"playbook action under {stage!r} needs code, text and touchpoint.type; got {a}"
                )
            if taxonomy is not None:
                _check_touchpoint(stage, a, taxonomy)
    return {"stages": stages, "any_stage": raw.get("any_stage") or []}


def _check_touchpoint(stage: str, action: dict[str, Any], taxonomy: StageTaxonomy) -> None:
    """The touchpoint an action adds must be one a history could hold, or re-scoring it would fail later."""
    tp = action["touchpoint"]
    where = f"playbook action {action['code']!r} under {stage!r}"
    if tp["type"] not in taxonomy.activity_types:
        raise ConfigError(f"{where}: touchpoint type {tp['type']!r} is not an activity type of the taxonomy "
                          f"{list(taxonomy.activity_types)}")
    if tp.get("direction") not in (None, "inbound", "outbound"):
        raise ConfigError(f"{where}: touchpoint direction must be inbound or outbound; got {tp['direction']!r}")
    if tp.get("contact_role") not in (None, *taxonomy.contact_roles):
        raise ConfigError(f"{where}: contact_role {tp['contact_role']!r} is not one of {list(taxonomy.contact_roles)}")
    unknown = sorted(set(tp) - {"type", "direction", "contact_role", "new_contact"})
    if unknown:
        raise ConfigError(f"{where}: unknown touchpoint field(s) {unknown}; use type, direction, contact_role, "
                          "new_contact")
