"""hyperhive's own paths: publish_event, the projector, replay, the live tail."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from nats.aio.client import Client
from nats.js import api as js_api

from bench.common import PUBLISH_WINDOW, READ_BATCH, Rate, make_event, percentile, timed
from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.consume import StartAt, read_ordered
from hyperhive.bus.publish import publish_event
from hyperhive.bus.records import subject_for
from hyperhive.config import HiveConfig
from hyperhive.eventlog.projector import project
from hyperhive.eventlog.replay import replay_stream
from hyperhive.eventlog.sinks import ProcessSink
from hyperhive.eventlog.store import EventLog, StreamMessage, to_row
from hyperhive.events.envelope import Event

# ------------------------------------------------------------------ publish


async def publish_sequential(nc: Client, events: list[Event]) -> Rate:
    """`await publish_event(js, e)` one after the other, as c0re emits decisions."""
    js = nc.jetstream()
    with timed() as t:
        for e in events:
            await publish_event(js, e)
    return Rate(len(events), t.seconds)


async def publish_pipelined(nc: Client, events: list[Event], window: int = PUBLISH_WINDOW) -> Rate:
    """What a batch publisher of ours would do: publish_event's message, pipelined.

    Same subject, bytes and headers as `publish_event` (`Nats-Msg-Id` = event id,
    expected stream), encoded inside the timed loop, at most `window` acks pending.
    """
    js = nc.jetstream(publish_async_max_pending=window)
    futures: list[asyncio.Future[js_api.PubAck]] = []
    with timed() as t:
        for e in events:
            futures.append(
                await js.publish_async(
                    subject_for(e),
                    ev.encode_event(e),
                    stream=subjects.stream_name(e.hive),
                    headers={"Nats-Msg-Id": e.id},
                )
            )
        acks = await asyncio.gather(*futures)
    dups = sum(1 for a in acks if a.duplicate)
    assert dups == 0, f"{dups} duplicates"
    return Rate(len(events), t.seconds, f"window {window}")


# ------------------------------------------------------------------ event log


def eventlog_append(path: Path, hive: str, msgs: list[StreamMessage], batch: int = 1000) -> Rate:
    """`EventLog.append` alone (no NATS): decode, check, hash chain, insert."""
    log = EventLog(path, hive)
    try:
        with timed() as t:
            for start in range(0, len(msgs), batch):
                log.append(msgs[start : start + batch])
    finally:
        log.close()
    return Rate(len(msgs), t.seconds, f"{batch} rows/txn")


def to_rows(hive: str, msgs: list[StreamMessage]) -> Rate:
    """`to_row` alone: decode + subject check + timestamp + chain hash, no sqlite."""
    prev = bytes(32)
    with timed() as t:
        for m in msgs:
            prev = to_row(m, hive, prev).hash
    return Rate(len(msgs), t.seconds)


# ------------------------------------------------------------------ projector


async def projector(cfg: HiveConfig, path: Path, last_seq: int) -> Rate:
    """`project()` over a backlog until the log's position reaches `last_seq`.

    Written through a `ProcessSink`, as `hyperhive projector` does.
    """
    log = EventLog(path, cfg.hive)
    sink = ProcessSink(path, cfg.hive)
    await sink.position()  # the worker is up before the clock starts
    done = asyncio.Event()
    batches = 0
    written_total = 0

    def on_batch(written: int, position: int) -> None:
        nonlocal batches, written_total
        batches += 1
        written_total += written
        if position >= last_seq:
            done.set()

    try:
        with timed() as t:
            task = asyncio.create_task(project(cfg, sink, on_batch=on_batch))
            waiter = asyncio.create_task(done.wait())
            finished, _ = await asyncio.wait(
                {task, waiter}, timeout=300, return_when=asyncio.FIRST_COMPLETED
            )
            if task in finished:
                task.result()  # raises what the projector raised
            if waiter not in finished:
                raise TimeoutError("projector did not reach the end of the stream")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        waiter.cancel()
        count = log.count()
    finally:
        await sink.aclose()
        log.close()
    assert count == written_total == last_seq, (count, written_total, last_seq)
    avg = written_total / batches if batches else 0
    return Rate(written_total, t.seconds, f"{batches} commits, {avg:.0f} events/commit")


# ------------------------------------------------------------------ replay


async def replay(nc: Client, hive: str, path: Path, batch: int = READ_BATCH) -> Rate:
    """`replay_stream` into a fresh log through a `ProcessSink`: `hive-events replay`."""
    log = EventLog(path, hive)
    sink = ProcessSink(path, hive)
    await sink.position()  # the worker is up before the clock starts
    try:
        with timed() as t:
            result = await replay_stream(nc, log, batch=batch, sink=sink)
        written = result.written
        count = log.count()
    finally:
        await sink.aclose()
        log.close()
    assert count == written
    return Rate(written, t.seconds, f"{batch} rows/txn")


# ------------------------------------------------------------------ latency


async def tail_latency(
    pub: Client, sub: Client, hive: str, rate: float, seconds: float
) -> tuple[list[float], int]:
    """Publish at `rate`/s with `publish_event`; a `read_ordered(follow=True)` tail receives.

    Latency of an event = when the tail got it - just before `publish_event` was
    called for it (both `perf_counter`, one process). Returns sorted latencies in
    ms and how many events were lost (should be 0).
    """
    js = pub.jetstream()
    stream = subjects.stream_name(hive)
    filt = [subjects.event_subject(hive, "tail", "agent.status_set")]
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    ready = asyncio.Event()
    warm: set[str] = set()
    all_in = asyncio.Event()
    count = int(rate * seconds)

    async def follow() -> None:
        async for msg in read_ordered(sub, stream, filt, StartAt(new_only=True), follow=True):
            now = time.perf_counter()
            eid = ev.decode_event(msg.data).id
            if eid in warm:
                ready.set()
                continue
            got[eid] = now
            if len(got) >= count:
                all_in.set()

    def event() -> Event:
        return make_event(hive, agent="tail")

    task = asyncio.create_task(follow())
    try:
        # Warm up until the tail's consumer exists and delivers.
        for _ in range(200):
            e = event()
            warm.add(e.id)
            await publish_event(js, e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 0.05)
            if ready.is_set():
                break
        todo = [event() for _ in range(count)]
        interval = 1.0 / rate
        start = time.perf_counter()
        for i, e in enumerate(todo):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[e.id] = time.perf_counter()
            await publish_event(js, e)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    lat = sorted((got[i] - t0) * 1000 for i, t0 in sent.items() if i in got)
    return lat, len(sent) - len(lat)


def latency_summary(lat: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "max": lat[-1] if lat else float("nan"),
    }
