"""c0re's state as tables of the event log, kept by the projector in its own transactions.

    hive_agents(name PK, data)              hive_kept(name PK, data)
    hive_questions(question_id PK, agent, status, expires_at, data)
    hive_approvals(approval_id PK, agent, status, data)
    hive_inbox(agent PK, data)              positions['state'] = last sequence folded

`data` is the row's msgspec JSON. c0re starts from these tables and reads only
the stream after their position, so a restart costs the size of the state, not
the length of the log; the dashboard reads the same tables.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from hyperhive import events as ev
from hyperhive.core.state import Agent, Approval, HiveState, Kept, Question, evolve
from hyperhive.eventlog.store import EventLog

NAME = "state"
SPEC = "hyperhive.core.projection:StateTables"
PROJECTIONS = (SPEC,)  # what the projector and `hive-events replay` keep in the log

SCHEMA = """
CREATE TABLE IF NOT EXISTS hive_agents (name TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hive_kept (name TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hive_questions (
    question_id TEXT PRIMARY KEY, agent TEXT, status TEXT, expires_at TEXT, data BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hive_approvals (
    approval_id TEXT PRIMARY KEY, agent TEXT, status TEXT, data BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hive_inbox (agent TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
"""

_enc = msgspec.json.Encoder()
_agent = msgspec.json.Decoder(Agent)
_kept = msgspec.json.Decoder(Kept)
_question = msgspec.json.Decoder(Question)
_approval = msgspec.json.Decoder(Approval)
_ids = msgspec.json.Decoder(tuple[str, ...])


def _changed(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Keys written or replaced, and keys removed (values are immutable: `is` suffices)."""
    upserts = [k for k, v in new.items() if old.get(k) is not v]
    gone = [k for k in old if k not in new]
    return upserts, gone


class StateTables:
    """The `Projection` of the hive's state (see `hyperhive.eventlog.projections`)."""

    name = NAME

    def __init__(self, hive: str | None = None) -> None:
        self._hive = hive
        self.state = HiveState(hive=hive or "")
        self._saved = self.state

    def create(self, conn: sqlite3.Connection) -> None:
        conn.executescript(SCHEMA)

    def load(self, conn: sqlite3.Connection, position: int) -> None:
        hive_row = conn.execute("SELECT value FROM meta WHERE key='hive'").fetchone()
        hive = self._hive or (hive_row[0] if hive_row else "")
        self.state = read_tables(conn, hive, position)
        self._saved = self.state

    def apply(self, seq: int, event: ev.AnyEvent) -> None:
        self.state = evolve(self.state, seq, event)

    def save(self, conn: sqlite3.Connection) -> None:
        old, new = self._saved, self.state
        if old is new:
            return
        tables: tuple[tuple[str, str, dict[str, Any], dict[str, Any]], ...] = (
            ("hive_agents", "name", old.agents, new.agents),
            ("hive_kept", "name", old.kept, new.kept),
        )
        for table, key, before, after in tables:
            upserts, gone = _changed(before, after)
            conn.executemany(
                f"INSERT OR REPLACE INTO {table} ({key}, data) VALUES (?, ?)",
                [(k, _enc.encode(after[k])) for k in upserts],
            )
            conn.executemany(f"DELETE FROM {table} WHERE {key}=?", [(k,) for k in gone])
        upserts, gone = _changed(old.questions, new.questions)
        conn.executemany(
            "INSERT OR REPLACE INTO hive_questions VALUES (?, ?, ?, ?, ?)",
            [
                (
                    q.question_id,
                    q.agent,
                    q.status,
                    q.expires_at.isoformat(),
                    _enc.encode(q),
                )
                for q in (new.questions[k] for k in upserts)
            ],
        )
        upserts, _ = _changed(old.approvals, new.approvals)
        conn.executemany(
            "INSERT OR REPLACE INTO hive_approvals VALUES (?, ?, ?, ?)",
            [
                (a.approval_id, a.agent, a.status, _enc.encode(a))
                for a in (new.approvals[k] for k in upserts)
            ],
        )
        upserts, gone = _changed(old.inbox, new.inbox)
        conn.executemany(
            "INSERT OR REPLACE INTO hive_inbox VALUES (?, ?)",
            [(k, _enc.encode(new.inbox[k])) for k in upserts],
        )
        conn.executemany("DELETE FROM hive_inbox WHERE agent=?", [(k,) for k in gone])
        self._saved = new


TABLE_QUERIES: dict[str, str] = {
    "agents": "SELECT data FROM hive_agents",
    "kept": "SELECT data FROM hive_kept",
    "questions": "SELECT data FROM hive_questions",
    "approvals": "SELECT data FROM hive_approvals",
    "inbox": "SELECT agent, data FROM hive_inbox",
}


def state_from_rows(hive: str, position: int, rows: dict[str, list[tuple[Any, ...]]]) -> HiveState:
    """The state the tables' rows (`TABLE_QUERIES`' results, by table) describe."""

    def data(table: str) -> list[bytes]:
        return [bytes(r[0]) for r in rows.get(table, [])]

    agents = {a.name: a for a in map(_agent.decode, data("agents"))}
    kept = {k.name: k for k in map(_kept.decode, data("kept"))}
    questions = {q.question_id: q for q in map(_question.decode, data("questions"))}
    approvals = {a.approval_id: a for a in map(_approval.decode, data("approvals"))}
    inbox = {str(agent): _ids.decode(blob) for agent, blob in rows.get("inbox", [])}
    return HiveState(
        hive=hive,
        position=position,
        agents=agents,
        kept=kept,
        questions=questions,
        approvals=approvals,
        inbox=inbox,
    )


def read_tables(conn: sqlite3.Connection, hive: str, position: int) -> HiveState:
    """The state the tables hold (at `position`)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table, query in TABLE_QUERIES.items():
        try:
            rows[table] = list(conn.execute(query))
        except sqlite3.OperationalError:  # not created yet
            rows[table] = []
    return state_from_rows(hive, position, rows)


def read_state(path: Path, hive: str) -> HiveState:
    """The state kept in the event log at `path`, or an empty one if there is none yet."""
    if not path.exists():
        return HiveState(hive=hive)
    log = EventLog(path, hive, readonly=True)
    try:
        return read_tables(log.conn, hive, log.position(NAME))
    finally:
        log.close()
