"""One owner per run folder: the training process holds an exclusive lock on RUN_DIR/.lock while it trains.

The lock is an OS file lock (fcntl.flock on POSIX, msvcrt.locking on Windows), so the OS drops it when the owner
exits, however it exits: a crash or SIGKILL never leaves a folder stuck.  The file holds the owner's pid, for the
message a second trainer gets (`RunLocked`, a UserError that leaves the folder untouched) and for `owner()`, which
the job manager asks before it resumes a job.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from engine.errors import UserError

from . import runfiles

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class RunLocked(UserError):
    """Another process trains in this run folder; nothing was written."""

    mark_failed = False  # the folder belongs to the other process: its status.json is not ours to touch


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


class RunLock:
    """`with RunLock(out):` holds RUN_DIR/.lock (the folder is created if missing) or raises RunLocked."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.path = self.out / runfiles.LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for _ in range(5):  # owner() probes the lock for a moment: do not mistake that for an owner
            if _try_lock(fd):
                break
            time.sleep(0.05)
        else:
            os.close(fd)
            pid = _read_pid(self.path)
            raise RunLocked(f"{self.out} is being trained by another process"
                            + (f" (pid {pid})" if pid else "")
                            + "; stop it (or wait for it to finish) before training in this folder")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                _unlock(self.fd)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def owner(out: str | os.PathLike) -> int | None:
    """The pid of the process that holds the run folder's lock (0 if it wrote none yet), or None when free."""
    path = Path(out) / runfiles.LOCK_FILE
    if not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        if _try_lock(fd):
            _unlock(fd)
            return None
        return _read_pid(path) or 0
    finally:
        os.close(fd)
