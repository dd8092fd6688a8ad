"""The handler loop's care for slow and buggy handlers: progress reports, tracebacks."""

from __future__ import annotations

import asyncio
import logging

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api as js_api

from hyperhive.bus import subjects
from hyperhive.bus.consume import PullConsumer
from hyperhive.bus.handlers import run_handler_loop
from hyperhive.events import AnyEvent
from tests.helpers import publish_many, running, turn_events, wait_until

pytestmark = pytest.mark.nats


def consumer(nc: Client, hive: str, name: str, ack_wait: float) -> PullConsumer:
    return PullConsumer(
        nc,
        subjects.stream_name(hive),
        name,
        filter_subjects=[subjects.event_pattern(hive, "alice")],
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
    )


async def test_a_handler_slower_than_ack_wait_is_not_redelivered_mid_work(
    nc: Client, hive: str
) -> None:
    (event,) = turn_events(hive, 1, agents=["alice"])
    await publish_many(nc.jetstream(), [event])
    deliveries: list[int] = []
    release = asyncio.Event()
    ack_wait = 1.0

    async def slow(_event: AnyEvent, msg: Msg) -> None:
        deliveries.append(msg.metadata.num_delivered)
        await release.wait()  # works until the test lets it finish

    svc = consumer(nc, hive, "svc-slow", ack_wait)
    async with running(run_handler_loop(svc, slow, hive)):
        await wait_until(lambda: deliveries, what="the first delivery")
        # Three ack_waits: without in_progress() JetStream redelivers after the first.
        await asyncio.sleep(3 * ack_wait)  # sleep-ok: the window a redelivery would show in
        release.set()
        await wait_until(lambda: _acked(svc), what="the slow message to be acked once it is done")
        info = await svc.info()

    assert deliveries == [1]
    assert info is not None
    assert info.num_redelivered == 0


async def _acked(svc: PullConsumer) -> bool:
    info = await svc.info()
    if info is None or info.ack_floor is None:
        return False
    return info.ack_floor.stream_seq >= 1 and info.num_ack_pending == 0


async def test_a_handler_bug_is_logged_with_its_traceback_before_the_dead_letter(
    nc: Client, hive: str, caplog: pytest.LogCaptureFixture
) -> None:
    (event,) = turn_events(hive, 1, agents=["alice"])
    await publish_many(nc.jetstream(), [event])
    handled = asyncio.Event()

    async def buggy(_event: AnyEvent, _msg: Msg) -> None:
        handled.set()
        missing: dict[str, int] = {}
        missing["no such key"]  # the bug: a KeyError

    caplog.set_level(logging.ERROR, logger="hyperhive.bus")
    svc = consumer(nc, hive, "svc-buggy", 30.0)
    async with running(run_handler_loop(svc, buggy, hive)):
        await wait_until(
            lambda: any("dead-lettered" in r.getMessage() for r in caplog.records),
            what="the dead letter",
        )
    failed = [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert failed, "the handler's failure was not logged"
    assert failed[0].exc_info is not None
    assert failed[0].exc_info[0] is KeyError
