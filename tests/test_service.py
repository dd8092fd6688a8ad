"""The service runtime: signals stop services cleanly, a lost cancel is repeated, failures surface."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from hyperhive.backoff import Backoff
from hyperhive.service import cancel_and_wait, keep_running, run_until_signalled
from tests.helpers import wait_until


async def forever() -> None:
    await asyncio.Event().wait()


async def test_a_signal_right_after_the_ready_line_stops_the_services() -> None:
    stopped = asyncio.Event()

    async def service() -> None:
        try:
            await forever()
        finally:
            stopped.set()

    got = await run_until_signalled(service, on_ready=lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert got == signal.SIGTERM
    assert stopped.is_set()


async def test_a_failing_service_stops_the_others_and_its_error_surfaces() -> None:
    others_stopped = asyncio.Event()

    async def other() -> None:
        try:
            await forever()
        finally:
            others_stopped.set()

    async def failing() -> None:
        raise RuntimeError("the disk is on fire")

    with pytest.raises(RuntimeError, match="on fire"):
        await run_until_signalled(other, failing)
    assert others_stopped.is_set()


async def test_a_service_that_returns_ends_the_run_without_a_signal() -> None:
    async def done() -> None:
        return None

    assert await run_until_signalled(done, forever) is None


async def test_cancel_and_wait_repeats_a_cancel_that_was_swallowed() -> None:
    # What Python 3.11's asyncio.wait_for does when a reply lands with the cancel:
    # the first CancelledError is lost and the task goes on.
    swallowed = 0
    running = asyncio.Event()

    async def stubborn() -> None:
        nonlocal swallowed
        running.set()
        while True:
            try:
                await forever()
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await running.wait()  # cancelled while it runs, not before it starts
    async with asyncio.timeout(10):
        await cancel_and_wait([task])
    assert task.cancelled()
    assert swallowed == 2


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(first=0.1, cap=1.0, jitter=False)
    assert [round(backoff.next_delay(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next_delay() == 0.1


def test_backoff_with_jitter_stays_within_half_to_whole_delay() -> None:
    backoff = Backoff(first=1.0, cap=1.0)
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 1


def test_backoff_survives_a_very_long_outage() -> None:
    backoff = Backoff(first=0.1, cap=5.0, jitter=False)
    for _ in range(10_000):
        delay = backoff.next_delay()
    assert delay == 5.0


def test_bind_style_retries_give_eleven_delays_for_twelve_tries() -> None:
    backoff = Backoff(first=0.05, cap=2.0, jitter=False)
    delays = list(backoff.delays(12))
    assert len(delays) == 11
    assert max(delays) == 2.0


async def test_a_service_cleaning_up_slowly_is_not_cut_short_by_a_repeated_cancel() -> None:
    announced = asyncio.Event()
    gate = asyncio.Event()

    async def announcing() -> None:
        try:
            await forever()
        finally:
            # its stop announcement: a round trip that can take a while on a busy machine
            await asyncio.wait_for(gate.wait(), timeout=5)
            announced.set()

    async def slow_sibling() -> None:
        try:
            await forever()
        finally:
            loop = asyncio.get_running_loop()
            loop.call_later(1.2, gate.set)  # the announcement lands after 1.2 s

    got = await run_until_signalled(
        announcing, slow_sibling, on_ready=lambda: os.kill(os.getpid(), signal.SIGTERM)
    )
    assert got == signal.SIGTERM
    assert announced.is_set()  # not interrupted by the repeats meant for lost cancels


async def test_a_cancel_whose_cleanup_fails_with_another_error_still_stops_keep_running() -> None:
    """The attempt's way out fails (a connection's close meets a dead server): that error
    replaces the cancel, and keep_running must stop, not start the attempt again."""
    attempts = 0
    entered = asyncio.Event()

    async def attempt() -> None:
        nonlocal attempts
        attempts += 1
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            if attempts == 1:  # a second attempt (the bug) stops as it should
                raise ConnectionResetError("Connection lost")

    quick = Backoff(first=0.01, cap=0.01)
    task = asyncio.create_task(keep_running("svc", attempt, quick, logging.getLogger("test")))
    await entered.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:
        await cancel_and_wait([task])
    assert attempts == 1, "keep_running started the attempt again after its cancel"
    assert task.cancelled()


async def test_keep_running_starts_a_failed_attempt_again() -> None:
    failures = 0

    async def attempt() -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise ConnectionResetError("Connection lost")
        await asyncio.Event().wait()

    quick = Backoff(first=0.001, cap=0.001)
    task = asyncio.create_task(keep_running("svc", attempt, quick, logging.getLogger("test")))
    await wait_until(lambda: failures == 2, 5, what="two failed attempts")
    assert not task.done()
    await cancel_and_wait([task])
    assert task.cancelled()
