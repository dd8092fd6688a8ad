"""Shared helpers of the `hive-events` tests (this module holds no tests).

Events are published in order, one ack at a time, so stream sequences are known.
The CLI runs in-process through click's `CliRunner` in a worker thread (the
command calls `asyncio.run` itself), or as a real subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click.testing
import pytest
from nats.js import JetStreamContext

from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.publish import publish_event
from hyperhive.cli.hive_events import main
from hyperhive.config import HiveConfig
from hyperhive.events import (
    AgentStarted,
    Event,
    MessageSent,
    TurnFailed,
    TurnFinished,
    TurnStarted,
)
from tests.conftest import cfg_env

HIVE_EVENTS = str(Path(sys.executable).parent / "hive-events")
EXTRA_HIVES = ("-b", "-two")  # suffixes of the second hives some tests make


@pytest.fixture
def drop_streams(cfg: HiveConfig) -> Iterator[None]:
    """Delete the test's hive streams afterwards.

    Each stream reserves its `max_bytes` (1 GiB) of the server's JetStream
    storage; a session that never deletes them runs out of it.
    """
    yield

    async def drop() -> None:
        nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "test-cleanup")
        try:
            for hive in (cfg.hive, *(cfg.hive + s for s in EXTRA_HIVES)):
                with contextlib.suppress(Exception):
                    await nc.jetstream().delete_stream(subjects.stream_name(hive))
        finally:
            await nc.close()

    # In a thread: the test's own event loop may still be set in this one.
    worker = threading.Thread(target=lambda: asyncio.run(drop()))
    worker.start()
    worker.join()


def started(hive: str, agent: str = "alice", n: int = 0) -> TurnStarted:
    return TurnStarted(
        hive=hive, agent=agent, source="harness", turn_id=f"t{n}", model="m", trigger="message"
    )


def finished(hive: str, agent: str = "alice", n: int = 0) -> TurnFinished:
    return TurnFinished(
        hive=hive, agent=agent, source="harness", turn_id=f"t{n}", duration_ms=10 * n
    )


def failed(hive: str, agent: str = "alice", n: int = 0) -> TurnFailed:
    return TurnFailed(hive=hive, agent=agent, source="harness", turn_id=f"t{n}", error="boom")


def message(hive: str, frm: str, to: str, body: str = "hi", n: int = 0) -> MessageSent:
    return MessageSent(
        hive=hive, agent=frm, source="harness", msg_id=f"m{n}", from_=frm, to=to, body=body
    )


def agent_started(hive: str, agent: str = "alice") -> AgentStarted:
    return AgentStarted(hive=hive, agent=agent, source="c0re", backend="local")


async def publish(js: JetStreamContext, events: list[Event]) -> list[int]:
    """Publish in order; return the stream sequences."""
    return [(await publish_event(js, e)).seq for e in events]


async def publish_raw(js: JetStreamContext, hive: str, subject: str, data: bytes) -> int:
    ack = await js.publish(subject, data, stream=subjects.stream_name(hive))
    return int(ack.seq)


def unknown_kind(hive: str, agent: str = "bob", kind: str = "future.thing") -> tuple[str, bytes]:
    """A well-formed envelope of a kind this build does not know, and its subject."""
    body = {
        "id": "01JZZZZZZZZZZZZZZZZZZZZZZZ",
        "ts": "2026-01-31T12:00:00Z",
        "hive": hive,
        "agent": agent,
        "kind": kind,
        "source": "future",
        "v": 1,
        "colour": "ultraviolet",
    }
    return f"hive.{hive}.evt.{agent}.{kind}", json.dumps(body).encode()


def run_cli(cfg: HiveConfig, *args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    """Run `hive-events ARGS` in-process (call it from a thread when a loop is running)."""
    runner = click.testing.CliRunner()
    return runner.invoke(main, list(args), env={**cfg_env(cfg), **(env or {})})


async def cli(
    cfg: HiveConfig, *args: str, env: dict[str, str] | None = None
) -> click.testing.Result:
    """`run_cli` from an async test: the command's own event loop runs in a worker thread."""
    return await asyncio.to_thread(run_cli, cfg, *args, env=env)


def ok_lines(result: click.testing.Result) -> list[str]:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result.stdout.splitlines()


def ok_json(result: click.testing.Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok_lines(result)]


def turn_ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["turn_id"] for r in rows]
