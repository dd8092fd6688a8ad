"""The reader: records, exact last-N with any filter, follow without gap or duplicate, many hives."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import api as js_api

from hyperhive.bus import records, subjects
from hyperhive.bus import tail as reader
from hyperhive.bus.consume import StartAt
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.publish import publish_event
from hyperhive.bus.records import Record
from hyperhive.bus.stream import ensure_stream
from hyperhive.bus.tail import HiveStream
from hyperhive.config import HiveConfig
from hyperhive.errors import NoStream
from hyperhive.eventlog import query as logquery
from hyperhive.eventlog.replay import replay_stream
from hyperhive.eventlog.store import EventLog
from hyperhive.events import (
    Event,
    MessageSent,
    RawEvent,
    TurnFinished,
    TurnStarted,
    encode_event,
)
from tests.cli.test_hive_events_helpers import drop_streams  # noqa: F401 - a fixture

AGENTS = ("alice", "bob", "carol")


def started(hive: str, agent: str = "alice", n: int = 0) -> TurnStarted:
    return TurnStarted(
        hive=hive, agent=agent, source="harness", turn_id=f"t{n}", model="m", trigger="message"
    )


def finished(hive: str, agent: str = "alice", n: int = 0) -> TurnFinished:
    return TurnFinished(hive=hive, agent=agent, source="harness", turn_id=f"t{n}", duration_ms=1)


def message(hive: str, frm: str, to: str, n: int = 0) -> MessageSent:
    return MessageSent(
        hive=hive, agent=frm, source="harness", msg_id=f"m{n}", from_=frm, to=to, body="hi"
    )


async def publish(nc: Client, events: list[Event]) -> list[int]:
    js = nc.jetstream()
    return [(await publish_event(js, e)).seq for e in events]


async def state(nc: Client, hive: str) -> HiveStream:
    (hs,) = await reader.resolve_streams(nc, hive)
    return hs


# ---------------------------------------------------------------- records (no server)


def test_a_valid_event_becomes_a_record_with_its_event() -> None:
    e = message("h1", "alice", "bob")
    rec = records.to_record("h1", 7, subjects.inbox_subject("h1", "bob"), encode_event(e))
    assert rec.event == e
    assert (rec.seq, rec.agent, rec.kind, rec.malformed, rec.error) == (
        7,
        "alice",
        "message.sent",
        False,
        None,
    )


def test_bytes_that_are_no_event_become_a_malformed_record_judged_by_subject() -> None:
    stored = datetime(2026, 1, 31, 12, tzinfo=UTC)
    rec = records.to_record("h1", 3, "hive.h1.evt.bob.turn.started", b"\x00garbage", stored)
    assert rec.malformed
    assert rec.error
    assert (rec.agent, rec.kind, rec.ts) == ("bob", "turn.started", stored)
    assert records.record_matches(EventFilter(hive="h1", agents=("bob",)), rec)
    assert not records.record_matches(EventFilter(hive="h1", agents=("alice",)), rec)
    assert records.record_matches(EventFilter(hive="h1", kinds=("turn.*",)), rec)


def test_an_event_on_a_subject_that_contradicts_it_is_malformed() -> None:
    rec = records.to_record(
        "h1", 1, "hive.h1.evt.bob.turn.started", encode_event(started("h1", "alice"))
    )
    assert rec.malformed
    assert "agent" in (rec.error or "")


def test_an_unknown_kind_is_a_raw_event_record() -> None:
    data = b'{"id":"X","ts":"2026-01-31T12:00:00Z","hive":"h1","kind":"new.thing","agent":"bob","source":"s","n":1}'
    rec = records.to_record("h1", 1, "hive.h1.evt.bob.new.thing", data)
    assert isinstance(rec.event, RawEvent)
    assert rec.event.data == {"n": 1}
    assert records.record_matches(EventFilter(hive="h1", kinds=("new.*",)), rec)


def test_an_unparsable_subject_is_seen_only_by_an_unfiltered_reader() -> None:
    rec = records.to_record("h1", 1, "hive.h1.evt.x", b"{}")
    assert rec.agent is None
    assert rec.kind is None
    assert records.record_matches(EventFilter(hive="h1"), rec)
    assert records.record_matches(EventFilter(hive="*"), rec)
    assert not records.record_matches(EventFilter(hive="h1", agents=("bob",)), rec)
    assert not records.record_matches(EventFilter(hive="h2"), rec)


def test_records_of_several_hives_sort_by_time_then_id() -> None:
    a = started("h1", n=1)
    b = started("h2", n=2)
    ra = records.to_record(
        "h1", 50, subjects.event_subject("h1", "alice", "turn.started"), encode_event(a)
    )
    rb = records.to_record(
        "h2", 1, subjects.event_subject("h2", "alice", "turn.started"), encode_event(b)
    )
    assert sorted([rb, ra], key=Record.sort_key) == [ra, rb]


def test_a_hive_stream_is_recognised_by_its_name_and_subjects() -> None:
    def info(name: str, subs: list[str]) -> js_api.StreamInfo:
        result = js_api.StreamInfo.from_response(
            {
                "config": {"name": name, "subjects": subs},
                "state": {
                    "messages": 0,
                    "bytes": 0,
                    "first_seq": 0,
                    "last_seq": 0,
                    "consumer_count": 0,
                },
            }
        )
        assert isinstance(result, js_api.StreamInfo)
        return result

    assert (
        reader.hive_of_stream(info("HIVE_MY_HIVE", subjects.stream_subjects("my-hive")))
        == "my-hive"
    )
    assert reader.hive_of_stream(info("HIVE_X", ["other.>"])) is None
    assert reader.hive_of_stream(info("HIVE_X", subjects.stream_subjects("y"))) is None
    assert reader.hive_of_stream(info("ORDERS", subjects.stream_subjects("orders"))) is None
    assert reader.hive_of_stream(info("HIVE_A", ["hive.a\n.evt.>", "hive.A.evt.>"])) is None


# ---------------------------------------------------------------- against a server


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_last_matching_equals_a_full_read_filtered_for_any_filter(
    cfg: HiveConfig, nc: Client
) -> None:
    rng = random.Random(7)
    h = cfg.hive
    events: list[Event] = []
    for i in range(600):
        agent = rng.choice(AGENTS)
        r = rng.random()
        if r < 0.02:
            events.append(finished(h, agent, i))
        elif r < 0.1:
            events.append(message(h, agent, rng.choice(AGENTS), i))
        else:
            events.append(started(h, agent, i))
    await publish(nc, events)
    hs = await state(nc, h)
    everything = [
        r async for r in reader.read_range(nc, hs, EventFilter(hive=h), StartAt(seq=1), hs.last_seq)
    ]
    assert len(everything) == 600
    filters = [
        EventFilter(hive=h),
        EventFilter(hive=h, agents=("bob",)),
        EventFilter(hive=h, kinds=("turn.fin*",)),
        EventFilter(hive=h, agents=("carol",), kinds=("message.sent",)),
        EventFilter(hive=h, agents=("alice", "carol"), kinds=("turn.f*", "message.*")),
    ]
    for flt in filters:
        want_all = [r.seq for r in everything if records.record_matches(flt, r)]
        for n in (1, 3, 10, 70, 1000):
            got = await reader.last_matching(nc, hs, flt, n)
            assert [r.seq for r in got] == want_all[-n:], (flt, n)
        floor = everything[300].seq
        got = await reader.last_matching(nc, hs, flt, 1000, floor=floor)
        assert [r.seq for r in got] == [s for s in want_all if s >= floor], flt


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_read_from_a_time_or_a_sequence(cfg: HiveConfig, nc: Client) -> None:
    h = cfg.hive
    seqs = await publish(nc, [started(h, n=i) for i in range(4)])
    cut = datetime.now(UTC)
    seqs += await publish(nc, [started(h, n=i) for i in range(4, 7)])
    hs = await state(nc, h)
    flt = EventFilter(hive=h)
    assert [r.seq for r in await reader.read_from(nc, hs, flt, since=cut)] == seqs[4:]
    assert [r.seq for r in await reader.read_from(nc, hs, flt, since=cut, last=2)] == seqs[5:]
    assert [r.seq for r in await reader.read_from(nc, hs, flt, from_seq=seqs[2])] == seqs[2:]
    assert [r.seq for r in await reader.read_from(nc, hs, flt, from_seq=seqs[2], last=3)] == seqs[
        4:
    ]
    assert await reader.read_from(nc, hs, flt, from_seq=seqs[-1] + 1) == []


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_follow_goes_on_after_the_backlog_without_gap_or_duplicate(
    cfg: HiveConfig, nc: Client
) -> None:
    h = cfg.hive
    await publish(nc, [started(h, n=i) for i in range(5)])
    streams = await reader.resolve_streams(nc, h)
    flt = EventFilter(hive=h, agents=("bob",))
    backlog = await reader.read_backlog(nc, streams, flt, last=10)
    assert backlog == []
    # Published after the backlog's end but before following starts: still seen once.
    early = await publish(nc, [started(h, "bob", 100)])
    seen: list[int] = []
    got_all = asyncio.Event()

    async def follow() -> None:
        async with contextlib.aclosing(reader.follow_streams(nc, streams, flt)) as live:
            async for rec in live:
                seen.append(rec.seq)
                if len(seen) == 21:
                    got_all.set()
                    return

    task = asyncio.create_task(follow())
    later = await publish(nc, [started(h, ("bob", "alice")[i % 2], i) for i in range(40)])
    await asyncio.wait_for(got_all.wait(), 10)
    await task
    assert seen == early + later[::2]


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_many_hives_are_listed_merged_and_followed(cfg: HiveConfig, nc: Client) -> None:
    h1, h2 = cfg.hive, cfg.hive + "-two"
    js = nc.jetstream()
    await ensure_stream(js, h2, cfg.stream)
    foreign = "NOTHIVE_" + subjects.stream_name(h1)
    await js.add_stream(name=foreign, subjects=[f"elsewhere.{h1.replace('-', '_')}.>"])
    try:
        listed = {hs.hive: hs.stream for hs in await reader.list_hive_streams(nc)}
        assert listed[h1] == subjects.stream_name(h1)
        assert listed[h2] == subjects.stream_name(h2)
        assert foreign not in listed.values()
    finally:
        await js.delete_stream(foreign)
    agent = "z" + h1
    events = [started(h1 if i % 2 else h2, agent, i) for i in range(6)]
    for e in events:
        await publish_event(js, e)
    streams = [hs for hs in await reader.resolve_streams(nc, "*") if hs.hive in (h1, h2)]
    flt = EventFilter(hive="*", agents=(agent,))
    backlog = await reader.read_backlog(nc, streams, flt, last=4)
    assert [r.event.id for r in backlog if r.event] == [e.id for e in events[2:]]
    seen: list[str] = []
    done = asyncio.Event()

    async def follow() -> None:
        async with contextlib.aclosing(reader.follow_streams(nc, streams, flt)) as live:
            async for rec in live:
                seen.append(rec.hive)
                if len(seen) == 4:
                    done.set()
                    return

    task = asyncio.create_task(follow())
    for i in range(4):
        await publish_event(js, started(h1 if i % 2 else h2, agent, 10 + i))
    await asyncio.wait_for(done.wait(), 10)
    await task
    assert sorted(seen) == sorted([h1, h1, h2, h2])


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_a_missing_stream_is_a_refusal_naming_the_hive(cfg: HiveConfig, nc: Client) -> None:
    with pytest.raises(NoStream, match="nope-" + cfg.hive):
        await reader.resolve_streams(nc, "nope-" + cfg.hive)


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_replay_into_a_log_then_read_it_back_with_filters(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    h = cfg.hive
    seqs = await publish(
        nc, [started(h, "alice", 1), message(h, "alice", "bob"), finished(h, "bob", 1)]
    )
    log = EventLog(tmp_path / "log.sqlite", h)
    try:
        progress: list[tuple[int, int]] = []
        result = await replay_stream(
            nc, log, on_batch=lambda d, t: progress.append((d, t)), batch=2
        )
        assert (result.written, result.position, result.error_rows) == (3, seqs[-1], 0)
        assert progress == [(2, 3), (1, 3)]
        again = await replay_stream(nc, log)
        assert (again.written, again.start_position) == (0, seqs[-1])
        bob = [r.seq for r in logquery.read_log(log, EventFilter(hive=h, agents=("bob",)))]
        assert bob == seqs[1:]
        assert [
            r.seq for r in logquery.read_log(log, EventFilter(hive=h), from_seq=seqs[2])
        ] == seqs[2:]
        stats = logquery.log_stats(log)
        assert stats.by_kind == {"message.sent": 1, "turn.finished": 1, "turn.started": 1}
        assert stats.by_agent == {"alice": 2, "bob": 1}
    finally:
        log.close()
