"""The service runtime: signals stop services cleanly, a lost cancel is repeated, failures surface."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from hyperhive.backoff import Backoff
from hyperhive.service import cancel_and_wait, run_until_signalled


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

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await forever()
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # sleep-ok: a yield, so the task is running when cancelled
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
