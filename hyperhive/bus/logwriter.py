"""Where event-log writes run: a thread, or a worker process on another core.

Writing a batch — decode, check, hash-chain, sqlite — costs about as much CPU as
receiving it from NATS, and in one process the GIL serialises the two. A
`ProcessSink` opens the log in a spawned worker process, so the projector
receives the next batch while the worker commits the last one. Both sinks run
batches strictly in submission order (one worker), so the log's position only
moves forward and a batch is acked only after its own commit.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from hyperhive.bus.eventlog import EventLog, StreamMessage
from hyperhive.procs import die_with_parent


class LogSink(Protocol):
    """Ordered, asynchronous writes into one event log."""

    path: Path
    hive: str

    async def position(self) -> int: ...

    def submit(
        self, batch: list[StreamMessage], first_available: int | None
    ) -> asyncio.Future[int]:
        """Queue a batch; the future gives the rows written once it is committed."""
        ...

    async def aclose(self) -> None: ...


class ThreadSink:
    """An `EventLog` written from one dedicated thread (FIFO)."""

    def __init__(self, eventlog: EventLog) -> None:
        self.eventlog = eventlog
        self.path = eventlog.path
        self.hive = eventlog.hive
        self._executor: Executor = ThreadPoolExecutor(1, thread_name_prefix="eventlog")

    async def position(self) -> int:
        return await asyncio.wrap_future(self._executor.submit(self.eventlog.position))

    def submit(
        self, batch: list[StreamMessage], first_available: int | None
    ) -> asyncio.Future[int]:
        return asyncio.wrap_future(
            self._executor.submit(self.eventlog.append, batch, first_available)
        )

    async def aclose(self) -> None:
        # Queued writes finish (they are whole transactions); the log stays open.
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


# The worker process's own log, opened once by the pool's initializer.
_worker_log: EventLog | None = None


def _worker_open(path: str, hive: str) -> None:
    global _worker_log
    die_with_parent()  # a SIGKILL'd projector must not leave its writer behind
    # Ctrl-C reaches the whole process group: the parent stops the writer, in order,
    # after its last batch; the writer itself ignores the key.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_log = EventLog(Path(path), hive)


def _worker_position() -> int:
    assert _worker_log is not None
    return _worker_log.position()


def _worker_append(batch: list[StreamMessage], first_available: int | None) -> int:
    assert _worker_log is not None
    return _worker_log.append(batch, first_available)


class ProcessSink:
    """An event log written by a worker process (spawned, so nothing is inherited)."""

    def __init__(self, path: Path, hive: str) -> None:
        self.path = path
        self.hive = hive
        self._executor = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_open,
            initargs=(str(path), hive),
        )

    async def position(self) -> int:
        return await asyncio.wrap_future(self._executor.submit(_worker_position))

    def submit(
        self, batch: list[StreamMessage], first_available: int | None
    ) -> asyncio.Future[int]:
        return asyncio.wrap_future(self._executor.submit(_worker_append, batch, first_available))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
