"""Publishing: dedupe on the event id, first-writer-wins, the stream ensured idempotently."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest
from nats.aio.client import Client

from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.publish import Published, publish_event
from hyperhive.bus.records import subject_for
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig, StreamConfig
from hyperhive.errors import NotConnected, PublishConflict, PublishRefused
from hyperhive.events import MessageSent
from tests.helpers import stream_count, turn_started

pytestmark = pytest.mark.nats


async def test_a_republished_event_is_stored_once(nc: Client, hive: str) -> None:
    js = nc.jetstream()
    event = turn_started(hive)

    first = await publish_event(js, event)
    again = await publish_event(js, event)

    assert first == Published(seq=1, duplicate=False, subject=subject_for(event))
    assert again == Published(seq=1, duplicate=True, subject=subject_for(event))
    assert await stream_count(js, hive) == 1


async def test_a_different_event_with_the_same_content_is_stored_again(
    nc: Client, hive: str
) -> None:
    js = nc.jetstream()
    event = turn_started(hive)
    twin = msgspec.structs.replace(event, id="01J0000000000000000000TWIN")

    await publish_event(js, event)
    second = await publish_event(js, twin)

    assert (second.seq, second.duplicate) == (2, False)
    assert await stream_count(js, hive) == 2


async def test_a_message_goes_to_the_recipients_inbox_subject(nc: Client, hive: str) -> None:
    msg = MessageSent(
        hive=hive, agent="alice", source="harness", msg_id="m1", from_="alice", to="bob", body="hi"
    )

    published = await publish_event(nc.jetstream(), msg)

    assert published.subject == subjects.inbox_subject(hive, "bob")
    stored = await nc.jetstream().get_msg(subjects.stream_name(hive), published.seq)
    assert stored.subject == subjects.inbox_subject(hive, "bob")


async def _race(
    clients: list[Client], hive: str, expected: int, n: int
) -> list[Published | BaseException]:
    events = [turn_started(hive, "alice", n * 10 + i) for i in range(len(clients))]
    return await asyncio.gather(
        *(
            publish_event(c.jetstream(), e, expected_last_subject_seq=expected)
            for c, e in zip(clients, events, strict=True)
        ),
        return_exceptions=True,
    )


async def test_expected_last_subject_seq_lets_exactly_one_concurrent_writer_win(
    cfg: HiveConfig, nc: Client
) -> None:
    hive = cfg.hive
    other = await connect(resolve_endpoint(cfg, auth.ADMIN), "second-writer")
    try:
        clients = [nc, other]
        expected = 0  # nothing on the subject yet: the first round races for the first write
        for n in range(5):
            results = await _race(clients, hive, expected, n)

            won = [r for r in results if isinstance(r, Published)]
            lost = [r for r in results if isinstance(r, PublishConflict)]
            assert len(won) == 1, f"round {n}: {results}"
            assert len(lost) == 1, f"round {n}: {results}"
            assert f"sequence {expected}" in str(lost[0])
            expected = won[0].seq
        assert await stream_count(nc.jetstream(), hive) == 5
    finally:
        await other.close()


async def test_expected_last_subject_seq_is_per_subject(nc: Client, hive: str) -> None:
    js = nc.jetstream()
    alice = await publish_event(js, turn_started(hive, "alice"))
    await publish_event(js, turn_started(hive, "bob"))  # moves the stream, not alice's subject

    landed = await publish_event(
        js, turn_started(hive, "alice"), expected_last_subject_seq=alice.seq
    )

    assert landed.seq == 3
    with pytest.raises(PublishConflict, match=rf"moved past sequence {alice.seq}"):
        await publish_event(js, turn_started(hive, "alice"), expected_last_subject_seq=alice.seq)


async def test_publishing_to_a_hive_without_a_stream_says_so(nc: Client) -> None:
    with pytest.raises(NotConnected, match="no JetStream stream"):
        await publish_event(nc.jetstream(), turn_started("no-stream-here"), timeout=2)


async def test_ensure_stream_is_idempotent(
    nc: Client, cfg: HiveConfig, caplog: pytest.LogCaptureFixture
) -> None:
    js = nc.jetstream()
    await publish_event(js, turn_started(cfg.hive))
    before = await js.stream_info(subjects.stream_name(cfg.hive))

    with caplog.at_level(logging.INFO, logger="hyperhive.bus"):
        again = await ensure_stream(js, cfg.hive, cfg.stream)
        await ensure_stream(js, cfg.hive, cfg.stream)

    assert again.config == before.config
    assert again.created == before.created
    assert again.state.messages == 1
    assert not [r for r in caplog.records if "stream" in r.getMessage()], caplog.text


async def test_ensure_stream_applies_changed_limits(nc: Client, cfg: HiveConfig) -> None:
    js = nc.jetstream()
    await publish_event(js, turn_started(cfg.hive))
    limits = StreamConfig(
        max_bytes=64 * 1024**2, max_age="7d", max_msg_size=2048, duplicate_window="30s"
    )

    info = await ensure_stream(js, cfg.hive, limits)

    current = (await js.stream_info(subjects.stream_name(cfg.hive))).config
    for have in (info.config, current):
        assert have.max_bytes == 64 * 1024**2
        assert have.max_age == 7 * 86400
        assert have.max_msg_size == 2048
        assert have.duplicate_window == 30
    assert info.state.messages == 1  # updating limits keeps the events

    big = msgspec.structs.replace(turn_started(cfg.hive), model="m" * 4096)
    with pytest.raises(PublishRefused, match="message size exceeds maximum"):
        await publish_event(js, big)
