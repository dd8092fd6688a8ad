"""Rebuilding an event log from the stream (`hive-events replay`): resumable, idempotent.

`run_replay` is the use case (connect, then open the log, write through a worker
process); `replay_stream` is the loop, on a connection and a log you hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from hyperhive.bus import subjects
from hyperhive.bus.connect import open_reader
from hyperhive.bus.consume import StartAt, ack_info, read_ordered
from hyperhive.bus.tail import stream_state
from hyperhive.config import HiveConfig
from hyperhive.eventlog.sinks import IN_FLIGHT, LogSink, OrderedWrites, ProcessSink, ThreadSink
from hyperhive.eventlog.store import EventLog, StreamMessage

REPLAY_BATCH = 1000


@dataclass
class ReplayResult:
    written: int = 0
    read: int = 0
    start_position: int = 0
    position: int = 0
    stream_last_seq: int = 0
    error_rows: int = 0  # rows kept with an error (malformed or duplicate), among the new ones


async def replay_stream(
    nc: Client,
    log: EventLog,
    on_batch: Callable[[int, int], Any] | None = None,
    batch: int = REPLAY_BATCH,
    sink: LogSink | None = None,
) -> ReplayResult:
    """Append the stream's messages after the log's position into the log, in batches.

    Resumable and idempotent: the log's own position says where to start, and
    `EventLog.append` skips what it already holds. Writes go through `sink` (a
    worker process, for speed; default: a thread on `log`), up to `IN_FLIGHT`
    batches ahead of reading, in order. `on_batch(covered, total)` reports
    progress: stream sequences covered by a committed batch, of `total` to go.
    """
    hs = await stream_state(nc, log.hive, subjects.stream_name(log.hive))
    own_sink = sink is None
    out: LogSink = ThreadSink(log) if sink is None else sink
    position = await out.position()
    result = ReplayResult(start_position=position, position=position, stream_last_seq=hs.last_seq)
    pending: list[StreamMessage] = []
    writes: OrderedWrites[int] = OrderedWrites(out)  # tagged with each batch's last seq

    def record(settled: list[tuple[int, int]]) -> None:
        for written, last in settled:
            result.written += written
            covered = last - result.position
            result.position = last
            if on_batch is not None:
                on_batch(covered, result.stream_last_seq - result.start_position)

    def submit() -> None:
        if pending:
            writes.submit(list(pending), hs.first_seq, pending[-1].seq)
            pending.clear()

    try:
        if hs.last_seq > position:
            every = subjects.stream_subjects(log.hive)
            start = StartAt(seq=position + 1)
            async for msg in read_ordered(nc, hs.stream, every, start, False, hs.last_seq, batch):
                pending.append(StreamMessage(ack_info(msg).stream_seq, msg.subject, msg.data))
                result.read += 1
                if len(pending) >= batch:
                    submit()
                    record(await writes.settle(keep=IN_FLIGHT))
            submit()
            record(await writes.settle())
    finally:
        writes.cancel()
        if own_sink:
            await out.aclose()
    result.error_rows = await asyncio.to_thread(_errors_after, log, result.start_position)
    return result


def _errors_after(log: EventLog, seq: int) -> int:
    sql = "SELECT count(*) FROM events WHERE seq > ? AND error IS NOT NULL"
    return int(log.conn.execute(sql, (seq,)).fetchone()[0])


async def run_replay(
    cfg: HiveConfig,
    path: Path,
    progress: Callable[[int, int], Any] | None = None,
    projections: tuple[str, ...] = (),
) -> ReplayResult:
    """Replay `cfg.hive`'s stream into the log at `path`; `progress(covered, total)` per batch.

    Connects first: a replay that can't reach NATS creates no log file (nor its dir).
    """
    async with open_reader(cfg, "replay") as nc:
        log = await asyncio.to_thread(EventLog, path, cfg.hive)
        try:
            # Decode, hash, fold the projections and write sqlite on the other core.
            sink = ProcessSink(path, cfg.hive, projections)
            try:
                return await replay_stream(nc, log, on_batch=progress, sink=sink)
            finally:
                await sink.aclose()
        finally:
            await asyncio.to_thread(log.close)
