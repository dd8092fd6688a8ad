"""Reading the sqlite event log: export's rows, filtered like tail, and its stats."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from hyperhive.bus import subjects
from hyperhive.bus.eventlog import EventLog
from hyperhive.bus.reader import Record, hive_filter, record_matches, row_record
from hyperhive.bus.subjects import EventFilter
from hyperhive.timefmt import storage_ts


def log_start_seq(log: EventLog, since: datetime | None, from_seq: int | None) -> int:
    """The first log sequence to read: `from_seq`, or the first row stamped at/after `since`."""
    start = max(from_seq or 1, 1)
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
    f = hive_filter(flt, log.hive)
    for row in log.rows(after_seq=log_start_seq(log, since, from_seq) - 1):
        rec = row_record(row)
        if record_matches(f, rec):
            yield rec


@dataclass
class LogStats:
    rows: int
    position: int
    first_seq: int | None
    last_seq: int | None
    first_ts: str | None
    last_ts: str | None
    malformed: int
    by_kind: dict[str, int]
    by_agent: dict[str, int]


def log_stats(log: EventLog) -> LogStats:
    """Counts per kind and per agent, and the time span, of the events in the log."""
    q = log.conn.execute
    ok = "FROM events WHERE error IS NULL"
    rows, first_seq, last_seq = q("SELECT count(*), min(seq), max(seq) FROM events").fetchone()
    first_ts, last_ts = q(f"SELECT min(ts), max(ts) {ok} AND ts IS NOT NULL").fetchone()
    malformed = q("SELECT count(*) FROM events WHERE error IS NOT NULL").fetchone()[0]
    by_kind = dict(q(f"SELECT kind, count(*) {ok} GROUP BY 1 ORDER BY 1").fetchall())
    wide = (subjects.HIVE_WIDE,)
    by_agent = dict(q(f"SELECT coalesce(agent, ?), count(*) {ok} GROUP BY 1 ORDER BY 1", wide))
    return LogStats(
        int(rows),
        log.position(),
        first_seq,
        last_seq,
        first_ts,
        last_ts,
        int(malformed),
        by_kind,
        by_agent,
    )
