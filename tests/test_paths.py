"""The data folder: the one setting tracking and the service share, and where a notebook finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealscore.paths import DATA_DIR_ENV, data_dir, data_dir_found


def test_the_data_folder_is_the_setting_else_dealscore_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert data_dir() == Path(".dealscore")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert data_dir() == tmp_path == data_dir_found(tmp_path / "anywhere")


def test_from_a_subfolder_the_projects_data_folder_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Jupyter kernel starts in notebooks/; make demo wrote .dealscore/ one level up."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    (tmp_path / ".dealscore").mkdir()
    (tmp_path / "notebooks").mkdir()
    assert data_dir_found(tmp_path / "notebooks") == (tmp_path / ".dealscore").resolve()
    assert data_dir_found(tmp_path) == (tmp_path / ".dealscore").resolve()
    (tmp_path / "notebooks" / ".dealscore").mkdir()  # one of its own wins
    assert data_dir_found(tmp_path / "notebooks") == (tmp_path / "notebooks" / ".dealscore").resolve()
