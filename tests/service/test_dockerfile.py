"""The container recipe: multi-stage, non-root, health-checked, running `dealscore serve`.

No Docker daemon is assumed in the test environment, so this reads the
Dockerfile as text; it fails when someone drops one of these properties.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_non_root_and_health_checked() -> None:
    ins = _instructions()
    stages = [rest for word, rest in ins if word == "FROM"]
    assert len(stages) >= 2 and any(" AS " in s.upper() for s in stages)
    assert any(word == "COPY" and rest.startswith("--from=") for word, rest in ins), "runtime copies from build"
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the final stage runs as a non-root user"
    [health] = [rest for word, rest in ins if word == "HEALTHCHECK"]
    assert "/healthz" in health
    [cmd] = [rest for word, rest in ins if word == "CMD"]
    assert re.search(r'"dealscore",\s*"serve"', cmd) and "0.0.0.0" in cmd
    ignore = (ROOT / ".dockerignore").read_text()
    assert "*" in ignore.splitlines() and "!src/" in ignore and "!service/" in ignore
