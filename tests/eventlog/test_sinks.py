"""The contract of a log sink, run over both: a writer thread and a writer process.

A sink writes batches strictly in submission order, each in its own
transaction; the position only moves forward; a refused batch fails its own
future and writes nothing; closing finishes the batch being written and drops
the queued ones (a whole transaction or nothing, never a gap).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyperhive.bus.records import subject_for
from hyperhive.errors import EventLogError
from hyperhive.eventlog.sinks import IN_FLIGHT, LogSink, OrderedWrites, ProcessSink, ThreadSink
from hyperhive.eventlog.store import EventLog, StreamMessage
from hyperhive.events import encode_event
from tests.helpers import turn_started

HIVE = "sinks"


def messages(first: int, count: int) -> list[StreamMessage]:
    out = []
    for seq in range(first, first + count):
        event = turn_started(HIVE, n=seq)
        out.append(StreamMessage(seq, subject_for(event), encode_event(event)))
    return out


@pytest.fixture(params=["thread", "process"])
async def sink(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogSink]:
    path = tmp_path / "events.sqlite"
    made: LogSink
    if request.param == "thread":
        made = ThreadSink(EventLog(path, HIVE))
    else:
        made = ProcessSink(path, HIVE)
    yield made
    await made.aclose()


def read_rows(path: Path) -> list[int]:
    log = EventLog(path, HIVE, readonly=True)
    try:
        return [row.seq for row in log.rows()]
    finally:
        log.close()


async def test_a_new_sink_is_at_position_zero(sink: LogSink) -> None:
    assert await sink.position() == 0


async def test_batches_are_committed_in_order_and_the_position_follows(sink: LogSink) -> None:
    futures = [sink.submit(messages(1 + 10 * i, 10), None) for i in range(5)]
    assert await asyncio.gather(*futures) == [10] * 5
    assert await sink.position() == 50
    assert read_rows(sink.path) == list(range(1, 51))


async def test_a_batch_already_written_writes_nothing_again(sink: LogSink) -> None:
    assert await sink.submit(messages(1, 10), None) == 10
    assert await sink.submit(messages(1, 10), None) == 0
    assert await sink.submit(messages(5, 10), None) == 4
    assert read_rows(sink.path) == list(range(1, 15))


async def test_a_refused_batch_fails_alone_and_writes_nothing(sink: LogSink) -> None:
    assert await sink.submit(messages(1, 5), None) == 5
    with pytest.raises(EventLogError, match="refusing to skip"):
        await sink.submit(messages(9, 3), None)  # 6..8 are still in the stream
    assert await sink.position() == 5
    assert await sink.submit(messages(6, 3), None) == 3
    assert read_rows(sink.path) == list(range(1, 9))


async def test_ordered_writes_settle_in_submission_order_with_their_tags(sink: LogSink) -> None:
    writes: OrderedWrites[str] = OrderedWrites(sink)
    for i in range(IN_FLIGHT):
        writes.submit(messages(1 + 100 * i, 100), None, f"batch-{i}")
    assert writes.full
    settled = await writes.settle()
    assert settled == [(100, f"batch-{i}") for i in range(IN_FLIGHT)]
    assert len(writes) == 0
    assert await sink.position() == 100 * IN_FLIGHT


async def test_closing_finishes_the_write_in_progress_and_drops_the_queued(
    sink: LogSink,
) -> None:
    pending = [sink.submit(messages(1 + 50 * i, 50), None) for i in range(4)]
    await sink.aclose()
    done = [f.result() for f in pending if not f.cancelled()]
    assert done == [50] * len(done)
    assert all(f.cancelled() for f in pending[len(done) :]), "only a prefix is written"
    assert read_rows(sink.path) == list(range(1, 1 + 50 * len(done)))
