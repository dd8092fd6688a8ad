"""One hive as the dashboard sees it: c0re's state, folded live, and the browsers listening.

    view = HiveView("default", parts, default_model="sonnet", log_path=...)
    await view.run(nc)                     # load, then follow the stream forever
    listener, backlog = view.listen(after=seq)

The state starts from c0re's tables in the event log (read with aiosqlite) and
goes on with the stream after their position, folded by the same pure `evolve`
as c0re's, so the page always shows the state *at* the last sequence it was
sent. Each event becomes one `Update`: the event's sequence and the page
fragments it changed (rendered once, shared by every browser), kept in a ring
so a reconnecting browser gets exactly what it missed (`Last-Event-ID`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import msgspec
from nats.aio.client import Client

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.consume import StartAt, ack_info, read_ordered
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.records import Record, to_record
from hyperhive.bus.tail import HiveStream, last_matching, stream_state
from hyperhive.core.projection import NAME as STATE_PROJECTION
from hyperhive.core.projection import TABLE_QUERIES, state_from_rows
from hyperhive.core.state import HiveState, evolve, turn_state
from hyperhive.errors import EventLogError
from hyperhive.web import present
from hyperhive.web.render import Parts

log = logging.getLogger("hyperhive.web")

RING = 4096  # updates kept for reconnecting browsers
FEED_BACKFILL = 200  # events shown in the feed of a fresh page
INBOX_KEEP = 100  # messages to the operator kept in memory
LISTENER_QUEUE = 8192  # updates waiting for one slow browser before it must resync
OPERATOR_INBOX = "operator"

Op = tuple[str, str, str]
T = TypeVar("T")  # (morph | remove | append | prepend, element id, html)


@dataclass(frozen=True, slots=True)
class Update:
    """What one event changed on the pages, ready to send (`payload` is the SSE data).

    `event` is `update` (with `seq` as the SSE id) or `status` (the dashboard's
    connection to NATS: no sequence).
    """

    seq: int
    payload: bytes
    event: str = "update"


@dataclass(eq=False)
class Listener:
    """One browser's live stream: updates in order; `stale` if it fell too far behind."""

    queue: asyncio.Queue[Update | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=LISTENER_QUEUE)
    )
    stale: bool = False


class _Notice(msgspec.Struct, frozen=True):
    kind: str
    title: str
    body: str
    tag: str


class _Payload(msgspec.Struct, frozen=True):
    seq: int
    hive: str
    kind: str
    agent: str
    ops: list[Op]
    notify: _Notice | None = None


_encode = msgspec.json.Encoder().encode


def log_hive(path: Path) -> str | None:
    """The hive an event log file belongs to (its `meta`), or None without a usable one."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='hive'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return str(row[0]) if row else None


async def read_state_tables(path: Path, hive: str) -> HiveState:
    """c0re's state as the projector keeps it in the event log (empty if there is none)."""
    if not await asyncio.to_thread(path.exists):
        return HiveState(hive=hive)
    uri = f"file:{path}?mode=ro"
    try:
        async with aiosqlite.connect(uri, uri=True, timeout=10) as db:
            meta = await (await db.execute("SELECT value FROM meta WHERE key='hive'")).fetchone()
            if meta is None or meta[0] != hive:
                return HiveState(hive=hive)  # another hive's log: the stream tells ours
            await db.execute("BEGIN")  # one snapshot: the rows and their position agree
            row = await (
                await db.execute(
                    "SELECT seq FROM positions WHERE projection=?", (STATE_PROJECTION,)
                )
            ).fetchone()
            position = int(row[0]) if row else 0
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for table, query in TABLE_QUERIES.items():
                rows[table] = [tuple(r) for r in await (await db.execute(query)).fetchall()]
            await db.execute("COMMIT")
    except aiosqlite.Error as exc:
        raise EventLogError(f"cannot read the state tables in {path}: {exc}") from exc
    return state_from_rows(hive, position, rows)


class HiveView:
    """One hive: its state, the recent updates, the listening browsers."""

    def __init__(
        self, hive: str, parts: Parts, default_model: str, log_path: Path | None = None
    ) -> None:
        self.hive = hive
        self.parts = parts
        self.default_model = default_model
        self.log_path = log_path
        self.state = HiveState(hive=hive)
        self.loaded = asyncio.Event()
        self.tried = asyncio.Event()  # a first load has succeeded or failed: pages wait no more
        self.problem: str | None = None  # why the last load or follow failed (a banner)
        self.ring: deque[Update] = deque(maxlen=RING)
        self.feed: deque[present.EventView] = deque(maxlen=FEED_BACKFILL)
        self.operator_inbox: deque[present.MessageView] = deque(maxlen=INBOX_KEEP)
        self.listeners: set[Listener] = set()
        self.stream = subjects.stream_name(hive)
        self.connected = False

    @property
    def position(self) -> int:
        return self.state.position

    # ------------------------------------------------------------ loading and following

    async def run(self, nc: Client) -> None:
        """Load, then follow the stream until cancelled (errors are the caller's to retry)."""
        await self.load(nc)
        await self.follow(nc)

    async def load(self, nc: Client) -> None:
        state = HiveState(hive=self.hive)
        if self.log_path is not None:
            try:
                state = await read_state_tables(self.log_path, self.hive)
            except EventLogError as exc:
                log.warning("dashboard: %s; folding %s's stream instead", exc, self.hive)
        hs = await stream_state(nc, self.hive, self.stream)
        if state.position < hs.first_seq - 1:
            state = HiveState(hive=self.hive)  # the tables predate what the stream still has
        if hs.last_seq > state.position:
            msgs = read_ordered(
                nc,
                self.stream,
                subjects.stream_subjects(self.hive),
                StartAt(seq=state.position + 1),
                follow=False,
                end_seq=hs.last_seq,
            )
            async with contextlib.aclosing(msgs):
                async for msg in msgs:
                    rec = to_record(self.hive, ack_info(msg).stream_seq, msg.subject, msg.data)
                    state = _fold(state, rec)
        self.state = state
        await self._backfill(nc, hs)
        self.loaded.set()
        self.set_problem(None)
        self._broadcast_resync()
        log.info(
            "dashboard: hive %s at seq %d (%d agents)", self.hive, state.position, len(state.agents)
        )

    async def _backfill(self, nc: Client, hs: HiveStream) -> None:
        """The feed's last events and the operator's last messages, from the stream."""
        head = HiveStream(hs.hive, hs.stream, hs.first_seq, self.state.position)
        everything = EventFilter(hive=self.hive)
        recent = await last_matching(nc, head, everything, FEED_BACKFILL)
        self.feed.clear()
        self.feed.extend(present.event_view(r) for r in recent)
        to_me = await last_matching(
            nc,
            head,
            EventFilter(hive=self.hive, kinds=(subjects.EVENT_MESSAGE_SENT,)),
            INBOX_KEEP,
            on_subjects=[subjects.inbox_subject(self.hive, OPERATOR_INBOX)],
        )
        self.operator_inbox.clear()
        for r in to_me:
            if isinstance(r.event, ev.MessageSent):
                self.operator_inbox.append(present.message_view(r.seq, r.event))

    async def follow(self, nc: Client) -> None:
        msgs = read_ordered(
            nc,
            self.stream,
            subjects.stream_subjects(self.hive),
            StartAt(seq=self.position + 1),
            follow=True,
        )
        async with contextlib.aclosing(msgs):
            async for msg in msgs:
                self.apply(to_record(self.hive, ack_info(msg).stream_seq, msg.subject, msg.data))

    # ------------------------------------------------------------ one event

    def apply(self, rec: Record) -> Update | None:
        """Fold one record in, render what it changed, hand it to every listener."""
        if rec.seq <= self.state.position:
            return None
        old = self.state
        self.state = _fold(old, rec)
        view = present.event_view(rec)
        self.feed.append(view)
        ops: list[Op] = [("prepend", "feed", self.parts.feed_row(view))]
        ops += self._state_ops(old, self.state)
        ops += self._event_ops(rec)
        e = rec.event
        payload = _Payload(
            seq=rec.seq,
            hive=self.hive,
            kind=view.kind,
            agent=view.agent,
            ops=ops,
            notify=_notice(e) if e is not None else None,
        )
        update = Update(rec.seq, _encode(payload))
        self.ring.append(update)
        for listener in list(self.listeners):
            self._offer(listener, update)
        return update

    def _offer(self, listener: Listener, update: Update | None) -> None:
        try:
            listener.queue.put_nowait(update)
        except asyncio.QueueFull:
            listener.stale = True  # it reconnects and resumes from the ring (or resyncs)
            self.listeners.discard(listener)
            with contextlib.suppress(asyncio.QueueEmpty):
                listener.queue.get_nowait()
            listener.queue.put_nowait(None)

    def _state_ops(self, old: HiveState, new: HiveState) -> list[Op]:
        p = self.parts
        ops: list[Op] = []
        if old.agents.keys() != new.agents.keys():
            ops.append(("morph", "agents", p.agents_list(self.hive, self.agent_views())))
            ops.append(("morph", "banner-ports", p.ports_banner(present.port_collisions(new))))
        elif (
            old.agents is not new.agents
            or old.questions is not new.questions
            or (old.inbox is not new.inbox)
        ):
            for name in self._changed_agents(old, new):
                a = present.agent_view(new, new.agents[name], self.default_model)
                ops.append(("morph", f"agent-{name}", p.agent_row(self.hive, a)))
                ops.append(("morph", f"state-{name}", p.state_row(self.hive, a)))
                ops.append(("morph", f"inbox-count-{name}", p.inbox_count(name, a.inbox)))
        if old.kept is not new.kept and old.kept != new.kept:
            ops.append(("morph", "kept", p.kept_list(self.hive, present.kept_views(new))))
        cards: list[Op] = []
        if old.questions is not new.questions:
            cards += _cards(
                old.questions,
                new.questions,
                lambda q: q.status == "open",
                lambda q: p.question_card(self.hive, present.question_view(q)),
                "questions",
                "q",
            )
        if old.approvals is not new.approvals:
            cards += _cards(
                old.approvals,
                new.approvals,
                lambda a: a.status == "pending",
                lambda a: p.approval_card(self.hive, present.approval_view(a)),
                "approvals",
                "a",
            )
        ops += cards
        counts_changed = bool(cards)
        if counts_changed:
            ops.append(("morph", "counts", self.counts_html()))
        return ops

    def _changed_agents(self, old: HiveState, new: HiveState) -> Iterable[str]:
        for name, a in new.agents.items():
            before = old.agents.get(name)
            moved = before is not a or len(old.inbox.get(name, ())) != len(new.inbox.get(name, ()))
            asking = (
                before is not None
                and old.questions is not new.questions
                and turn_state(old, before) != turn_state(new, a)
            )
            if moved or asking:
                yield name

    def _event_ops(self, rec: Record) -> list[Op]:
        e = rec.event
        if e is None:
            return []
        p = self.parts
        if isinstance(e, ev.MessageSent):
            m = present.message_view(rec.seq, e)
            html = p.message_row(m)
            ops: list[Op] = [("prepend", f"agent-msgs-{e.to}", html)]
            if e.to == OPERATOR_INBOX:
                self.operator_inbox.append(m)
                ops.append(("prepend", "operator-inbox", html))
            return ops
        line = present.term_line(rec.seq, e)
        if line is not None and e.agent:
            return [("append", f"term-{e.agent}", p.term_line(line))]
        return []

    # ------------------------------------------------------------ listening

    def listen(self, after: int | None) -> tuple[Listener, list[Update] | None]:
        """A new listener, and the updates after `after` it missed (None: too old, resync).

        Registration and the backlog happen with no await between them, so the
        listener gets every later update exactly once.
        """
        listener = Listener()
        self.listeners.add(listener)
        if not self.loaded.is_set():  # it waits: the load ends in a resync for everyone
            return listener, []
        if after is None or after == self.position:
            return listener, []
        if after > self.position:  # a sequence this view never had: another stream's
            return listener, None
        oldest = self.ring[0].seq if self.ring else self.position + 1
        if after + 1 < oldest:
            return listener, None
        return listener, [u for u in self.ring if u.seq > after]

    def unlisten(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def close_listeners(self) -> None:
        for listener in list(self.listeners):
            self._offer(listener, None)
        self.listeners.clear()

    def set_connected(self, up: bool) -> None:
        """Tell every browser whether the dashboard is connected to NATS (a banner)."""
        self.connected = up
        self._broadcast_status()

    def set_problem(self, problem: str | None) -> None:
        """Tell every browser why the hive's state cannot be read, or that it can again."""
        self.tried.set()
        if problem != self.problem:
            self.problem = problem
            self._broadcast_status()

    def status_payload(self) -> bytes:
        """The banners' state: NATS connected or not, and the hive's problem if any."""
        return _encode(
            {
                "connected": self.connected,
                "html": self.parts.nats_banner(self.connected),
                "hive_html": self.parts.hive_banner(self.problem),
            }
        )

    def _broadcast_status(self) -> None:
        status = Update(0, self.status_payload(), "status")
        for listener in list(self.listeners):
            self._offer(listener, status)

    def _broadcast_resync(self) -> None:
        """Everyone listening must take a fresh snapshot (the state was (re)loaded)."""
        for listener in list(self.listeners):
            listener.stale = True
            self._offer(listener, None)
        self.listeners.clear()

    # ------------------------------------------------------------ views for pages

    def agent_views(self) -> list[present.AgentView]:
        return present.agent_views(self.state, self.default_model)

    def counts_html(self) -> str:
        s = self.state
        questions = sum(1 for q in s.questions.values() if q.status == "open")
        approvals = sum(1 for a in s.approvals.values() if a.status == "pending")
        return self.parts.counts(questions, approvals)

    def snapshot_ops(self, agent: str | None = None) -> list[Op]:
        """Every live section as it is now: what a browser that lost track morphs in."""
        p, s = self.parts, self.state
        ops: list[Op] = [
            ("morph", "agents", p.agents_list(self.hive, self.agent_views())),
            ("morph", "kept", p.kept_list(self.hive, present.kept_views(s))),
            ("morph", "banner-ports", p.ports_banner(present.port_collisions(s))),
            ("morph", "banner-hive", p.hive_banner(self.problem)),
            ("morph", "counts", self.counts_html()),
            ("morph", "questions", p.questions_list(self.hive, present.open_questions(s))),
            ("morph", "approvals", p.approvals_list(self.hive, present.pending_approvals(s))),
            ("morph", "operator-inbox", p.operator_inbox(list(reversed(self.operator_inbox)))),
        ]
        if agent is not None and agent in s.agents:
            a = present.agent_view(s, s.agents[agent], self.default_model)
            ops.append(("morph", f"state-{agent}", p.state_row(self.hive, a)))
            ops.append(("morph", f"inbox-count-{agent}", p.inbox_count(agent, a.inbox)))
        return ops


def _cards(
    old: Mapping[str, T],
    new: Mapping[str, T],
    waiting: Callable[[T], bool],
    card: Callable[[T], str],
    container: str,
    prefix: str,
) -> list[Op]:
    """Cards to add (newly waiting) and to remove (no longer waiting) of a section."""
    ops: list[Op] = []
    for key, item in new.items():
        before = old.get(key)
        if before is item:
            continue
        if waiting(item) and (before is None or not waiting(before)):
            ops.append(("append", container, card(item)))
        elif before is not None and waiting(before) and not waiting(item):
            ops.append(("remove", f"{prefix}-{key}", ""))
    return ops


def _fold(state: HiveState, rec: Record) -> HiveState:
    if rec.event is None:  # malformed: it takes a sequence, changes nothing
        return msgspec.structs.replace(state, position=max(state.position, rec.seq))
    return evolve(state, rec.seq, rec.event)


def _notice(e: ev.AnyEvent) -> _Notice | None:
    """What deserves a browser notification: a question, an approval, a message to the
    operator, a crash."""
    if isinstance(e, ev.QuestionAsked):
        return _Notice(
            "question", f"{e.agent} asks", present.shorten(e.question, 200), e.question_id
        )
    if isinstance(e, ev.ApprovalRequested):
        who = f" from {e.agent}" if e.agent else ""
        return _Notice(
            "approval",
            f"approval needed{who}",
            present.shorten(e.description, 200),
            e.approval_id,
        )
    if isinstance(e, ev.MessageSent) and e.to == OPERATOR_INBOX:
        return _Notice("message", f"message from {e.from_}", present.shorten(e.body, 200), e.msg_id)
    if isinstance(e, ev.AgentCrashed):
        how = e.signal or f"exit status {e.exit_status}"
        return _Notice("crash", f"{e.agent} crashed", how, e.id)
    return None
