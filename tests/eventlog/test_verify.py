"""Verifying an event log: the hash chain catches edits, deletions and swaps; the stream catches forgeries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client

from hyperhive.bus import subjects
from hyperhive.eventlog.store import GENESIS, EventLog, StreamMessage, chain_hash
from hyperhive.eventlog.verify import VerifyReport, verify_chain, verify_stream
from hyperhive.events import MessageSent, encode_event
from tests.helpers import publish_many, publish_raw, turn_events

N = 12


async def _log_of_stream(nc: Client, hive: str, path: Path) -> EventLog:
    """An event log built straight from the stream, message by message (no projector)."""
    js = nc.jetstream()
    stream = subjects.stream_name(hive)
    last = (await js.stream_info(stream)).state.last_seq
    batch = []
    for seq in range(1, last + 1):
        msg = await js.get_msg(stream, seq)
        assert msg.subject is not None
        assert msg.data is not None
        batch.append(StreamMessage(seq, msg.subject, msg.data))
    log = EventLog(path, hive)
    log.append(batch)
    return log


@pytest.fixture
async def stream_log(nc: Client, hive: str, tmp_path: Path) -> AsyncIterator[EventLog]:
    """N stream messages (events, a message, one malformed) and a faithful log of them."""
    js = nc.jetstream()
    await publish_many(js, turn_events(hive, 8))
    await publish_raw(js, hive, subjects.event_subject(hive, "alice", "turn.started"), b"not json")
    message = MessageSent(
        hive=hive, agent="alice", source="harness", msg_id="m1", from_="alice", to="bob", body="hi"
    )
    await publish_many(js, [message, *turn_events(hive, N - 10)])
    log = await _log_of_stream(nc, hive, tmp_path / "events.sqlite")
    assert log.count() == N
    yield log
    log.close()


def _chain(log: EventLog) -> VerifyReport:
    report = VerifyReport()
    verify_chain(log, report)
    return report


def _rehash_from(log: EventLog, seq: int) -> None:
    """Recompute every hash from `seq` on, as a forger covering their tracks would."""
    prev = GENESIS
    for row in log.rows():
        if row.seq >= seq:
            new = chain_hash(prev, row.seq, row.subject, row.raw)
            log.conn.execute("UPDATE events SET hash=? WHERE seq=?", (new, row.seq))
            prev = new
        else:
            prev = row.hash


@pytest.mark.nats
async def test_a_faithful_log_passes_both_checks(nc: Client, stream_log: EventLog) -> None:
    report = _chain(stream_log)
    await verify_stream(nc, stream_log, report)

    assert report.ok, report.problems
    assert (report.rows, report.first_seq, report.last_seq, report.position) == (N, 1, N, N)
    assert report.stream_checked == N
    assert report.stream_lag == 0


@pytest.mark.nats
async def test_events_published_after_the_log_are_lag_not_problems(
    nc: Client, hive: str, stream_log: EventLog
) -> None:
    await publish_many(nc.jetstream(), turn_events(hive, 3))

    report = _chain(stream_log)
    await verify_stream(nc, stream_log, report)

    assert report.ok, report.problems
    assert report.stream_lag == 3


@pytest.mark.nats
@pytest.mark.parametrize(
    ("sql", "says"),
    [
        (
            "UPDATE events SET raw = CAST(replace(CAST(raw AS TEXT), '\"t', '\"x') AS BLOB) WHERE seq = 7",
            "hash chain",
        ),
        ("UPDATE events SET kind = 'turn.finished' WHERE seq = 7", "disagree with its raw"),
        ("UPDATE events SET agent = 'mallory' WHERE seq = 7", "disagree with its raw"),
        ("UPDATE events SET subject = 'hive.x.evt.alice.turn.started' WHERE seq = 7", "hash chain"),
    ],
    ids=["raw", "kind", "agent", "subject"],
)
async def test_an_edited_row_is_caught_at_its_seq(
    nc: Client, stream_log: EventLog, sql: str, says: str
) -> None:
    before = next(stream_log.rows(after_seq=6, until_seq=7))
    stream_log.conn.execute(sql)
    assert next(stream_log.rows(after_seq=6, until_seq=7)) != before

    report = _chain(stream_log)

    assert report.first_problem is not None
    assert report.first_problem.seq == 7, report.problems
    assert says in report.first_problem.message


@pytest.mark.nats
@pytest.mark.parametrize("deleted", [1, 7, N], ids=["first", "middle", "end"])
async def test_a_deleted_row_is_caught_at_its_seq(stream_log: EventLog, deleted: int) -> None:
    stream_log.conn.execute("DELETE FROM events WHERE seq = ?", (deleted,))

    report = _chain(stream_log)

    assert report.first_problem is not None, "deletion not noticed"
    assert report.first_problem.seq == deleted, report.problems
    assert "missing" in report.first_problem.message


@pytest.mark.nats
async def test_a_swapped_pair_is_caught_at_the_first_of_the_two(stream_log: EventLog) -> None:
    five, six = list(stream_log.rows(after_seq=4, until_seq=6))
    for seq, row in ((5, six), (6, five)):
        stream_log.conn.execute(
            "UPDATE events SET raw=?, hash=? WHERE seq=?", (row.raw, row.hash, seq)
        )

    report = _chain(stream_log)

    assert report.first_problem is not None
    assert report.first_problem.seq == 5, report.problems


@pytest.mark.nats
async def test_a_forged_but_self_consistent_chain_is_caught_by_the_stream(
    nc: Client, stream_log: EventLog
) -> None:
    row = next(stream_log.rows(after_seq=6, until_seq=7))
    forged = msgspec.json.decode(row.raw)
    forged["turn_id"] = "forged"
    stream_log.conn.execute("UPDATE events SET raw=? WHERE seq=7", (msgspec.json.encode(forged),))
    _rehash_from(stream_log, 7)

    report = _chain(stream_log)
    assert report.ok, f"the forgery should be self-consistent: {report.problems}"
    await verify_stream(nc, stream_log, report)

    assert report.first_problem is not None
    assert report.first_problem.seq == 7, report.problems
    assert "differs from the stream" in report.first_problem.message


def test_a_log_with_error_and_duplicate_rows_verifies(tmp_path: Path) -> None:
    [a, b] = turn_events("h1", 2)
    subject = subjects.event_subject("h1", "alice", "turn.started")
    log = EventLog(tmp_path / "events.sqlite", "h1")
    log.append([StreamMessage(1, subject, encode_event(a)), StreamMessage(2, subject, b"{oops")])
    log.append(
        [StreamMessage(3, subject, encode_event(a)), StreamMessage(5, subject, encode_event(b))],
        first_available=5,  # seq 4 expired
    )

    report = _chain(log)
    log.close()

    assert report.ok, report.problems
    assert report.rows == 4
