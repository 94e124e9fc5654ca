"""The playbook YAML: the shipped one loads; broken ones are refused with a message naming the action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dealscore.errors import ConfigError
from dealscore.playbook import load_playbook


def test_shipped_playbook_covers_every_stage(taxonomy: Any) -> None:
    pb = load_playbook(taxonomy=taxonomy)
    assert set(pb["stages"]) == set(taxonomy.names)
    assert pb["any_stage"]
    codes = [a["code"] for acts in pb["stages"].values() for a in acts] + [a["code"] for a in pb["any_stage"]]
    assert len(codes) == len(set(codes)), "action codes are unique"


@pytest.mark.parametrize(("yaml_text", "match"), [
    ("stages:\n  closing:\n    - {code: a, text: b, touchpoint: {type: call}}\n", "not in the taxonomy"),
    ("stages:\n  discovery:\n    - {code: a, text: b}\n", "needs code, text and touchpoint.type"),
    ("stages:\n  discovery:\n    - {code: a, text: b, touchpoint: {type: fax}}\n", "'fax' is not an activity type"),
    ("stages:\n  discovery:\n    - {code: a, text: b, touchpoint: {type: call, direction: sideways}}\n",
     "inbound or outbound"),
    ("stages:\n  discovery:\n    - {code: a, text: b, touchpoint: {type: call, contact_role: ceo}}\n",
     "'ceo' is not one of"),
    ("stages:\n  discovery:\n    - {code: a, text: b, touchpoint: {type: call, when: later}}\n",
     r"unknown touchpoint field\(s\) \['when'\]"),
    ("stages: [\n", "not valid YAML"),
])
def test_broken_playbooks_are_refused(tmp_path: Path, taxonomy: Any, yaml_text: str, match: str) -> None:
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        load_playbook(path, taxonomy)
