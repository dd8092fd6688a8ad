"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import signal
import sys


def die_with_parent() -> None:
    """In a child: get SIGTERM when the parent dies, however it dies (even SIGKILL).

    Linux delivers it when the thread that forked exits, so children belong to a
    thread that lives as long as they do (the main thread, in practice). Used for
    the embedded nats-server and the event-log writer process.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
