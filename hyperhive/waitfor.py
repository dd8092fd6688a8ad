"""`asyncio.wait_for` as Python 3.12 has it, installed on 3.11, where a cancel can be lost.

On 3.11, a task cancelled in the same loop turn as the future it waits on inside
`asyncio.wait_for` completes gets the future's result instead of its
`CancelledError`: the cancel is gone, and the task runs on. nats-py waits on every
reply (a connect's INFO and PONG, each request, each JetStream call) with
`asyncio.wait_for`, so on a busy loop a service stopped by SIGTERM now and then
ran on until `service.cancel_and_wait` cancelled it again, 10 s later. Python
3.12 reimplemented `wait_for` on `asyncio.timeout`, which keeps the cancel
(cpython gh-86296); `install()` puts that version in place of 3.11's, once, at
import of `hyperhive`. On 3.12 and later it does nothing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for(fut: Awaitable[T], timeout: float | None) -> T:
    """3.12's `asyncio.wait_for`: `fut` within `timeout` seconds, or `TimeoutError`."""
    if timeout is not None and timeout <= 0:
        task = asyncio.ensure_future(fut)
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.wait({task})  # a cancel of the caller propagates from here
        try:
            return task.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await fut


def install() -> None:
    """Replace `asyncio.wait_for` with the version above on Python 3.11."""
    if sys.version_info < (3, 12) and asyncio.wait_for is not wait_for:
        module: Any = asyncio
        module.wait_for = wait_for
        asyncio.tasks.wait_for = wait_for  # type: ignore[assignment]
