"""Owning a state dir: a lock the kernel releases with its holder, however it dies.

`hyperhive up` and `hyperhive nats` hold `<state>/up.lock` (flock) for as long
as they run. A second one on the same state dir waits a moment for a dying
predecessor (a SIGKILL'd `up` whose lock the kernel is releasing), then refuses,
naming the holder. The lock file holds the holder's pid, for that message only:
the lock itself is the truth, not the pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from hyperhive.errors import ServerError

WAIT_FOR_PREDECESSOR = 5.0
POLL = 0.05


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text().strip() or "0")
        if pid:
            return f" (pid {pid})"
    return ""


@contextlib.contextmanager
def hold(path: Path, what: str, wait: float = WAIT_FOR_PREDECESSOR) -> Iterator[None]:
    """Hold the lock at `path` for the block, or raise `ServerError` saying who holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ServerError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ServerError(
                        f"{what} already runs for {path.parent}{_holder(path)}: "
                        "stop it first (one owner per state dir)"
                    ) from None
                time.sleep(POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
