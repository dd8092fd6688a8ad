"""Shared helpers of the bus tests: events to publish, publishing with retries, waiting.

Nothing here sleeps to let something happen: `wait_until` polls a condition with a
deadline and fails with a message saying what never became true.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from hyperhive.bus import auth, subjects
from hyperhive.bus.publish import Published, publish_event
from hyperhive.errors import HyperhiveError
from hyperhive.events import Event, TurnStarted

POLL = 0.02


async def wait_until(
    cond: Callable[[], Any],
    timeout: float = 10.0,
    what: str | Callable[[], str] = "condition",
    interval: float = POLL,
) -> Any:
    """Poll `cond` (sync or async) until it returns something truthy; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {text}")
        await asyncio.sleep(interval)  # sleep-ok: polls a condition inside a deadline


def turn_started(hive: str, agent: str = "alice", n: int = 0) -> TurnStarted:
    """A small valid event of `agent` (a new id each call)."""
    return TurnStarted(
        hive=hive, agent=agent, source="harness", turn_id=f"t{n}", model="m", trigger="message"
    )


def turn_events(hive: str, count: int, agents: Iterable[str] = ("alice", "bob")) -> list[Event]:
    names = list(agents)
    return [turn_started(hive, names[i % len(names)], i) for i in range(count)]


async def publish_many(
    js: JetStreamContext, events: Sequence[Event], window: int = 64
) -> list[Published]:
    """Publish `events` with up to `window` acks outstanding; every one must land."""
    out: list[Published] = []
    for i in range(0, len(events), window):
        out.extend(await asyncio.gather(*(publish_event(js, e) for e in events[i : i + window])))
    return out


RETRYABLE = (nats.errors.Error, asyncio.TimeoutError, OSError, HyperhiveError)


async def publish_until_stored(
    js: JetStreamContext, event: Event, timeout: float = 1.0
) -> Published:
    """Publish one event, retrying (same id) until JetStream acks it: what a careful service does."""
    while True:
        try:
            return await publish_event(js, event, timeout=timeout)
        except RETRYABLE:
            await asyncio.sleep(0.05)  # sleep-ok: back off, then retry (the ack is the wait)


async def stream_count(js: JetStreamContext, hive: str) -> int:
    return int((await js.stream_info(subjects.stream_name(hive))).state.messages)


async def stream_last_seq(js: JetStreamContext, hive: str) -> int:
    return int((await js.stream_info(subjects.stream_name(hive))).state.last_seq)


async def publish_raw(js: JetStreamContext, hive: str, subject: str, data: bytes) -> int:
    """Publish bytes that are not (necessarily) an event; return the stream sequence."""
    ack = await js.publish(subject, data, stream=subjects.stream_name(hive))
    return int(ack.seq)


async def connect_as(
    url: str,
    state_dir: Path,
    role: str,
    errors: asyncio.Queue[Exception] | None = None,
    hive: str | None = None,
) -> Client:
    """A plain nats-py client logged in as `role` (of `hive`, for a hive's own role)
    with the state dir's credentials.

    Asynchronous errors the server sends (permission violations) go to `errors`.
    """
    creds = auth.read_credentials(auth.credentials_path(state_dir, role, hive))

    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.put_nowait(exc)

    return await nats.connect(
        servers=[url],
        user=creds.user,
        password=creds.password,
        inbox_prefix=auth.inbox_prefix(role, hive),
        allow_reconnect=False,
        connect_timeout=2,
        error_cb=on_error,
    )


async def next_permission_error(
    errors: asyncio.Queue[Exception], subject: str, timeout: float = 5.0
) -> str:
    """Wait for the server's permission violation naming `subject`; return its text."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list[str] = []
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"no permission violation for {subject} (saw {seen})")
        try:
            exc = await asyncio.wait_for(errors.get(), left)
        except TimeoutError:
            continue
        text = str(exc)
        seen.append(text)
        if "permissions violation" in text.lower() and subject.lower() in text.lower():
            return text


def db_position(path: Path) -> int:
    """The event log's position read straight from the file (another process writes it)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT seq FROM positions WHERE projection='eventlog'").fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()
    return int(row[0]) if row else 0


STOP_TIMEOUT = 10.0


async def stop_task(
    task: asyncio.Task[Any], timeout: float = STOP_TIMEOUT, cancel: bool = True
) -> None:
    """Cancel `task` (unless already done by the caller: `cancel=False`) and wait for it
    to end; one that outlives `timeout` fails the test.

    The failure says whether it ended late (slow shutdown) or never (the cancel was lost).
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    if cancel:
        task.cancel()
    done, _ = await asyncio.wait([task], timeout=timeout)
    if not done:
        done, _ = await asyncio.wait([task], timeout=STOP_TIMEOUT)  # late, or never?
        if done:
            how = f"it ended {loop.time() - start:.1f}s after the cancel"
        else:
            how = "it never ended: the cancel was lost"
            task.cancel()
            await asyncio.wait([task], timeout=STOP_TIMEOUT)
        raise AssertionError(f"still running {timeout:.0f}s after it was cancelled ({how})")
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def running(
    coro: Coroutine[Any, Any, Any], stop_timeout: float = STOP_TIMEOUT
) -> AsyncIterator[asyncio.Task[Any]]:
    """Run `coro` as a task for the block; cancel it after (it must stop within `stop_timeout`)."""
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        await stop_task(task, stop_timeout)


# ---------------------------------------------------------------- CLI subprocesses

BIN = Path(sys.executable).parent  # the venv's console scripts


def state_env(state: Path) -> dict[str, str]:
    """Environment for a CLI subprocess on its own state dir (no config file, no colour).

    The dashboard of a `hyperhive up` takes any free port: tests run side by side.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(
        HYPERHIVE_STATE_DIR=str(state),
        HYPERHIVE_CONFIG=os.devnull,
        HYPERHIVE_DASHBOARD_PORT="0",
        NO_COLOR="1",
    )
    return env


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[str]:
    """Read the child's stdout until a line contains `needle` (or fail with what it said)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line.rstrip("\n"))
            if needle in line:
                return seen
            continue
        if proc.poll() is not None:
            break
        time.sleep(0.02)  # sleep-ok: polling a pipe inside a deadline
    pytest.fail(f"never saw {needle!r}; output so far:\n" + "\n".join(seen))
