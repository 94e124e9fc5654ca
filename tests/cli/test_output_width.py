"""Piped or logged CLI output keeps its lines whole: ids and commands can be copied from a log."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from rich.console import Console

from dealscore.cli import PIPE_WIDTH
from dealscore_service.cli import demo

_PROBE = "from dealscore.cli import console, err_console; print(console.width, err_console.width)"


def _widths(**env: str) -> list[int]:
    base = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env={**base, **env},
                          check=True)
    return [int(w) for w in proc.stdout.split()]


def test_piped_output_is_wide_and_columns_still_decides() -> None:
    assert _widths() == [PIPE_WIDTH, PIPE_WIDTH]
    assert _widths(COLUMNS="123") == [123, 123]


@pytest.mark.parametrize("width", [PIPE_WIDTH, 80])
def test_where_to_look_lines_are_copyable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, width: int) -> None:
    """In an 80-column terminal the panel broke the curl line in two: it could not be pasted in one piece."""
    out = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setattr(demo, "console", out)
    key = "ds_" + "k" * 40
    demo._print_where_to_look(tmp_path / "a-rather-long-work-directory-name" / "demo", "http://127.0.0.1:8765", key)
    text = out.export_text()
    curl = f"curl -H 'X-API-Key: {key}' 'http://127.0.0.1:8765/v1/deals/at-risk?limit=5'"
    lines = [ln for ln in text.splitlines() if "Try it:" in ln]
    assert len(lines) == 1 and lines[0].rstrip().endswith(curl)
    assert "│" not in text  # no side border to copy along with a command


def test_pyproject_uses_the_spdx_license_string() -> None:
    meta = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "Apache-2.0"
