"""Live (core NATS) subscriptions: what is published now, filtered exactly."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client

from hyperhive import events as ev
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.live import open_live_events
from hyperhive.bus.publish import publish_event
from hyperhive.config import HiveConfig
from hyperhive.errors import MalformedEvent

pytestmark = pytest.mark.nats


def _turn(hive: str, agent: str, turn_id: str) -> ev.TurnStarted:
    return ev.TurnStarted(
        hive=hive, agent=agent, source="harness", turn_id=turn_id, model="m", trigger="kick"
    )


async def test_live_events_deliver_matching_events_as_they_are_published(
    cfg: HiveConfig, nc: Client
) -> None:
    operator = await connect(resolve_endpoint(cfg, auth.OPERATOR), "test-live")
    flt = EventFilter(hive=cfg.hive, agents=("alice",), kinds=("turn.*",))
    got: list[ev.AnyEvent | MalformedEvent] = []
    async with open_live_events(operator, flt) as live:
        js = nc.jetstream()
        await publish_event(js, _turn(cfg.hive, "bob", "b"))
        await publish_event(js, ev.AgentStarted(hive=cfg.hive, agent="alice", source="c0re"))
        await nc.publish(subjects.event_subject(cfg.hive, "alice", "turn.started"), b"{not json")
        await publish_event(js, _turn(cfg.hive, "alice", "a"))
        async with asyncio.timeout(10):
            async for _msg, event in live:
                got.append(event)
                if len(got) == 2:
                    break
    await operator.close()
    assert isinstance(got[0], MalformedEvent)
    assert isinstance(got[1], ev.TurnStarted)
    assert got[1].turn_id == "a"


async def test_live_events_see_nothing_from_before_they_started(
    cfg: HiveConfig, nc: Client
) -> None:
    js = nc.jetstream()
    await publish_event(js, _turn(cfg.hive, "alice", "old"))
    async with open_live_events(nc, EventFilter(hive=cfg.hive)) as live:
        await publish_event(js, _turn(cfg.hive, "alice", "new"))
        async with asyncio.timeout(10):
            _msg, event = await anext(aiter(live))
    assert isinstance(event, ev.TurnStarted)
    assert event.turn_id == "new"
