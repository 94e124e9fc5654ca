"""The one data folder of an installation: MLflow's embedded store, the local model copy, the service's files.

``DEALSCORE_DATA_DIR`` when set (the service's ``Settings.data_dir`` reads the
same variable), else ``.dealscore`` in the working directory, which git ignores.
The tracking module and the service both derive their default paths from here,
so there is one model cache and one place to look.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "DEALSCORE_DATA_DIR"
DEFAULT_DATA_DIR = Path(".dealscore")


def data_dir() -> Path:
    """The data folder: ``$DEALSCORE_DATA_DIR``, else ``.dealscore`` (relative to the working directory)."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value) if value else DEFAULT_DATA_DIR


def data_dir_found(start: Path | None = None) -> Path:
    """The data folder as seen from ``start`` (default: the working directory), absolute: :func:`data_dir`, or
    the same relative folder one level up when only that one exists.

    A Jupyter kernel starts in the notebook's folder (``notebooks/``) while ``make demo`` writes ``.dealscore/``
    at the project root: the notebooks looked for it in the wrong place and failed on their first cell.
    """
    here = Path.cwd() if start is None else start
    folder = data_dir()
    if folder.is_absolute():
        return folder
    if not (here / folder).exists() and (here.parent / folder).exists():
        return (here.parent / folder).resolve()
    return (here / folder).resolve()


__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "data_dir", "data_dir_found"]
