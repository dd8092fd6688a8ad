"""Pure c0re helpers for tests: a fixed clock, sequential ids, folding decisions in."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hyperhive import events as ev
from hyperhive.commands import Command
from hyperhive.core.decide import Context, Decision, decide
from hyperhive.core.state import HiveState, evolve

HIVE = "h1"
T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@dataclass
class Hive:
    """A state, a clock and a sequence: decide, then fold the decision's events in."""

    state: HiveState = field(default_factory=lambda: HiveState(hive=HIVE))
    now: datetime = T0
    seq: int = 0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def ctx(self) -> Context:
        return Context(hive=HIVE, now=self.now, new_id=lambda: f"id{next(self.ids):04d}")

    def fold(self, *events: ev.Event) -> None:
        for e in events:
            self.seq += 1
            self.state = evolve(self.state, self.seq, e)

    def do(self, caller: str, command: Command) -> Decision:
        decision = decide(self.state, caller, command, self.ctx())
        self.fold(*decision.events)
        return decision

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def agent(self, name: str, running: bool = True) -> None:
        self.fold(ev.AgentSpawned(hive=HIVE, agent=name, source="c0re", backend="process"))
        if running:
            self.fold(ev.AgentStarted(hive=HIVE, agent=name, source="c0re"))
