"""The sqlite event log: rows keyed by stream seq, unique ids, a hash chain, atomic batches."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive.bus.records import subject_for
from hyperhive.errors import EventLogError
from hyperhive.eventlog import store as eventlog_module
from hyperhive.eventlog.store import GENESIS, EventLog, Row, StreamMessage, chain_hash
from hyperhive.events import AnyEvent, encode_event
from tests.helpers import turn_started

HIVE = "h1"


def message(seq: int, agent: str = "alice", hive: str = HIVE) -> StreamMessage:
    event = turn_started(hive, agent, seq)
    return StreamMessage(seq, subject_for(event), encode_event(event))


def messages(first: int, last: int) -> list[StreamMessage]:
    return [message(seq) for seq in range(first, last + 1)]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    opened = EventLog(tmp_path / "events.sqlite", HIVE)
    yield opened
    opened.close()


def test_rows_are_keyed_by_stream_seq_and_hash_chained(log: EventLog) -> None:
    batch = [message(1), message(2, "bob"), message(3)]

    assert log.append(batch) == 3

    rows = list(log.rows())
    assert [r.seq for r in rows] == [1, 2, 3]
    assert [r.raw for r in rows] == [m.data for m in batch]
    assert [r.agent for r in rows] == ["alice", "bob", "alice"]
    assert {r.kind for r in rows} == {"turn.started"}
    assert all(r.error is None and r.hive == HIVE for r in rows)
    prev = GENESIS
    for row, msg in zip(rows, batch, strict=True):
        assert row.hash == chain_hash(prev, msg.seq, msg.subject, msg.data)
        prev = row.hash
    assert log.last_hash() == rows[-1].hash
    assert log.position() == 3


def test_an_event_id_is_unique_among_good_rows(log: EventLog) -> None:
    log.append([message(1)])
    first = next(log.rows())

    with pytest.raises(sqlite3.IntegrityError):
        log.conn.execute(
            "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                2,
                first.id,
                first.ts,
                HIVE,
                "alice",
                first.kind,
                first.subject,
                first.raw,
                None,
                b"x" * 32,
            ),
        )


def test_append_is_idempotent(log: EventLog) -> None:
    batch = messages(1, 5)
    log.append(batch)
    before = list(log.dump())

    assert log.append(batch) == 0
    assert list(log.dump()) == before


def test_an_overlapping_batch_writes_only_what_is_new(log: EventLog) -> None:
    log.append(messages(1, 5))
    first_five = list(log.rows())

    assert log.append(messages(3, 8)) == 3

    rows = list(log.rows())
    assert [r.seq for r in rows] == list(range(1, 9))
    assert rows[:5] == first_five
    assert log.position() == 8


def test_a_malformed_message_is_kept_as_a_row_with_its_error(log: EventLog) -> None:
    good = message(1)
    garbage = StreamMessage(2, good.subject, b"\xffnot json")
    bob_event = turn_started(HIVE, "bob", 3)
    mislabelled = StreamMessage(
        3, good.subject, encode_event(bob_event)
    )  # bob's event on alice's subject
    nowhere = StreamMessage(4, "hive.h1.evt.x", encode_event(turn_started(HIVE, "alice", 4)))
    later = message(5)

    assert log.append([good, garbage, mislabelled, nowhere, later]) == 5

    rows = {r.seq: r for r in log.rows()}
    assert rows[1].error is None
    assert "not an event envelope" in (rows[2].error or "")
    assert (rows[2].id, rows[2].kind, rows[2].agent, rows[2].raw) == (
        None,
        None,
        "alice",
        garbage.data,
    )
    assert "agent" in (rows[3].error or "")
    assert rows[3].id is None
    assert "not a hyperhive event subject" in (rows[4].error or "")
    assert rows[4].agent is None
    assert rows[5].error is None
    assert log.position() == 5


def test_a_wrong_hive_in_the_event_is_an_error_row(log: EventLog) -> None:
    other = turn_started("h2", "alice", 1)
    msg = StreamMessage(1, message(1).subject, encode_event(other))

    log.append([msg])

    row = next(log.rows())
    assert "hive" in (row.error or "")
    assert row.hive == HIVE


@pytest.mark.parametrize("same_batch", [True, False], ids=["same-batch", "later-batch"])
def test_an_event_id_seen_again_after_the_duplicate_window_is_a_duplicate_row(
    log: EventLog, same_batch: bool
) -> None:
    original = message(1)
    republished = StreamMessage(3, original.subject, original.data)
    if same_batch:
        log.append([original, message(2), republished, message(4)])
    else:
        log.append([original, message(2)])
        log.append([republished, message(4)])

    rows = {r.seq: r for r in log.rows()}
    assert sorted(rows) == [1, 2, 3, 4]
    assert rows[1].error is None
    assert rows[3].error == "duplicate event id (first stored at seq 1)"
    assert rows[3].id == rows[1].id
    assert rows[3].raw == original.data
    assert rows[4].error is None
    assert rows[3].hash == chain_hash(rows[2].hash, 3, original.subject, original.data)
    assert log.position() == 4


def test_refuses_to_open_the_log_of_another_hive(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    first = EventLog(path, "h1")
    first.append([message(1)])
    first.close()

    with pytest.raises(EventLogError, match=r"hive 'h1', not 'h2'"):
        EventLog(path, "h2")
    with pytest.raises(EventLogError, match=r"hive 'h1', not 'h2'"):
        EventLog(path, "h2", readonly=True)
    reopened = EventLog(path, "h1", readonly=True)
    assert reopened.count() == 1
    reopened.close()


def test_a_readonly_log_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EventLogError, match="no event log"):
        EventLog(tmp_path / "missing.sqlite", HIVE, readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_batch_that_fails_midway_writes_nothing(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.append(messages(1, 2))
    before = list(log.dump())
    real_decode_row = eventlog_module.decode_row

    def crash_on_seven(msg: StreamMessage, hive: str, prev: bytes) -> tuple[Row, AnyEvent | None]:
        if msg.seq == 7:
            raise RuntimeError("crash while writing seq 7")
        return real_decode_row(msg, hive, prev)

    monkeypatch.setattr(eventlog_module, "decode_row", crash_on_seven)
    batch = messages(5, 8)  # also starts past a gap (3..4), recorded in the same transaction
    with pytest.raises(RuntimeError, match="seq 7"):
        log.append(batch, first_available=5)

    assert list(log.dump()) == before
    assert log.position() == 2
    assert log.gaps() == {}

    monkeypatch.setattr(eventlog_module, "decode_row", real_decode_row)
    assert log.append(batch, first_available=5) == 4
    assert [r.seq for r in log.rows()] == [1, 2, 5, 6, 7, 8]
    assert log.position() == 8


def test_a_crash_between_rows_and_position_writes_neither(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.append(messages(1, 2))
    before = list(log.dump())
    real_execute = log.conn.execute

    class CrashingConnection:
        """The log's connection, dying at the moment the position is written."""

        def __getattr__(self, name: str) -> object:
            return getattr(real_conn, name)

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql.startswith("INSERT INTO positions"):
                raise sqlite3.OperationalError("disk I/O error")
            return real_execute(sql, *args)

    real_conn = log.conn
    monkeypatch.setattr(log, "conn", CrashingConnection())
    with pytest.raises(EventLogError, match="disk I/O error"):
        log.append(messages(3, 5))
    monkeypatch.setattr(log, "conn", real_conn)

    assert list(log.dump()) == before
    assert log.position() == 2


def test_messages_gone_from_the_stream_are_recorded_as_a_gap(log: EventLog) -> None:
    log.append(messages(1, 2))

    log.append(messages(5, 6), first_available=5)

    assert log.gaps() == {3: (4, "expired from the stream before it was projected")}
    assert [r.seq for r in log.rows()] == [1, 2, 5, 6]
    assert log.position() == 6


@pytest.mark.parametrize(
    "first_available", [None, 1, 4], ids=["unknown", "all-there", "partly-there"]
)
def test_a_jump_over_messages_still_in_the_stream_is_refused(
    log: EventLog, first_available: int | None
) -> None:
    log.append(messages(1, 2))
    before = list(log.dump())

    with pytest.raises(EventLogError, match=r"refusing to skip 3\.\.4"):
        log.append(messages(5, 6), first_available=first_available)

    assert list(log.dump()) == before
    assert log.gaps() == {}


def test_two_logs_on_one_file_never_write_a_row_twice(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    a, b = EventLog(path, HIVE), EventLog(path, HIVE)
    try:
        a.append(messages(1, 3))
        assert b.append(messages(1, 5)) == 2  # b re-reads the position inside its transaction
        assert a.append(messages(4, 6)) == 1
    finally:
        a.close()
        b.close()
    check = EventLog(path, HIVE, readonly=True)
    assert [r.seq for r in check.rows()] == [1, 2, 3, 4, 5, 6]
    check.close()
