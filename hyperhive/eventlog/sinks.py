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
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from hyperhive.eventlog.projections import build
from hyperhive.eventlog.store import EventLog, StreamMessage
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


T = TypeVar("T")
IN_FLIGHT = 2  # batches being written while more are read


class OrderedWrites(Generic[T]):
    """Batches handed to a sink and settled strictly in submission order.

    Each batch carries a `tag` (what the caller needs once it is committed: the
    message to ack, the last sequence); settling gives back (rows written, tag).
    """

    def __init__(self, sink: LogSink, on_done: Callable[[], None] | None = None) -> None:
        self.sink = sink
        self.on_done = on_done  # called when any write finishes (to wake a waiting loop)
        self._pending: deque[tuple[asyncio.Future[int], T]] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def full(self) -> bool:
        return len(self._pending) >= IN_FLIGHT

    def submit(self, batch: list[StreamMessage], first_available: int | None, tag: T) -> None:
        fut = self.sink.submit(batch, first_available)
        if self.on_done is not None:
            on_done = self.on_done
            fut.add_done_callback(lambda _f: on_done())
        self._pending.append((fut, tag))

    def settle_done(self) -> list[tuple[int, T]]:
        """The finished writes at the head, without waiting (a failed one raises)."""
        out = []
        while self._pending and self._pending[0][0].done():
            fut, tag = self._pending.popleft()
            out.append((fut.result(), tag))
        return out

    async def settle(self, keep: int = 0) -> list[tuple[int, T]]:
        """Wait for the oldest writes until at most `keep` are left in flight."""
        out = []
        while len(self._pending) > keep:
            fut, tag = self._pending.popleft()
            out.append((await fut, tag))
        return out

    def cancel(self) -> None:
        """Drop queued writes; one already running finishes (it is a whole transaction)."""
        for fut, _tag in self._pending:
            fut.cancel()
        self._pending.clear()


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
        # The batch being written finishes (a whole transaction); queued ones are
        # dropped (their futures cancelled). The log stays open.
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


# The worker process's own log, opened once by the pool's initializer.
_worker_log: EventLog | None = None


def _worker_open(path: str, hive: str, projections: tuple[str, ...]) -> None:
    global _worker_log
    die_with_parent()  # a SIGKILL'd projector must not leave its writer behind
    # Ctrl-C reaches the whole process group: the parent stops the writer, in order,
    # after its last batch; the writer itself ignores the key.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_log = EventLog(Path(path), hive, projections=[build(p) for p in projections])


def _worker_position() -> int:
    assert _worker_log is not None
    return _worker_log.position()


def _worker_append(batch: list[StreamMessage], first_available: int | None) -> int:
    assert _worker_log is not None
    return _worker_log.append(batch, first_available)


class ProcessSink:
    """An event log written by a worker process (spawned, so nothing is inherited).

    `projections` are import paths (`module:factory`): the worker builds them,
    and keeps their tables in the same transactions as the rows.
    """

    def __init__(self, path: Path, hive: str, projections: tuple[str, ...] = ()) -> None:
        self.path = path
        self.hive = hive
        self._executor = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_open,
            initargs=(str(path), hive, projections),
        )

    async def position(self) -> int:
        return await asyncio.wrap_future(self._executor.submit(_worker_position))

    def submit(
        self, batch: list[StreamMessage], first_available: int | None
    ) -> asyncio.Future[int]:
        return asyncio.wrap_future(self._executor.submit(_worker_append, batch, first_available))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
