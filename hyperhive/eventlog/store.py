"""The sqlite event log: one row per stream message, hash-chained, position in the same commit.

    events(seq PK = stream sequence, id UNIQUE, ts, hive, agent, kind, subject, raw, error, hash)
    positions(projection PK, seq)     where each projection has got to
    gaps(from_seq, to_seq, reason)    stream ranges that were gone before they were projected
    meta(key PK, value)               hive, stream, schema version

Each row's hash is sha256(previous row's hash || seq || subject || raw), so an
edited, deleted or reordered row breaks the chain from there on. Rows and the
position are written in one transaction (`BEGIN IMMEDIATE`, position re-read
inside it), so a crash at any point never loses or duplicates a row, and two
writers on one file never interleave. A message that is not a valid event is
kept as a row with `error` set: nothing on the stream is dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from hyperhive.bus import subjects
from hyperhive.bus.records import decode_message
from hyperhive.errors import EventLogError, HyperhiveError, MalformedEvent, WrongHive
from hyperhive.eventlog.projections import Projection
from hyperhive.events import AnyEvent
from hyperhive.names import check_hive
from hyperhive.timefmt import storage_ts

SCHEMA_VERSION = 1
EVENTLOG = "eventlog"
GENESIS = bytes(32)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT,
    ts TEXT,
    hive TEXT NOT NULL,
    agent TEXT,
    kind TEXT,
    subject TEXT NOT NULL,
    raw BLOB NOT NULL,
    error TEXT,
    hash BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events(id) WHERE error IS NULL;
CREATE TABLE IF NOT EXISTS positions (projection TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gaps (from_seq INTEGER PRIMARY KEY, to_seq INTEGER NOT NULL, reason TEXT NOT NULL);
"""


class StreamMessage(NamedTuple):
    """One message as read from the stream: what the log stores."""

    seq: int
    subject: str
    data: bytes


class Row(NamedTuple):
    seq: int
    id: str | None
    ts: str | None
    hive: str
    agent: str | None
    kind: str | None
    subject: str
    raw: bytes
    error: str | None
    hash: bytes


def chain_hash(prev: bytes, seq: int, subject: str, raw: bytes) -> bytes:
    """sha256(prev ‖ seq as 8 bytes big-endian ‖ subject ‖ NUL ‖ raw)."""
    return hashlib.sha256(
        b"".join((prev, seq.to_bytes(8, "big"), subject.encode(), b"\0", raw))
    ).digest()


def to_row(msg: StreamMessage, hive: str, prev: bytes) -> Row:
    """Decode and check one message; a bad one becomes a row with `error` set.

    Never raises for what a message holds: whatever a producer put on the wire
    is stored, with the reason it is not a valid event.
    """
    return decode_row(msg, hive, prev)[0]


def decode_row(msg: StreamMessage, hive: str, prev: bytes) -> tuple[Row, AnyEvent | None]:
    """`to_row`, and the decoded event (None for a bad message)."""
    hash_ = chain_hash(prev, msg.seq, msg.subject, msg.data)
    try:
        event = decode_message(msg.subject, msg.data)
        ts = storage_ts(event.ts)
    except (MalformedEvent, ValueError, OverflowError) as exc:
        agent = None
        with contextlib.suppress(HyperhiveError):
            agent = subjects.parse_subject(msg.subject).agent
        error = str(exc)[:1000] or type(exc).__name__
        row = Row(msg.seq, None, None, hive, agent, None, msg.subject, msg.data, error, hash_)
        return row, None
    row = Row(
        msg.seq,
        event.id,
        ts,
        event.hive,
        event.agent,
        event.kind,
        msg.subject,
        msg.data,
        None,
        hash_,
    )
    return row, event


FILE_MODE = 0o600  # the log holds every message body: only its owner reads it


def _event_of(row: Row) -> AnyEvent | None:
    try:
        return decode_message(row.subject, row.raw)
    except MalformedEvent:
        return None


def open_db(path: Path) -> sqlite3.Connection:
    """Open (creating, private) an event log file; WAL, one writer at a time.

    The file is created 0600 before sqlite opens it, so its -wal and -shm files
    (which sqlite gives the main file's mode) are private too.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, FILE_MODE))
    except OSError as exc:
        raise EventLogError(f"cannot open the event log {path}: {exc.strerror or exc}") from exc
    conn = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise EventLogError(f"{path} is not a usable event log: {exc}") from exc
    return conn


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing event log for reading; anything unusable is an `EventLogError`."""
    if not path.exists():
        raise EventLogError(f"no event log at {path}: run the projector or `hive-events replay`")
    if not path.is_file():
        raise EventLogError(f"{path} is not an event log (not a regular file)")
    conn = None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
        conn.execute("SELECT count(*) FROM meta").fetchone()
        conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        conn.execute("SELECT seq FROM positions LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise EventLogError(f"{path} is not a usable event log: {exc}") from exc
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (sqlite may already have rolled it back)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class EventLog:
    """The event log of one hive in one sqlite file. Synchronous: call it from a thread."""

    def __init__(
        self,
        path: Path,
        hive: str,
        readonly: bool = False,
        projections: Sequence[Projection] = (),
    ) -> None:
        self.path = path
        self.hive = check_hive(hive)
        self.projections = tuple(projections)
        if readonly:
            self.conn = open_readonly(path)
        else:
            self.conn = open_db(path)
            try:
                self._claim()
                self._check_hive()
                self._open_projections()
            except sqlite3.Error as exc:
                self.conn.close()
                raise EventLogError(f"cannot write the event log {path}: {exc}") from exc
            except BaseException:
                self.conn.close()
                raise
            return
        self._check_hive()

    def _open_projections(self) -> None:
        """Load each projection; one behind the log catches up from the log's rows."""
        for p in self.projections:
            p.create(self.conn)
            self._reload(p)
        for p in self.projections:
            at, end = self.position(p.name), self.position()
            if at >= end:
                continue
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for row in self.rows(after_seq=at):
                    if row.error is None:
                        event = _event_of(row)
                        if event is not None:
                            p.apply(row.seq, event)
                p.save(self.conn)
                self._set_position(p.name, end)
                self.conn.execute("COMMIT")
            except BaseException:
                rollback(self.conn)
                self._reload(p)
                raise

    def _reload(self, p: Projection) -> None:
        p.load(self.conn, self.position(p.name))

    def _set_position(self, name: str, seq: int) -> None:
        self.conn.execute(
            "INSERT INTO positions VALUES (?, ?) "
            "ON CONFLICT(projection) DO UPDATE SET seq=excluded.seq",
            (name, seq),
        )

    def _claim(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for key, value in (
                ("hive", self.hive),
                ("stream", subjects.stream_name(self.hive)),
                ("schema", str(SCHEMA_VERSION)),
            ):
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
            self.conn.execute("COMMIT")
        except BaseException:
            rollback(self.conn)
            raise

    def _check_hive(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key='hive'").fetchone()
        if row and row[0] != self.hive:
            raise WrongHive(f"{self.path} holds the events of hive {row[0]!r}, not {self.hive!r}")

    def close(self) -> None:
        self.conn.close()

    def position(self, projection: str = EVENTLOG) -> int:
        row = self.conn.execute(
            "SELECT seq FROM positions WHERE projection=?", (projection,)
        ).fetchone()
        return int(row[0]) if row else 0

    def last_hash(self) -> bytes:
        row = self.conn.execute("SELECT hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return bytes(row[0]) if row else GENESIS

    def append(self, msgs: list[StreamMessage], first_available: int | None = None) -> int:
        """Write `msgs` past the current position, and the position, in one transaction.

        Messages at or below the position are skipped (redeliveries). Returns the
        number of rows written. `first_available` is the stream's first sequence,
        used to record a gap when messages expired before they were projected.
        """
        conn = self.conn
        try:
            return self._append(conn, msgs, first_available)
        except sqlite3.Error as exc:
            # A full or read-only disk: nothing of the batch was written; say so in
            # one line (the projector logs it, backs off and tries again).
            raise EventLogError(f"cannot write the event log {self.path}: {exc}") from None

    def _append(
        self, conn: sqlite3.Connection, msgs: list[StreamMessage], first_available: int | None
    ) -> int:
        conn.execute("BEGIN IMMEDIATE")
        try:
            pos = self.position()
            prev = self.last_hash()
            rows: list[Row] = []
            decoded: list[AnyEvent | None] = []
            for msg in msgs:
                if msg.seq <= pos:
                    continue
                if msg.seq != pos + 1:
                    if first_available is None or first_available < msg.seq:
                        # The stream still has what lies between: writing on would
                        # lose it for good (e.g. an earlier batch's write failed).
                        raise EventLogError(
                            f"{self.path}: next message is seq {msg.seq} but the log is at "
                            f"{pos}; refusing to skip {pos + 1}..{msg.seq - 1}"
                        )
                    conn.execute(
                        "INSERT OR REPLACE INTO gaps VALUES (?, ?, ?)",
                        (pos + 1, msg.seq - 1, "expired from the stream before it was projected"),
                    )
                row, event = decode_row(msg, self.hive, prev)
                rows.append(row)
                decoded.append(event)
                prev, pos = row.hash, msg.seq
            if rows:
                stored = self._insert(rows)
                self._set_position(EVENTLOG, pos)
                for p in self.projections:
                    for row, event in zip(stored, decoded, strict=True):
                        if event is not None and row.error is None:  # not a duplicate
                            p.apply(row.seq, event)
                    p.save(conn)
                    self._set_position(p.name, pos)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            for p in self.projections:
                self._reload(p)  # its memory may be ahead of what was rolled back
            raise
        return len(rows)

    def _insert(self, rows: list[Row]) -> list[Row]:
        """Insert `rows`; returns them as stored (a seen-before id marked as a duplicate)."""
        sql = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?)"
        try:
            self.conn.execute("SAVEPOINT batch")
            self.conn.executemany(sql, rows)
            self.conn.execute("RELEASE batch")
            return rows
        except sqlite3.IntegrityError:
            self.conn.execute("ROLLBACK TO batch")
            self.conn.execute("RELEASE batch")
        # Some event id was seen before (republished after the duplicate window):
        # keep the row, marked, so the log still mirrors the stream one to one.
        seen: dict[str, int] = {}
        stored: list[Row] = []
        for r in rows:
            first = seen.get(r.id) if r.id else None
            if r.id and first is None:
                got = self.conn.execute(
                    "SELECT seq FROM events WHERE id=? AND error IS NULL", (r.id,)
                ).fetchone()
                first = got[0] if got else None
            if first is not None:
                r = r._replace(error=f"duplicate event id (first stored at seq {first})")
            elif r.id and r.error is None:
                seen[r.id] = r.seq
            self.conn.execute(sql, r)
            stored.append(r)
        return stored

    # ------------------------------------------------------------ reading

    def rows(self, after_seq: int = 0, until_seq: int | None = None) -> Iterator[Row]:
        sql = "SELECT seq,id,ts,hive,agent,kind,subject,raw,error,hash FROM events WHERE seq > ?"
        args: list[object] = [after_seq]
        if until_seq is not None:
            sql += " AND seq <= ?"
            args.append(until_seq)
        for r in self.conn.execute(sql + " ORDER BY seq", args):
            yield Row(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]), r[8], bytes(r[9]))

    def gaps(self) -> dict[int, tuple[int, str]]:
        return {
            a: (b, why)
            for a, b, why in self.conn.execute("SELECT from_seq, to_seq, reason FROM gaps")
        }

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def dump(self) -> Iterable[str]:
        """Every table's content as SQL, for comparing two logs."""
        return self.conn.iterdump()
