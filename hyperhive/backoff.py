"""The one backoff: capped exponential delays with jitter, reset on success.

Reconnects, crash restarts, projector retries and bind retries all use it:

    backoff = Backoff(first=0.1, cap=5.0)
    while True:
        try:
            await work(); backoff.reset()
        except Transient:
            await backoff.sleep()
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays of `first`, then doubling (times `factor`), never above `cap`.

    With `jitter`, each delay is drawn from [delay/2, delay] so many clients
    retrying at once spread out; without it, delays are exact (bind retries,
    tests). `attempts` counts delays handed out since the last `reset`.
    """

    first: float = 0.1
    cap: float = 5.0
    factor: float = 2.0
    jitter: bool = True
    attempts: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.cap or self.factor < 1:
            raise ValueError(f"invalid backoff: first={self.first} cap={self.cap}")

    def peek(self) -> float:
        """The delay the next `next_delay` would be based on (before jitter)."""
        exponent = min(self.attempts, 64)  # no float overflow on a long outage
        return min(self.cap, self.first * self.factor**exponent)

    def next_delay(self) -> float:
        delay = self.peek()
        self.attempts += 1
        if self.jitter:
            delay *= 0.5 + random.random() / 2
        return delay

    def reset(self) -> None:
        self.attempts = 0

    async def sleep(self) -> float:
        """Wait the next delay; returns how long it was."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay

    def delays(self, tries: int) -> Iterator[float]:
        """The delays between `tries` attempts (tries - 1 of them)."""
        for _ in range(max(0, tries - 1)):
            yield self.next_delay()
