"""The in-process ``dealscore`` runner and the clean-error check every CLI test uses."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from dealscore.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``dealscore ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def _run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["dealscore", *args])
        with pytest.raises(SystemExit) as e:
            main()
        out = capsys.readouterr()
        code = e.value.code if isinstance(e.value.code, int) else 1
        return code, out.out, out.err

    return _run


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    """Non-zero exit, one readable message naming what is wrong, no traceback."""
    assert code != 0
    assert "Traceback" not in err
    assert err.startswith("error:")
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    assert "Fix:" in err
