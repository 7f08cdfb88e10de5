"""Writes that matter: whole-file replacement by rename, and durable appends.

A write that fails (disk full, a folder or a read-only file where the file goes) raises
`WriteError`, one line naming the file, so the CLI reports it without a traceback.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from memory.errors import WriteError


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text``: readers see the old file or the new one, never half."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise _write_error(path, error) from None
        raise


def append_text_durable(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` in one write and fsync it, so a finished call survives a crash."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise _write_error(path, error) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_error(path: Path, error: OSError) -> WriteError:
    reason = error.strerror or str(error)
    return WriteError(
        f"{path}: cannot write it ({reason}); nothing after this was written: "
        "free the space or move what is in the way, then start ucbx again"
    )
