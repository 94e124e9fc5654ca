"""Output files of the commands: checked before the work, written whole or not at all.

A command that trains for minutes or scores every open deal must not find out at
the end that it cannot write its result: :func:`check_output_file` tries the
target first, so a bad path costs nothing. :func:`write_atomically` writes into
a temporary file beside the target and renames it into place, so an interrupted
or failed write never leaves half a file where an earlier, good one was. Every
``OSError`` becomes a :class:`~dealscore.errors.DataValidationError` naming the
option and the path, which the CLI shows as one line and exit 2.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from dealscore.errors import DataValidationError


def output_error(option: str, path: Path, exc: OSError, note: str = "") -> DataValidationError:
    """The clean error for an output that cannot be written (``note``: what was done before it failed)."""
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return DataValidationError(
        f"{option} {path}: cannot write there: {reason}{where}{note}",
        fix=f"pass a {option} file in a folder you can write to",
    )


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, outermost first."""
    missing: list[Path] = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


def check_output_file(path: Path, option: str) -> None:
    """Refuse ``path`` as an output file unless a file can be created there; leaves nothing behind.

    A test write, not ``os.access``: permission bits do not tell about a read-only
    mount, ``/proc`` or a file standing where a folder is needed, nor anything at
    all when running as root.
    """
    if path.is_dir():
        raise DataValidationError(f"{option} {path} is a folder", fix=f"pass a file name for {option}")
    parent = path.absolute().parent
    created = _missing_folders(parent)
    try:
        for folder in created:
            folder.mkdir()
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", suffix=".check"):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied", str(path))
    except OSError as exc:
        raise output_error(option, path, exc) from exc
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()


def write_atomically(path: Path, option: str, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it into place.

    The rename is atomic on one file system, so ``path`` holds either its old
    content or the whole new one, never a partial file. The temporary name is made
    up rather than created (``mkstemp`` would leave the output readable by its
    owner only); ``write`` creates it.
    """
    tmp = path.absolute().parent / f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise output_error(option, path, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
