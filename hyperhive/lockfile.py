"""Owning a state dir: a lock the kernel releases with its holder, however it dies.

`hyperhive up` and `hyperhive nats` hold `<state>/up.lock` (flock) for as long
as they run. A second one on the same state dir is refused at once, naming
the holder, when the holder is a live process; it waits a moment (up to
`WAIT_FOR_PREDECESSOR`) only for a dying predecessor (a SIGKILL'd `up` whose
lock the kernel is releasing) or a holder that has not yet written its pid.
The lock file holds the holder's pid, for that message and that shortcut only:
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


def _holder_pid(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip() or "0")
    return 0


def _holder(path: Path) -> str:
    pid = _holder_pid(path)
    return f" (pid {pid})" if pid else ""


PF_EXITING = 0x4  # /proc/<pid>/stat flags: the process has begun to exit
SIGKILL_BIT = 1 << (9 - 1)  # SIGKILL in /proc/<pid>/status's pending-signal masks


def _running(pid: int) -> bool:
    """True if `pid` is a live process, neither gone nor dying (exiting, a zombie, or
    with a SIGKILL on its way)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
        state, flags = fields[0], int(fields[6])
    except (OSError, IndexError, ValueError):
        return False
    if state in ("Z", "X", "x") or flags & PF_EXITING:
        return False
    for line in status.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & SIGKILL_BIT:
            return False
    return True


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
                if _running(_holder_pid(path)) or time.monotonic() >= deadline:
                    raise ServerError(
                        f"{what} already runs for {path.parent}{_holder(path)}: "
                        "stop it first (one owner per state dir)"
                    ) from None
                time.sleep(POLL)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # a full disk
            raise ServerError(f"cannot write {path}: {exc.strerror or exc}") from None
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """A short critical section shared by processes: wait for `path`'s flock, hold it.

    For read-modify-write of a file several processes rewrite (auth.conf): without
    it, one that read the state dir before another added a user could write the
    file back without that user.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
