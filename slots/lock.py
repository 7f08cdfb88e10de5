"""One driver per exploration folder: an exclusive lock on `folder/.ucbx.lock`.

The lock is an `flock` on the file, so the kernel releases it when the holder dies
(even by `kill -9`): a stale lock never blocks a restart. The file holds the
holder's pid, which a refused contender names in its message. A second holder is
refused at once, never made to wait.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from memory.errors import UcbxError

LOCK_NAME = ".ucbx.lock"


class FolderLock:
    """Context manager holding the folder's lock; `UcbxError` at once if another process has it."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UcbxError(
                f"{self.path.parent} is locked by pid {holder} (another ucbx run or step); "
                "stop that process or wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
