"""Reading the sqlite event log: export's rows (filtered like tail) and the hive's stats.

`collect_stats` is the use case behind `hive-events stats` (and the dashboard's
numbers): the log's counts, the stream's state, the lag between them and the
projector's consumer, as one typed struct.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import msgspec
from nats.aio.client import Client
from nats.js import errors as js_errors

from hyperhive.bus import subjects
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.records import Record, record_matches, to_record
from hyperhive.eventlog.store import EventLog, Row
from hyperhive.names import HIVE_WIDE
from hyperhive.timefmt import storage_ts


def row_record(row: Row) -> Record:
    """A log row as a record; a duplicate row keeps its event and its `error`."""
    rec = to_record(row.hive, row.seq, row.subject, row.raw)
    if row.error is not None and rec.event is not None:
        return Record(rec.hive, rec.seq, rec.subject, rec.data, rec.event, row.error)
    return rec


SQLITE_MAX_INT = 2**63 - 1  # no row's seq is larger: a larger --from-seq reads nothing


def log_start_seq(log: EventLog, since: datetime | None, from_seq: int | None) -> int:
    """The first log sequence to read: `from_seq`, or the first row stamped at/after `since`.

    Clamped to sqlite's largest integer, so a `from_seq` past every row (even past
    what sqlite can hold) reads nothing, as `tail --from-seq` does on the stream.
    """
    start = min(max(from_seq or 1, 1), SQLITE_MAX_INT)
    if since is not None:
        row = log.conn.execute(
            "SELECT min(seq) FROM events WHERE ts >= ?", (storage_ts(since),)
        ).fetchone()
        first = row[0] if row and row[0] is not None else log.position() + 1
        start = max(start, int(first))
    return start


def read_log(
    log: EventLog, flt: EventFilter, since: datetime | None = None, from_seq: int | None = None
) -> Iterator[Record]:
    """Matching rows of the sqlite log as records, in sequence order."""
    f = flt.for_hive(log.hive)
    for row in log.rows(after_seq=log_start_seq(log, since, from_seq) - 1):
        rec = row_record(row)
        if record_matches(f, rec):
            yield rec


class LogStats(msgspec.Struct, kw_only=True):
    """What the event log holds."""

    path: str
    rows: int
    position: int
    first_seq: int | None
    last_seq: int | None
    first_ts: str | None
    last_ts: str | None
    malformed: int
    by_kind: dict[str, int]
    by_agent: dict[str, int]


class StreamStats(msgspec.Struct, kw_only=True):
    """Where the hive's stream stands."""

    name: str
    messages: int
    bytes: int
    first_seq: int
    last_seq: int


class ConsumerStats(msgspec.Struct, kw_only=True):
    """The projector's durable consumer."""

    name: str
    num_pending: int
    num_ack_pending: int


class HiveStats(msgspec.Struct, kw_only=True):
    """`hive-events stats`: the log, the stream, the lag between them, the projector."""

    hive: str
    log: LogStats | None
    stream: StreamStats | None
    projector: ConsumerStats | None
    lag: int | None


def log_stats(log: EventLog) -> LogStats:
    """Counts per kind and per agent, and the time span, of the events in the log."""
    q = log.conn.execute
    ok = "FROM events WHERE error IS NULL"
    rows, first_seq, last_seq = q("SELECT count(*), min(seq), max(seq) FROM events").fetchone()
    first_ts, last_ts = q(f"SELECT min(ts), max(ts) {ok} AND ts IS NOT NULL").fetchone()
    malformed = q("SELECT count(*) FROM events WHERE error IS NOT NULL").fetchone()[0]
    by_kind = dict(q(f"SELECT kind, count(*) {ok} GROUP BY 1 ORDER BY 1").fetchall())
    wide = (HIVE_WIDE,)
    by_agent = dict(q(f"SELECT coalesce(agent, ?), count(*) {ok} GROUP BY 1 ORDER BY 1", wide))
    return LogStats(
        path=str(log.path),
        rows=int(rows),
        position=log.position(),
        first_seq=first_seq,
        last_seq=last_seq,
        first_ts=first_ts,
        last_ts=last_ts,
        malformed=int(malformed),
        by_kind=by_kind,
        by_agent=by_agent,
    )


def read_log_stats(path: Path, hive: str) -> LogStats | None:
    """The stats of the log at `path`, or None if there is none yet."""
    if not path.exists():
        return None
    log = EventLog(path, hive, readonly=True)
    try:
        return log_stats(log)
    finally:
        log.close()


async def stream_stats(
    nc: Client, hive: str, durable: str = subjects.PROJECTOR_DURABLE
) -> tuple[StreamStats | None, ConsumerStats | None]:
    """The hive's stream and its projector consumer (None for what does not exist)."""
    js = nc.jetstream()
    name = subjects.stream_name(hive)
    try:
        state = (await js.stream_info(name)).state
    except js_errors.NotFoundError:
        return None, None
    stream = StreamStats(
        name=name,
        messages=state.messages,
        bytes=state.bytes,
        first_seq=state.first_seq,
        last_seq=state.last_seq,
    )
    try:
        info = await js.consumer_info(name, durable)
    except js_errors.NotFoundError:
        return stream, None
    return stream, ConsumerStats(
        name=durable,
        num_pending=info.num_pending or 0,
        num_ack_pending=info.num_ack_pending or 0,
    )


async def collect_stats(nc: Client, hive: str, path: Path) -> HiveStats:
    """Log counts, stream state, lag and the projector consumer of one hive."""
    log = await asyncio.to_thread(read_log_stats, path, hive)
    stream, projector = await stream_stats(nc, hive)
    lag = None if log is None or stream is None else max(0, stream.last_seq - log.position)
    return HiveStats(hive=hive, log=log, stream=stream, projector=projector, lag=lag)
