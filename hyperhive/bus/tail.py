"""Reading events for people: the last N, from a time or a sequence, live, across hives.

    streams = await resolve_streams(nc, "*")          # every hive, or one; each one's end
    records = await read_backlog(nc, streams, flt, last=10)
    async with aclosing(follow_streams(nc, streams, flt)) as live:
        async for rec in live: ...                    # from each end + 1, live

A `Record` is one stream message as a reader sees it: a decoded event, or a
malformed message with the reason it is not one (a reader shows it and goes
on). Filters are pushed down to NATS subject filters where they can be
(`EventFilter.subjects()`) and always re-checked exactly (`record_matches`).

The last N matching records are found by reading backwards from the stream's
last sequence in windows that double in size, until N are found or the first
sequence is reached: exact with any filter, and cheap when matches are recent.
Following goes on from the same last sequence + 1: no gap, no duplicate.

The same `Record`s come out of the sqlite event log (`eventlog.query.read_log`),
so `export` filters and prints exactly like `tail`.

On a cluster (a client connected with the seed list, `bus.connect.open_nats`),
a follower survives the death of any node: its consumer is an ephemeral one,
made anew on a live node just after the last record handed out when its pull
requests go silent (`bus.consume`), so the records still come out once each, in
order per hive. `list_hive_streams` (`--hive '*'`) needs the server-wide operator
(or admin): a hive's own operator may not list the streams.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api as js_api
from nats.js import errors as js_errors

from hyperhive.bus import subjects
from hyperhive.bus.consume import StartAt, read_ordered
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.records import Record, record_matches, to_record
from hyperhive.bus.retry import ATTEMPT_TIMEOUT, through_election
from hyperhive.errors import NoStream
from hyperhive.names import ALL_HIVES

FIRST_WINDOW = 256
READ_BATCH = 1000


def msg_record(hive: str, msg: Msg) -> Record:
    meta = msg.metadata
    return to_record(hive, int(meta.sequence.stream), msg.subject, msg.data, meta.timestamp)


async def _matching(
    hive: str, f: EventFilter, msgs: AsyncGenerator[Msg, None]
) -> AsyncGenerator[Record, None]:
    """The records among `msgs` that match `f`; the read is closed when this is."""
    async with contextlib.aclosing(msgs):
        async for msg in msgs:
            rec = msg_record(hive, msg)
            if record_matches(f, rec):
                yield rec


# ---------------------------------------------------------------- streams


@dataclass(frozen=True, slots=True)
class HiveStream:
    """One hive's stream and where it stood when reading began."""

    hive: str
    stream: str
    first_seq: int = 0
    last_seq: int = 0


async def stream_state(nc: Client, hive: str, stream: str) -> HiveStream:
    js = nc.jetstream(timeout=ATTEMPT_TIMEOUT)
    try:
        info = await through_election(lambda: js.stream_info(stream), f"stream {stream}")
    except js_errors.NotFoundError:
        raise NoStream(
            f"hive {hive!r} has no stream {stream} on this NATS: nothing was published "
            "to it yet, or the hive name is wrong (--hive '*' reads every hive)"
        ) from None
    return HiveStream(hive, stream, info.state.first_seq, info.state.last_seq)


def hive_of_stream(info: js_api.StreamInfo) -> str | None:
    """The hive a stream belongs to, judged by the subjects it captures, or None."""
    return subjects.hive_of_stream_subjects(
        info.config.name or "", list(info.config.subjects or ())
    )


async def list_hive_streams(nc: Client) -> list[HiveStream]:
    """Every hive stream on this NATS (streams named `HIVE_*`), sorted by hive.

    Needs the server-wide operator (or admin): a hive's own operator may not
    list the streams. Retried through a leader election.
    """
    js = nc.jetstream(timeout=ATTEMPT_TIMEOUT)
    found: dict[str, HiveStream] = {}
    offset = 0
    while True:
        page = await through_election(
            functools.partial(js.streams_info, offset), "listing the streams"
        )
        if not page:
            break
        offset += len(page)
        for info in page:
            hive = hive_of_stream(info)
            if hive is not None:
                state = info.state
                name = subjects.stream_name(hive)
                found[hive] = HiveStream(hive, name, state.first_seq, state.last_seq)
    return [found[h] for h in sorted(found)]


async def resolve_streams(nc: Client, hive: str) -> list[HiveStream]:
    """The streams to read: one hive's (`NoStream` if missing), or every hive's for `*`."""
    if hive == ALL_HIVES:
        found = await list_hive_streams(nc)
        if not found:
            raise NoStream("no hive has a stream on this NATS yet: nothing was published")
        return found
    return [await stream_state(nc, hive, subjects.stream_name(hive))]


# ---------------------------------------------------------------- reading


async def read_range(
    nc: Client,
    hs: HiveStream,
    flt: EventFilter,
    start: StartAt,
    end_seq: int,
    on_subjects: list[str] | None = None,
) -> AsyncGenerator[Record, None]:
    """Matching records of one stream from `start` up to `end_seq`, in stream order.

    `on_subjects` narrows the read to exact subjects (an inbox) instead of the
    filter's own; the filter still decides.
    """
    if end_seq < 1 or (start.seq is not None and start.seq > end_seq):
        return
    f = flt.for_hive(hs.hive)
    batch = READ_BATCH
    if start.seq is not None:
        batch = max(1, min(READ_BATCH, end_seq - start.seq + 1))
    wanted = on_subjects if on_subjects is not None else f.subjects()
    msgs = read_ordered(nc, hs.stream, wanted, start, False, end_seq, batch)
    async with contextlib.aclosing(_matching(hs.hive, f, msgs)) as records:
        async for rec in records:
            yield rec


async def last_matching(
    nc: Client,
    hs: HiveStream,
    flt: EventFilter,
    n: int,
    floor: int = 1,
    on_subjects: list[str] | None = None,
) -> list[Record]:
    """The last `n` records matching `flt` at or above sequence `floor`, in stream order.

    Reads backwards from `hs.last_seq` in windows of max(4n, 256) sequences,
    doubling each time, until `n` matches are found or the first sequence (or
    `floor`) is reached.
    """
    low = max(hs.first_seq, floor, 1)
    if n <= 0 or hs.last_seq < low:
        return []
    found: list[Record] = []
    hi, window = hs.last_seq, max(n * 4, FIRST_WINDOW)
    while hi >= low and len(found) < n:
        lo = max(low, hi - window + 1)
        chunk = [rec async for rec in read_range(nc, hs, flt, StartAt(seq=lo), hi, on_subjects)]
        found[:0] = chunk
        hi, window = lo - 1, window * 2
    return found[-n:]


async def read_from(
    nc: Client,
    hs: HiveStream,
    flt: EventFilter,
    since: datetime | None = None,
    from_seq: int | None = None,
    last: int | None = None,
) -> list[Record]:
    """Matching records from a time or a sequence up to `hs.last_seq` (the last `last` of them)."""
    if from_seq is not None and last is not None:
        return await last_matching(nc, hs, flt, last, floor=from_seq)
    start = StartAt(seq=max(from_seq or 1, 1)) if since is None else StartAt(time=since)
    kept: collections.deque[Record] = collections.deque(maxlen=last)
    async for rec in read_range(nc, hs, flt, start, hs.last_seq):
        kept.append(rec)
    return list(kept)


async def read_backlog(
    nc: Client,
    streams: list[HiveStream],
    flt: EventFilter,
    last: int | None = 10,
    since: datetime | None = None,
    from_seq: int | None = None,
) -> list[Record]:
    """What `tail` prints before following.

    With neither `since` nor `from_seq`: the last `last` matching records. With
    one of them: every matching record from there, or only the last `last` if
    given. Several hives are merged by (ts, id); one hive keeps stream order.
    """
    per_hive: list[list[Record]] = []
    for hs in streams:
        try:
            if since is None and from_seq is None and last is not None:
                per_hive.append(await last_matching(nc, hs, flt, last))
            else:
                per_hive.append(await read_from(nc, hs, flt, since, from_seq, last))
        except js_errors.NotFoundError:
            if len(streams) == 1:
                raise NoStream(f"stream {hs.stream} disappeared while it was read") from None
    if len(per_hive) == 1:
        return per_hive[0]
    merged = sorted((r for recs in per_hive for r in recs), key=Record.sort_key)
    return merged[-last:] if last is not None else merged


async def follow_stream(
    nc: Client, hs: HiveStream, flt: EventFilter
) -> AsyncGenerator[Record, None]:
    """Matching records of one stream after `hs.last_seq`, live, until cancelled."""
    f = flt.for_hive(hs.hive)
    start = StartAt(seq=hs.last_seq + 1)
    msgs = read_ordered(nc, hs.stream, f.subjects(), start, follow=True)
    async with contextlib.aclosing(_matching(hs.hive, f, msgs)) as records:
        async for rec in records:
            yield rec


async def follow_streams(
    nc: Client, streams: list[HiveStream], flt: EventFilter
) -> AsyncGenerator[Record, None]:
    """Follow several streams at once; records come out as they arrive.

    Use with `contextlib.aclosing` so the readers stop when the caller does.
    """
    if len(streams) == 1:
        async with contextlib.aclosing(follow_stream(nc, streams[0], flt)) as live:
            async for rec in live:
                yield rec
        return
    queue: asyncio.Queue[Record | BaseException] = asyncio.Queue(maxsize=10_000)

    async def pump(hs: HiveStream) -> None:
        try:
            async with contextlib.aclosing(follow_stream(nc, hs, flt)) as live:
                async for rec in live:
                    await queue.put(rec)
        except js_errors.NotFoundError:
            return  # that hive's stream was deleted: the others go on
        except Exception as exc:  # any reader's failure is the caller's
            await queue.put(exc)

    tasks = [asyncio.create_task(pump(hs)) for hs in streams]
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
