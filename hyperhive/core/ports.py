"""Agent web UI ports: deterministic from the name, no probing, no state file.

The manager has 8000; every other agent 8100 + FNV-1a-32(name) mod 900. Two live
agents whose names hash to the same port collide: the spawn (or rebuild) of the
second is refused, naming the first, and the operator renames one.
"""

from __future__ import annotations

from collections.abc import Iterable

MANAGER = "manager"
MANAGER_PORT = 8000
PORT_BASE = 8100
PORT_RANGE = 900
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a32(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h


def agent_port(name: str) -> int:
    """The web UI port of agent `name`."""
    if name == MANAGER:
        return MANAGER_PORT
    return PORT_BASE + fnv1a32(name.encode()) % PORT_RANGE


def collision(name: str, live: Iterable[str]) -> str | None:
    """The live agent (other than `name`) whose port `name` would take, or None."""
    port = agent_port(name)
    for other in sorted(live):
        if other != name and agent_port(other) == port:
            return other
    return None


def collisions(names: Iterable[str]) -> dict[int, list[str]]:
    """Ports shared by more than one of `names`."""
    by_port: dict[int, list[str]] = {}
    for n in sorted(names):
        by_port.setdefault(agent_port(n), []).append(n)
    return {p: ns for p, ns in by_port.items() if len(ns) > 1}
