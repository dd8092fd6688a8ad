"""Child processes: ones that never outlive their parent, and waiting for one to exit.

`wait_exit` waits on a pidfd (readable once the process has exited) rather than
in a thread blocked in `wait()`: a thread can't be cancelled, and `asyncio.run`
would wait for it forever on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys


def die_with_parent() -> None:
    """In a child: get SIGTERM when the parent dies, however it dies (even SIGKILL).

    Linux delivers it when the thread that forked exits, so children belong to a
    thread that lives as long as they do (the main thread, in practice). Used for
    the embedded nats-server, the event-log writer process and agents' harnesses.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    """Wait, without a thread, until `proc` exits; return its status (negative: signal)."""
    status = proc.poll()
    if status is not None:
        return status
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:  # gone between poll() and here
        return proc.wait()
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(pidfd, exited.set)
    try:
        await exited.wait()
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return proc.wait()


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (zombies included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_status(status: int) -> str:
    """`exited with status 3` / `killed by SIGKILL`, from a Popen return code."""
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    return f"exited with status {status}"
