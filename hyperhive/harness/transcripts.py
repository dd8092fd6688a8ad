"""Every turn's full stream-json, kept in the agent's own `hyperhive-events.sqlite`.

For backfill (the agent page's history): bounded by count and age, so a chatty
agent never fills its disk. One table of turns, one of their lines; each line
at most `MAX_LINE` characters, each turn at most `MAX_LINES` lines.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

FILE = "hyperhive-events.sqlite"
MAX_TURNS = 500
MAX_AGE_DAYS = 30
MAX_LINES = 5000
MAX_LINE = 64 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    turn_id TEXT PRIMARY KEY, started REAL NOT NULL, trigger TEXT, model TEXT,
    outcome TEXT, lines INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lines (
    turn_id TEXT NOT NULL, n INTEGER NOT NULL, line TEXT NOT NULL, PRIMARY KEY (turn_id, n)
) WITHOUT ROWID;
"""


class Transcripts:
    """The agent's transcript store (synchronous; a few writes per step)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # A commit per line must not block the harness's loop on an fsync: in WAL,
        # NORMAL loses at most the last lines to a power cut, never the file.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self._counts: dict[str, int] = {}

    def begin(self, turn_id: str, trigger: str, model: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO turns VALUES (?, ?, ?, ?, NULL, 0)",
            (turn_id, time.time(), trigger, model),
        )
        self._counts[turn_id] = 0

    def add(self, turn_id: str, line: dict[str, Any]) -> None:
        n = self._counts.get(turn_id, 0)
        if n >= MAX_LINES:
            return
        text = json.dumps(line, ensure_ascii=False)[:MAX_LINE]
        self.conn.execute("INSERT OR REPLACE INTO lines VALUES (?, ?, ?)", (turn_id, n, text))
        self._counts[turn_id] = n + 1

    def end(self, turn_id: str, outcome: str) -> None:
        n = self._counts.pop(turn_id, 0)
        self.conn.execute(
            "UPDATE turns SET outcome=?, lines=? WHERE turn_id=?", (outcome, n, turn_id)
        )
        self.prune()

    def prune(self) -> None:
        cutoff = time.time() - MAX_AGE_DAYS * 86400
        old = [
            r[0]
            for r in self.conn.execute(
                "SELECT turn_id FROM turns WHERE started < ? OR turn_id NOT IN "
                "(SELECT turn_id FROM turns ORDER BY started DESC LIMIT ?)",
                (cutoff, MAX_TURNS),
            )
        ]
        for turn_id in old:
            self.conn.execute("DELETE FROM lines WHERE turn_id=?", (turn_id,))
            self.conn.execute("DELETE FROM turns WHERE turn_id=?", (turn_id,))

    def lines(self, turn_id: str) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT line FROM lines WHERE turn_id=? ORDER BY n", (turn_id,)
            )
        ]

    def close(self) -> None:
        self.conn.close()
