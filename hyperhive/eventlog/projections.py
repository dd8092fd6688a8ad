"""Projections: state kept in tables of the event log, in the same transaction as the rows.

A projection folds each event into memory and writes what changed, with its
position, inside the log's own write transaction (`EventLog.append`): rows,
the log's position and every projection's tables and position commit together
or not at all. A projection the log has not seen yet (added to an old log, or
behind after a crash) catches up from the log's own rows when the log opens.

The event log knows projections only by this protocol; which ones run is
decided above (c0re's state tables are `hyperhive.core.projection`), and they
are named by import path (`module:factory`) so a writer process can build them.
"""

from __future__ import annotations

import importlib
import sqlite3
from typing import Protocol

from hyperhive import events as ev
from hyperhive.errors import ConfigError


class Projection(Protocol):
    """State folded from the events and kept in tables of the event log."""

    name: str

    def create(self, conn: sqlite3.Connection) -> None:
        """Create its tables if missing (idempotent)."""

    def load(self, conn: sqlite3.Connection, position: int) -> None:
        """Read its state from its tables (stored at `position`)."""

    def apply(self, seq: int, event: ev.AnyEvent) -> None:
        """Fold one event in, in memory."""

    def save(self, conn: sqlite3.Connection) -> None:
        """Write what changed since the last save or load (inside the caller's transaction)."""


def build(spec: str) -> Projection:
    """A projection from its import path, `package.module:factory`."""
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"unknown projection {spec!r}: {exc}") from None
    projection: Projection = factory()
    return projection
