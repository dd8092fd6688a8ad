"""The service runtime every long-running part shares (c0re, projector, harness, dashboard).

    await run_until_signalled(serve_a, serve_b, on_ready=print_banner)

runs the services until SIGINT/SIGTERM or until one of them fails, installing
the signal handlers *before* `on_ready` runs, so a signal that follows the
ready line always stops the services cleanly. `announce` publishes a service's
own `hive.started` / `hive.stopped` fact; `cancel_and_wait` stops tasks and
waits until they really ended.

This module sits above `bus` in the layers (it publishes), below everything
that runs as a service (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import nats.errors

from hyperhive import __version__
from hyperhive.backoff import Backoff
from hyperhive.bus.connect import open_nats
from hyperhive.bus.publish import publish_event
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig
from hyperhive.errors import HyperhiveError
from hyperhive.events import Event, HiveStarted, HiveStopped
from hyperhive.names import ROLE_ADMIN

log = logging.getLogger("hyperhive.service")

Service = Callable[[], Awaitable[Any]]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


RECANCEL_EVERY = 0.5
STOP_GRACE = 10.0  # how long stopping services get before their cancel is repeated


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], grace: float = RECANCEL_EVERY
) -> None:
    """Cancel `tasks` and wait until each has ended (their errors are theirs: dropped).

    The cancel is repeated until a task has really ended: a cancel can be lost
    in code that swallows `CancelledError` (3.11's own `asyncio.wait_for` did,
    as an awaited reply arrived: `hyperhive.waitfor` replaces it), and a lost
    cancel must not keep a service running after SIGTERM. The repeat is the
    last resort, not the way services stop. The first repeat waits `grace`: a
    repeat also interrupts a task that is still cleaning up (a service announcing
    its stop), so a whole service gets longer than one of its inner tasks.
    """
    every = list(tasks)
    pending = [t for t in every if not t.done()]
    wait = grace
    while pending:
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=wait)
        pending = [t for t in pending if not t.done()]
        wait = RECANCEL_EVERY
    for t in every:
        if not t.cancelled():
            t.exception()  # retrieved: a failure while stopping is not news


def cancel_until_done(task: asyncio.Task[Any]) -> None:
    """Cancel `task` now and again every `RECANCEL_EVERY` seconds until it has ended."""
    if task.done():
        return
    task.cancel()
    asyncio.get_running_loop().call_later(RECANCEL_EVERY, cancel_until_done, task)


async def run_until_signalled(
    *services: Service, on_ready: Callable[[], Any] | None = None
) -> signal.Signals | None:
    """Run `services` until SIGINT/SIGTERM (returns the signal) or one of them ends.

    A service that fails re-raises here, after the others were stopped; one that
    returns stops the rest and returns None.
    """
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    running: list[asyncio.Task[Any]] = []
    stopper = asyncio.create_task(stop.wait())
    try:
        running = [asyncio.create_task(_call(s)) for s in services]
        if on_ready is not None:
            on_ready()
        done, _ = await asyncio.wait([*running, stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        await cancel_and_wait([*running, stopper], grace=STOP_GRACE)
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    return received[0] if received else None


async def _call(service: Service) -> Any:
    return await service()


EXPECTED = (HyperhiveError, nats.errors.Error, OSError, TimeoutError)


async def keep_running(
    what: str, attempt: Callable[[], Awaitable[Any]], backoff: Backoff, logger: logging.Logger
) -> None:
    """Run `attempt` again and again until cancelled: a failure is one line and a backoff.

    The services' rule: one that cannot do its job says so and keeps trying, it
    never exits. An expected failure (NATS away, a disk, a refusal) is a warning;
    anything else is a bug, logged with its traceback. `attempt` resets `backoff`
    when it makes progress.
    """
    while True:
        try:
            await attempt()
            continue
        except EXPECTED as exc:
            stop_if_cancelled(exc)
            delay = backoff.next_delay()
            logger.warning("%s: %s; starting again in %.1fs", what, exc, delay)
        except Exception as exc:
            stop_if_cancelled(exc)
            delay = backoff.next_delay()
            logger.exception("%s: unexpected failure; starting again in %.1fs", what, delay)
        await asyncio.sleep(delay)


def stop_if_cancelled(failure: BaseException) -> None:
    """Raise `CancelledError` if this task was asked to stop, whatever ended its attempt.

    For the loops that start an attempt again after a failure: a cancel must end
    them even when its `CancelledError` never arrived (a library swallowed it, or
    a cleanup on the way out failed with an error of its own, which replaced it).
    A task that was cancelled counts it (`Task.cancelling()`) until it has ended.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:
        raise asyncio.CancelledError from failure


ANNOUNCE_BUDGET = 10.0


async def announce(cfg: HiveConfig, event: Event) -> None:
    """Publish a service's own start/stop fact; best effort, never fatal."""
    try:
        # Bounded: a service must not wait out a cluster's election to start or stop.
        async with asyncio.timeout(ANNOUNCE_BUDGET):
            async with open_nats(cfg, ROLE_ADMIN, "hyperhive-announce") as nc:
                await ensure_stream(nc.jetstream(), cfg.hive, cfg.stream)
                await publish_event(nc.jetstream(), event, retry_for=ANNOUNCE_BUDGET)
    except EXPECTED as exc:
        log.warning("could not publish %s: %s", event.kind, exc)


def started(cfg: HiveConfig, service: str, source: str) -> HiveStarted:
    """The `hive.started` fact of one service of this host."""
    return HiveStarted(
        hive=cfg.hive,
        source=source,
        service=service,
        version=__version__,
        host=socket.gethostname(),
    )


def stopped(cfg: HiveConfig, service: str, source: str, reason: str = "stopped") -> HiveStopped:
    return HiveStopped(hive=cfg.hive, source=source, service=service, reason=reason)
