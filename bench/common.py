"""Shared pieces of the benchmark: the events, timing, results, machine info."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hyperhive import events as ev
from hyperhive.bus.records import subject_for
from hyperhive.bus.server import find_binary
from hyperhive.events.envelope import Event

HIVE = "bench"
EVENT_BYTES = 300
SQLITE_TXN = 1000
READ_BATCH = 1000
PUBLISH_WINDOW = 1000


@dataclass(frozen=True, slots=True)
class Payload:
    """One pre-built event: its id, subject and encoded bytes."""

    id: str
    subject: str
    data: bytes


def make_event(hive: str = HIVE, agent: str = "worker-1", size: int = EVENT_BYTES) -> Event:
    """A realistic `agent.status_set` event, its status text padded to `size` bytes of JSON."""
    base = ev.AgentStatusSet(hive=hive, agent=agent, source="harness", status_text="")
    pad = max(0, size - len(ev.encode_event(base)))
    text = ("reviewing the approval queue, then " + "x" * pad)[:pad]
    return ev.AgentStatusSet(
        id=base.id, ts=base.ts, hive=hive, agent=agent, source="harness", status_text=text
    )


def make_events(n: int, hive: str = HIVE) -> list[Event]:
    return [make_event(hive) for _ in range(n)]


def payloads(events: list[Event]) -> list[Payload]:
    return [Payload(e.id, subject_for(e), ev.encode_event(e)) for e in events]


@dataclass
class Timer:
    """Wall time of a block, in seconds (monotonic, high resolution)."""

    start: float = 0.0
    end: float = 0.0

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)


@contextmanager
def timed() -> Iterator[Timer]:
    t = Timer(start=time.perf_counter())
    try:
        yield t
    finally:
        t.end = time.perf_counter()


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` things done in `seconds`."""

    count: int
    seconds: float
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Results:
    """Every measurement of one run, by key."""

    rates: dict[str, Rate] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # section -> why it failed

    def rate(self, key: str) -> float:
        r = self.rates.get(key)
        return r.per_s if r else 0.0


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nats_server_version() -> str:
    try:
        out = subprocess.run(
            [find_binary(), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip().removeprefix("nats-server: ") or "?"


def machine_info() -> list[tuple[str, str]]:
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    return [
        ("cpu", f"{_cpu_model()}, {usable} usable cores ({cores} online)"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("nats-server", nats_server_version()),
        ("nats-py", _version("nats-py")),
        ("msgspec", _version("msgspec")),
        ("sqlite", sqlite3.sqlite_version),
    ]


def percentile(sorted_values: list[float], p: float) -> float:
    """The `p`-th percentile (0..100) of already sorted values, nearest rank."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]
