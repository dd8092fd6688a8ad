"""Reading the stream: pull consumers in order across batches and restarts; the handler loop."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api as js_api

from hyperhive.bus import subjects
from hyperhive.bus.consume import PullConsumer
from hyperhive.bus.handlers import run_handler_loop
from hyperhive.bus.server import EmbeddedServer
from hyperhive.bus.settle import settle
from hyperhive.errors import Poison, Retry
from hyperhive.events import AnyEvent, MessageDeadLettered, decode_event
from tests.helpers import (
    publish_many,
    publish_raw,
    publish_until_stored,
    running,
    turn_events,
    turn_started,
    wait_until,
)

pytestmark = pytest.mark.nats


def _ids(msgs: list[Msg]) -> list[str]:
    return [decode_event(m.data).id for m in msgs]


async def test_pull_consumer_delivers_every_message_once_in_order_across_batches(
    nc: Client, hive: str
) -> None:
    events = turn_events(hive, 230)
    await publish_many(nc.jetstream(), events)
    consumer = PullConsumer(nc, subjects.stream_name(hive), "test-batches")
    await consumer.ensure()

    batches: list[list[Msg]] = []
    got: list[Msg] = []
    async for msgs in consumer.batches(batch=40, expires=1.0):
        batches.append(msgs)
        got.extend(msgs)
        await msgs[-1].ack()
        if len(got) >= len(events):
            break

    assert [m.metadata.sequence.stream for m in got] == list(range(1, len(events) + 1))
    assert _ids(got) == [e.id for e in events]
    assert len(batches) >= 6
    assert all(len(b) <= 40 for b in batches)
    info = await consumer.info()
    assert info is not None
    await wait_until(
        lambda: _acked_to(consumer, len(events)), what=f"consumer ack floor to reach {len(events)}"
    )


async def _acked_to(consumer: PullConsumer, seq: int) -> bool:
    info = await consumer.info()
    if info is None:
        return False
    assert info.ack_floor is not None
    return info.ack_floor.stream_seq == seq and info.num_ack_pending == 0


async def test_durable_consumer_resumes_after_its_last_ack(nc: Client, hive: str) -> None:
    js = nc.jetstream()
    stream = subjects.stream_name(hive)
    first = turn_events(hive, 10)
    await publish_many(js, first)
    reader = PullConsumer(nc, stream, "test-resume")
    await reader.ensure()
    seen: list[Msg] = []
    async for msgs in reader.batches(batch=10, expires=1.0):
        seen.extend(msgs)  # a batch may arrive in more than one piece on a busy machine
        if len(seen) >= 10:
            await seen[9].ack()  # AckPolicy.ALL: the first ten
            break
    await wait_until(lambda: _acked_to(reader, 10), what="the first ten to be acked")

    later = turn_events(hive, 5)
    await publish_many(js, later)
    again = PullConsumer(nc, stream, "test-resume")
    await again.ensure()
    got: list[Msg] = []
    async for msgs in again.batches(batch=100, expires=1.0):
        got.extend(msgs)
        if len(got) >= 5:
            break

    assert _ids(got) == [e.id for e in later]


async def test_an_idle_consumer_keeps_working_after_its_pull_requests_expire(
    nc: Client, hive: str
) -> None:
    stream = subjects.stream_name(hive)
    consumer = PullConsumer(nc, stream, "test-idle")
    await consumer.ensure()
    pulls = 0

    async def count_pull(_msg: Msg) -> None:
        nonlocal pulls
        pulls += 1

    await nc.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.test-idle", cb=count_pull)
    await settle(nc)
    got: list[Msg] = []
    arrived = asyncio.Event()

    async def read() -> None:
        async for msgs in consumer.batches(batch=10, expires=0.5):
            got.extend(msgs)
            arrived.set()

    async with running(read()) as task:
        # four pull requests = three expired, unanswered, and re-issued: ~1.5 s of idleness
        await wait_until(
            lambda: pulls >= 4 or task.done(), timeout=10, what="pull requests to expire"
        )
        assert not task.done(), task.exception() if task.done() else None
        assert got == []

        event = turn_started(hive)
        await publish_many(nc.jetstream(), [event])
        await asyncio.wait_for(arrived.wait(), 10)

    assert _ids(got) == [event.id]


@pytest.mark.parametrize(
    ("durable", "ack_policy"),
    [(True, js_api.AckPolicy.ALL), (False, js_api.AckPolicy.NONE)],
    ids=["durable", "ephemeral"],
)
async def test_pull_consumer_reads_every_message_once_across_a_server_kill(
    server: EmbeddedServer, nc: Client, hive: str, durable: bool, ack_policy: js_api.AckPolicy
) -> None:
    js = nc.jetstream()
    events = turn_events(hive, 600)
    consumer = PullConsumer(
        nc, subjects.stream_name(hive), "test-kill", ack_policy=ack_policy, durable=durable
    )
    await consumer.ensure()
    got: list[Msg] = []
    everything = asyncio.Event()

    async def read() -> None:
        async for msgs in consumer.batches(batch=1000, expires=1.0):
            got.extend(msgs)
            if ack_policy == js_api.AckPolicy.ALL:
                with contextlib.suppress(Exception):  # an ack lost to the kill is redelivered
                    await msgs[-1].ack()
            if len(got) >= len(events):
                everything.set()

    async with running(read()) as reader:
        for i, event in enumerate(events):
            if i == len(events) // 3:
                await wait_until(lambda: got, what="the reader to be reading")
                server.kill()
                # started from this (main) thread: the server dies with the thread that forked it
                server.start()
            await publish_until_stored(js, event)
        try:
            await asyncio.wait_for(everything.wait(), 10)
        except TimeoutError:
            raise AssertionError(f"reader got {len(got)} of {len(events)}") from None
        assert not reader.done()

    seqs = [m.metadata.sequence.stream for m in got]
    assert seqs == list(range(1, len(events) + 1))
    assert _ids(got) == [e.id for e in events]


# ---------------------------------------------------------------- the handler loop


class Recorder:
    """A handler that records what it saw and can be told to fail on some events."""

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.fail = dict(fail or {})
        self.seen: list[tuple[str, int]] = []  # (event id, delivery count)
        self.ok: list[str] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: AnyEvent, msg: Msg) -> None:
        self.seen.append((event.id, msg.metadata.num_delivered))
        self.changed.set()
        exc = self.fail.pop(event.id, None)
        if exc is not None:
            raise exc
        self.ok.append(event.id)


def _handler_consumer(nc: Client, hive: str, name: str) -> PullConsumer:
    return PullConsumer(
        nc,
        subjects.stream_name(hive),
        name,
        filter_subjects=[f"hive.{hive}.evt.alice.>"],
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=30.0,
    )


async def test_handler_loop_acks_each_handled_message(nc: Client, hive: str) -> None:
    events = turn_events(hive, 5, agents=["alice"])
    await publish_many(nc.jetstream(), events)
    handler = Recorder()
    consumer = _handler_consumer(nc, hive, "svc-ack")

    async with running(run_handler_loop(consumer, handler, hive)):
        await wait_until(lambda: len(handler.ok) >= 5, what="five events handled")
        await wait_until(lambda: _acked_to(consumer, 5), what="every handled message to be acked")

    assert handler.ok == [e.id for e in events]
    assert [n for _, n in handler.seen] == [1] * 5


async def test_handler_loop_redelivers_a_message_whose_handler_asks_to_retry(
    nc: Client, hive: str
) -> None:
    events = turn_events(hive, 3, agents=["alice"])
    await publish_many(nc.jetstream(), events)
    handler = Recorder(fail={events[1].id: Retry("not yet", delay=0.1)})
    consumer = _handler_consumer(nc, hive, "svc-retry")

    async with running(run_handler_loop(consumer, handler, hive)):
        await wait_until(
            lambda: events[1].id in handler.ok,
            timeout=5,
            what=lambda: f"the retried event to come back (handler saw {handler.seen})",
        )
        await wait_until(lambda: _acked_to(consumer, 3), what="every message acked in the end")

    assert (events[1].id, 1) in handler.seen
    assert (events[1].id, 2) in handler.seen
    assert sorted(handler.ok) == sorted(e.id for e in events)


@pytest.mark.parametrize(
    "failure", [Poison("cannot ever work"), ValueError("handler bug")], ids=["poison", "crash"]
)
async def test_handler_loop_dead_letters_poison_and_goes_on(
    nc: Client, hive: str, failure: Exception
) -> None:
    js = nc.jetstream()
    dead_letters = await nc.subscribe(subjects.event_subject(hive, None, "bus.dead_lettered"))
    before = turn_started(hive, "alice", 1)
    poisonous = turn_started(hive, "alice", 2)
    after = turn_started(hive, "alice", 3)
    await publish_many(js, [before])
    garbage_subject = subjects.event_subject(hive, "alice", "turn.started")
    garbage_seq = await publish_raw(js, hive, garbage_subject, b"\x00not json at all")
    [poisonous_ack, after_ack] = await publish_many(js, [poisonous, after])
    handler = Recorder(fail={poisonous.id: failure})
    consumer = _handler_consumer(nc, hive, "svc-poison")

    async with running(run_handler_loop(consumer, handler, hive)):
        await wait_until(
            lambda: after.id in handler.ok, what="the event after the poison to be handled"
        )
        letters = [
            msgspec.json.decode(
                (await dead_letters.next_msg(timeout=5)).data, type=MessageDeadLettered
            )
            for _ in range(2)
        ]
        await wait_until(
            lambda: _acked_to(consumer, after_ack.seq), what="poison terminated, the rest acked"
        )
        info = await consumer.info()

    assert handler.ok == [before.id, after.id]
    assert [e for e, _ in handler.seen] == [
        before.id,
        poisonous.id,
        after.id,
    ]  # never given the garbage
    by_seq = {letter.stream_seq: letter for letter in letters}
    assert set(by_seq) == {garbage_seq, poisonous_ack.seq}
    garbage = by_seq[garbage_seq]
    assert (garbage.consumer, garbage.subject, garbage.hive) == (
        "svc-poison",
        garbage_subject,
        hive,
    )
    assert "not an event envelope" in garbage.error
    assert "not json at all" in garbage.excerpt
    assert str(failure) in by_seq[poisonous_ack.seq].error
    assert info is not None
    assert info.num_redelivered == 0
