"""``dealscore serve`` refuses what it cannot do with a one-line error that says the fix."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli.conftest import Run, assert_clean_error


def test_serve_with_workers_on_a_port_in_use_names_it_and_the_fix(run: Run, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALSCORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEALSCORE_USE_REGISTRY", "false")
    # serve sets these in its own environment (for its workers); set here, they are undone after the test
    monkeypatch.setenv("DEALSCORE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, _, err = run("serve", "--port", port, "--workers", "2")
    assert_clean_error(code, err, f"127.0.0.1:{port}", "in use", "--port")
