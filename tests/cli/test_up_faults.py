"""`hyperhive up` when its own parts fail or race: the server dies, two start at once, a kill -9.

Regression tests for D4 (a dead nats-server went unnoticed and SIGTERM was then
ignored), D5 (two `up` on one state dir could both say "up") and D8 (an `up`
right after a SIGKILL of the previous one was refused).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperhive.procs import pid_alive
from tests.helpers import BIN, state_env, wait_for_line

pytestmark = pytest.mark.nats

UP_LINE = "Ctrl-C stops everything"


def start_up(state: Path, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "hyperhive"), "up", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=state_env(state),
        cwd=cwd,
        start_new_session=True,  # its own process group, to kill it whole
    )


@pytest.fixture
def ups() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _first_to_exit(procs: list[subprocess.Popen[str]], timeout: float) -> subprocess.Popen[str]:
    """The first of `procs` to exit, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            try:
                proc.wait(timeout=0.05)  # a deadline on each, not a sleep
                return proc
            except subprocess.TimeoutExpired:
                pass
    raise AssertionError(f"none of {[p.pid for p in procs]} exited within {timeout}s")


def server_pid(state: Path) -> int:
    return int(json.loads((state / "nats" / "server.json").read_text())["pid"])


def test_up_restarts_its_nats_server_when_it_dies_and_still_stops_on_sigterm(
    tmp_path: Path, ups: list[subprocess.Popen[str]]
) -> None:
    state = tmp_path / "state"
    up = start_up(state, tmp_path)
    ups.append(up)
    wait_for_line(up, UP_LINE)
    first = server_pid(state)

    os.kill(first, signal.SIGKILL)

    wait_for_line(up, "nats-server is back")
    second = server_pid(state)
    assert second != first
    assert pid_alive(second)
    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=30) == 0
    assert not pid_alive(second) or _reaped_zombie(second)


def _reaped_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_two_ups_started_at_once_on_one_state_dir_one_wins_one_is_refused(
    tmp_path: Path, ups: list[subprocess.Popen[str]]
) -> None:
    state = tmp_path / "state"
    a = start_up(state, tmp_path)
    b = start_up(state, tmp_path)
    ups.extend([a, b])
    # The loser is refused and exits by itself; the winner comes up and stays up.
    loser = _first_to_exit([a, b], timeout=30)
    winner = b if loser is a else a
    out, _ = loser.communicate(timeout=30)
    assert loser.returncode == 1, out
    assert "already runs" in out
    assert "is up" not in out
    wait_for_line(winner, UP_LINE)
    assert winner.poll() is None
    assert server_pid(state) != 0


def test_up_right_after_a_sigkill_of_the_previous_one_starts(
    tmp_path: Path, ups: list[subprocess.Popen[str]]
) -> None:
    state = tmp_path / "state"
    first = start_up(state, tmp_path)
    ups.append(first)
    wait_for_line(first, UP_LINE)
    os.killpg(first.pid, signal.SIGKILL)  # the server is in its own session: it lingers
    first.wait()

    again = start_up(state, tmp_path)
    ups.append(again)
    lines = wait_for_line(again, UP_LINE, timeout=60)
    assert not any("already runs" in line for line in lines), lines
