"""What the backends share: the agent's host dirs, bounded log tails, signal names.

Log lines that leave a backend (on an `Exit`, from `log_lines`) are bounded: at
most `LINE_MAX` characters each, read from at most the last `TAIL_BYTES` of a
file, so a harness that prints one endless line can't blow up c0re's memory or
an event.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

from hyperhive.errors import BackendError
from hyperhive.statedir import DIR_MODE, StateDir

LINE_MAX = 4096  # characters of one log line we pass on
TAIL_BYTES = 1024 * 1024  # the most of a log file a tail reads
EXIT_LOG_LINES = 20  # lines of log on an Exit
MAX_LOG_LINES = 2000  # the most lines `log_lines` returns


def ensure_agent_dirs(state: StateDir, agent: str) -> None:
    """Create `agents/<name>/{state,claude}` (0700 each, and the dirs above them).

    They outlive the agent: `destroy` never removes them (credentials and notes
    survive a recreate).
    """
    try:
        state.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        for path in (
            state.agents,
            state.agent(agent),
            state.agent_state(agent),
            state.agent_claude(agent),
        ):
            path.mkdir(mode=DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise BackendError(
            f"cannot create the dirs of agent {agent} under {state.root}: {exc.strerror or exc}"
        ) from None


def bound_line(line: str) -> str:
    return line if len(line) <= LINE_MAX else line[:LINE_MAX] + "..."


def bound_lines(lines: Iterable[str]) -> list[str]:
    return [bound_line(line) for line in lines]


def clamp_lines(lines: int, most: int = MAX_LOG_LINES) -> int:
    return max(0, min(int(lines), most))


def tail_file(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a text file (bounded); [] if it doesn't exist."""
    lines = clamp_lines(lines)
    if lines == 0:
        return []
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - TAIL_BYTES)
            f.seek(start)
            data = f.read(TAIL_BYTES)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BackendError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = data.decode("utf-8", errors="replace").splitlines()
    if start > 0 and text:
        text = text[1:]  # began mid-line
    return bound_lines(text[-lines:])


def signal_name(number: int) -> str:
    """`SIGKILL` for 9; `SIG<n>` for a number Python doesn't name."""
    with contextlib.suppress(ValueError):
        return signal.Signals(number).name
    return f"SIG{number}"
