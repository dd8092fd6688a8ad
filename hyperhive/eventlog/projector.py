"""The projector: a durable consumer writing every event of a hive into sqlite.

Batches of up to 1000 messages are written in one transaction together with the
position; only then is the batch acked (AckPolicy.ALL). On start, and after any
failure, it resumes from the log's own position: the sqlite file, not the
consumer, is the truth about what was projected. A crash anywhere therefore
never loses or duplicates a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from nats.aio.msg import Msg
from nats.js import api as js_api

from hyperhive import events as ev
from hyperhive.backoff import Backoff
from hyperhive.bus import subjects
from hyperhive.bus.connect import open_nats
from hyperhive.bus.consume import PullConsumer, StartAt, ack_info
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig
from hyperhive.errors import EventLogError, WrongHive
from hyperhive.eventlog.sinks import LogSink, OrderedWrites, ProcessSink, ThreadSink
from hyperhive.eventlog.store import EventLog, StreamMessage
from hyperhive.names import ROLE_ADMIN
from hyperhive.service import announce, keep_running, started, stopped
from hyperhive.statedir import StateDir

log = logging.getLogger("hyperhive.projector")

DURABLE = subjects.PROJECTOR_DURABLE
BATCH = 1000
MAX_BUFFERED = 4 * BATCH  # received but not yet handed to the writer
SERVICE = "projector"
RETRY_FIRST = 0.2
RETRY_MAX = 10.0


def eventlog_path(cfg: HiveConfig) -> Path:
    return StateDir.at(cfg.state_dir).events_db


async def project(
    cfg: HiveConfig,
    eventlog: EventLog | LogSink,
    on_batch: Callable[[int, int], None] | None = None,
) -> None:
    """Project the stream into `eventlog` until cancelled. Raises on failure.

    Up to `IN_FLIGHT` batches are being written while the next one is received;
    each is acked only once it is committed, in order.
    """
    sink = ThreadSink(eventlog) if isinstance(eventlog, EventLog) else eventlog
    writes: OrderedWrites[tuple[Msg, int]] | None = None
    try:
        async with open_nats(cfg, ROLE_ADMIN, "hyperhive-projector", wait=True) as nc:
            js = nc.jetstream()
            await ensure_stream(js, cfg.hive, cfg.stream)
            stream = subjects.stream_name(cfg.hive)
            consumer = PullConsumer(nc, stream, DURABLE, ack_policy=js_api.AckPolicy.ALL)
            writes = OrderedWrites(sink, on_done=consumer.wake)
            position = await sink.position()
            await consumer.ensure(StartAt(seq=position + 1))
            log.info("projecting %s into %s from seq %d", stream, sink.path, position + 1)
            buffered: list[Msg] = []
            async with contextlib.aclosing(consumer.batches(batch=BATCH, idle_tick=0.2)) as batches:
                async for msgs in batches:
                    buffered.extend(msgs)
                    settled = writes.settle_done()
                    if len(buffered) >= MAX_BUFFERED:  # back-pressure: the writer is behind
                        settled += await writes.settle()
                    for written, (last, seq) in settled:
                        await last.ack()
                        if on_batch is not None:
                            on_batch(written, seq)
                    while buffered and not writes.full:
                        # Write in big batches: while both write slots are busy, what
                        # arrives is gathered here, and goes out as one batch.
                        chunk, buffered = buffered[:BATCH], buffered[BATCH:]
                        batch = [
                            StreamMessage(ack_info(m).stream_seq, m.subject, m.data) for m in chunk
                        ]
                        first_available = None
                        if batch[0].seq > position + 1:
                            first_available = (await js.stream_info(stream)).state.first_seq
                        writes.submit(batch, first_available, (chunk[-1], batch[-1].seq))
                        position = max(position, batch[-1].seq)
    finally:
        if writes is not None:
            writes.cancel()
        if sink is not eventlog:
            await sink.aclose()


async def run_projector(
    cfg: HiveConfig,
    path: Path | None = None,
    projections: tuple[str, ...] = (),
    on_batch: Callable[[int, int], None] | None = None,
) -> None:
    """Run the projector until cancelled: no failure stops it, none goes unsaid.

    The log is written by a worker process (`ProcessSink`), replaced if it dies;
    `projections` (import paths) are kept in the same transactions as the rows.
    Anything that goes wrong — NATS away, the disk full or read-only, the log
    unusable, a bug — is one log line, then a backoff, then another try from the
    log's own position; the rest of the hive stays up meanwhile. Only a log that
    belongs to another hive is refused at once (that is a configuration error).
    """
    path = path or eventlog_path(cfg)
    backoff = Backoff(RETRY_FIRST, RETRY_MAX)
    await _open_checked(cfg, path, backoff)
    sink = ProcessSink(path, cfg.hive, projections)

    def healthy(written: int, position: int) -> None:
        backoff.reset()
        if on_batch is not None:  # (rows written, log position) of each commit
            on_batch(written, position)

    async def attempt() -> None:
        nonlocal sink
        try:
            await project(cfg, sink, on_batch=healthy)
        except BrokenProcessPool:
            log.warning("projector: the log writer process died; starting a new one")
            await sink.aclose()
            sink = ProcessSink(path, cfg.hive, projections)

    await announce(cfg, started(cfg, SERVICE, ev.SOURCE_BUS))
    try:
        await keep_running("projector", attempt, backoff, log)
    finally:
        await sink.aclose()
        await announce(cfg, stopped(cfg, SERVICE, ev.SOURCE_BUS))


async def _open_checked(cfg: HiveConfig, path: Path, backoff: Backoff) -> None:
    """Open the log once (creating it): another hive's log is refused, any other failure waits."""
    while True:
        try:
            await asyncio.to_thread(lambda: EventLog(path, cfg.hive).close())
            return
        except WrongHive:
            raise
        except EventLogError as exc:
            delay = backoff.next_delay()
            log.warning("projector: %s; trying again in %.1fs", exc, delay)
            await asyncio.sleep(delay)
