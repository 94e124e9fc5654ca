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


__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "data_dir"]
