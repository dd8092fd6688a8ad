"""Owning a state dir: a live holder is named and refused at once; a dying one (or one that
has not written its pid yet) is waited for."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hyperhive import lockfile
from hyperhive.errors import ServerError


class Clock:
    """`lockfile`'s clock, calling `on_sleep` each time the lock is waited for."""

    def __init__(self, on_sleep: Callable[[], None]) -> None:
        self.on_sleep = on_sleep
        self.sleeps = 0

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.on_sleep()


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The lock held through a second open file (flock locks one open file, not a
    process); its pid line is the test's to write."""
    path = tmp_path / "up.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield path, fd
    finally:
        os.close(fd)


def test_a_live_holder_is_named_and_refused_without_waiting(
    held: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = held
    holder = subprocess.Popen(["sleep", "60"])
    try:
        path.write_text(f"{holder.pid}\n")

        def waited() -> None:
            raise AssertionError("it waited for a live holder")

        monkeypatch.setattr(lockfile, "time", Clock(waited))
        with (
            pytest.raises(ServerError, match=rf"already runs .*\(pid {holder.pid}\)"),
            lockfile.hold(path, "hyperhive up"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("pid_line", ["", "gone"])
def test_a_dying_holder_or_one_without_its_pid_yet_is_waited_for(
    held: tuple[Path, int], monkeypatch: pytest.MonkeyPatch, pid_line: str
) -> None:
    path, fd = held
    if pid_line == "gone":
        gone = subprocess.Popen(["true"])
        gone.wait()  # reaped: its pid names no process, as a SIGKILL'd holder's soon does
        pid_line = str(gone.pid)
    path.write_text(pid_line)
    clock = Clock(lambda: fcntl.flock(fd, fcntl.LOCK_UN))  # the holder goes while we wait
    monkeypatch.setattr(lockfile, "time", clock)
    with lockfile.hold(path, "hyperhive up"):
        assert path.read_text() == f"{os.getpid()}\n"
    assert clock.sleeps == 1


def test_a_holder_that_stays_is_refused_after_the_wait(
    held: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = held
    path.write_text("")
    now = [0.0]
    clock = Clock(lambda: now.__setitem__(0, now[0] + lockfile.POLL))
    clock.monotonic = lambda: now[0]  # type: ignore[method-assign]
    monkeypatch.setattr(lockfile, "time", clock)
    with pytest.raises(ServerError, match="already runs"), lockfile.hold(path, "hyperhive up"):
        pass
    assert clock.sleeps == pytest.approx(lockfile.WAIT_FOR_PREDECESSOR / lockfile.POLL, abs=2)


def test_a_full_disk_is_a_refusal_naming_the_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    lock = tmp_path / "up.lock"
    refused = pytest.raises(ServerError, match=f"cannot write {lock}: No space left on device")
    with refused, lockfile.hold(lock, "hyperhive up"):
        pass
    monkeypatch.undo()  # room again: nothing was held on, the next one gets it
    with lockfile.hold(lock, "hyperhive up"):
        assert lock.read_text() == f"{os.getpid()}\n"
