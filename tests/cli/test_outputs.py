"""Output files: tried before the work, written whole or not at all, OSError as one clean error."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealscore.cli.outputs import check_output_file, write_atomically
from dealscore.errors import DataValidationError


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "scores.csv"
    target.write_text("old, whole\n")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("new, hal")
        raise OSError(28, "No space left on device", str(tmp))

    with pytest.raises(DataValidationError, match=r"--out .*scores\.csv: cannot write there: No space left"):
        write_atomically(target, "--out", half_then_fail)
    assert target.read_text() == "old, whole\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_a_write_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "new" / "scores.csv"

    def write(tmp: Path) -> None:
        tmp.write_text("a,b\n")

    write_atomically(target, "--out", write)
    assert target.read_text() == "a,b\n"
    assert [p.name for p in target.parent.iterdir()] == ["scores.csv"]


def test_check_creates_nothing(tmp_path: Path) -> None:
    check_output_file(tmp_path / "x" / "y" / "r.json", "--report-json")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(DataValidationError, match="cannot write there"):
        check_output_file(tmp_path / "f" / "r.json", "--report-json")
