"""`asyncio.wait_for` keeps a cancel that lands as the awaited future completes (it is lost
with Python 3.11's own, and a stopped service then ran on)."""

from __future__ import annotations

import asyncio

import pytest

import hyperhive  # noqa: F401  (installs the wait_for that keeps cancels)
from hyperhive import waitfor


async def _cancelled_as_the_reply_lands() -> asyncio.Task[None]:
    """A task waiting in `asyncio.wait_for`, cancelled in the turn its future completes."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[int] = loop.create_future()
    ran_on, waiting = asyncio.Event(), asyncio.Event()

    async def waiter() -> None:
        waiting.set()  # it is inside wait_for, suspended, when the test next runs
        await asyncio.wait_for(reply, 10)
        ran_on.set()  # only if the cancel was lost
        await asyncio.Event().wait()

    task = asyncio.create_task(waiter())
    await waiting.wait()
    reply.set_result(1)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert not ran_on.is_set(), "the cancel was lost: the task ran on past wait_for"
    assert done == {task}
    return task


async def test_a_cancel_landing_with_the_reply_is_kept() -> None:
    assert asyncio.wait_for is waitfor.wait_for
    task = await _cancelled_as_the_reply_lands()
    assert task.cancelled()


async def test_it_times_out_and_returns_like_the_original() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(never, 0.01)
    assert never.cancelled()
    assert await asyncio.wait_for(asyncio.sleep(0, "done"), 5) == "done"  # sleep-ok: a result
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), 0)
    with pytest.raises(ValueError, match="boom"):
        await asyncio.wait_for(_raises(), None)


async def _raises() -> None:
    raise ValueError("boom")
