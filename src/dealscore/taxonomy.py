"""Stage taxonomy and activity vocabulary, loaded from YAML.

Every CRM names its stages differently; the taxonomy is the single place where
a user renames, adds or drops stages or maps their CRM's names onto ours. The
rest of the code only ever sees canonical names and their order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from dealscore.errors import ConfigError

DEFAULT_TAXONOMY_PATH = files("dealscore.config") / "taxonomy.yaml"


@dataclass(frozen=True)
class Stage:
    """One open stage: canonical name, display label, order (1-based), evidence."""

    name: str
    label: str
    order: int
    aliases: tuple[str, ...] = ()
    key_touchpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageTaxonomy:
    """Ordered open stages plus the activity types and contact roles a history may use."""

    stages: tuple[Stage, ...]
    activity_types: tuple[str, ...]
    contact_roles: tuple[str, ...] = ("decision_maker", "champion", "influencer", "user", "other")
    activity_aliases: dict[str, str] = field(default_factory=dict)
    closed_won_aliases: tuple[str, ...] = ("won",)
    closed_lost_aliases: tuple[str, ...] = ("lost",)
    #: other spellings of inbound/outbound ("in", "out", "incoming", "sent"), lower-case
    direction_aliases: dict[str, str] = field(default_factory=dict)
    #: other spellings of the contact roles ("economic buyer" → decision_maker), lower-case
    role_aliases: dict[str, str] = field(default_factory=dict)

    def direction_lookup(self) -> dict[str, str]:
        """Every accepted spelling of a direction (lower-case) → inbound / outbound."""
        return {"inbound": "inbound", "outbound": "outbound", **self.direction_aliases}

    def role_lookup(self) -> dict[str, str]:
        """Every accepted spelling of a contact role (lower-case) → the configured role."""
        return {r: r for r in self.contact_roles} | self.role_aliases

    @property
    def names(self) -> list[str]:
        """Canonical stage names in pipeline order."""
        return [s.name for s in self.stages]

    def order_of(self, name: str) -> int:
        """1-based order of a canonical stage name."""
        for s in self.stages:
            if s.name == name:
                return s.order
        raise ConfigError(f"unknown stage {name!r}; configured stages are {self.names}")

    def stage_lookup(self) -> dict[str, str]:
        """Map every accepted spelling (canonical, label, alias; lower-cased) to the canonical name."""
        out: dict[str, str] = {}
        for s in self.stages:
            for alias in (s.name, s.label, *s.aliases):
                out[alias.strip().lower()] = s.name
        return out

    def canonical_stage(self, raw: str) -> str | None:
        """Canonical name for a CRM stage spelling, or ``None`` when it is not configured."""
        return self.stage_lookup().get(str(raw).strip().lower())

    def canonical_activity(self, raw: str) -> str | None:
        """Canonical activity type for a CRM spelling, or ``None`` when unknown."""
        key = str(raw).strip().lower()
        if key in self.activity_types:
            return key
        return self.activity_aliases.get(key)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StageTaxonomy:
        """Build from the YAML structure, checking it is usable."""
        try:
            stages = tuple(
                Stage(
                    name=str(s["name"]),
                    label=str(s.get("label", s["name"])),
                    order=i + 1,
                    aliases=tuple(str(a) for a in s.get("aliases", [])),
                    key_touchpoints=tuple(str(k) for k in s.get("key_touchpoints", [])),
                )
                for i, s in enumerate(raw["stages"])
            )
            types = tuple(str(t) for t in raw["activity_types"])
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                f"taxonomy config is missing {exc}; it needs 'stages' (each with 'name') "
                "and 'activity_types'. Start from the shipped dealscore/config/taxonomy.yaml"
            ) from exc
        if len(stages) < 2:
            raise ConfigError("taxonomy config needs at least two stages")
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"taxonomy config repeats a stage name: {names}")
        return cls(
            stages=stages,
            activity_types=types,
            contact_roles=tuple(raw.get("contact_roles", cls.contact_roles)),
            activity_aliases={str(k).lower(): str(v) for k, v in raw.get("activity_aliases", {}).items()},
            closed_won_aliases=tuple(str(a).lower() for a in raw.get("closed_won_aliases", ["won"])),
            closed_lost_aliases=tuple(str(a).lower() for a in raw.get("closed_lost_aliases", ["lost"])),
            direction_aliases={str(k).strip().lower(): str(v) for k, v in (raw.get("direction_aliases") or {}).items()},
            role_aliases={str(k).strip().lower(): str(v) for k, v in (raw.get("role_aliases") or {}).items()},
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> StageTaxonomy:
        """Load a taxonomy YAML; ``None`` gives the shipped DESIGN §2 defaults."""
        if path is None:
            text = DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8")
        else:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"taxonomy file {p} does not exist")
            text = p.read_text(encoding="utf-8")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"taxonomy file is not valid YAML: {exc}") from exc
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        """Round-trippable form, stored inside the model bundle."""
        return {
            "stages": [
                {
                    "name": s.name,
                    "label": s.label,
                    "aliases": list(s.aliases),
                    "key_touchpoints": list(s.key_touchpoints),
                }
                for s in self.stages
            ],
            "activity_types": list(self.activity_types),
            "contact_roles": list(self.contact_roles),
            "activity_aliases": dict(self.activity_aliases),
            "closed_won_aliases": list(self.closed_won_aliases),
            "closed_lost_aliases": list(self.closed_lost_aliases),
            "direction_aliases": dict(self.direction_aliases),
            "role_aliases": dict(self.role_aliases),
        }


def default_taxonomy() -> StageTaxonomy:
    """The shipped taxonomy (cached by callers that need it often)."""
    return StageTaxonomy.load()
