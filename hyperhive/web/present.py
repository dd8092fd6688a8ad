"""What the pages show, worked out from c0re's state and the events: pure, no I/O.

Templates get these small view structs and nothing else, so every string an
agent controls reaches a template as a plain value that jinja2 escapes; nothing
here builds markup. Times go to the browser as ISO strings in data attributes
(the page counts `thinking · 12 s` and a question's TTL down by itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from hyperhive import events as ev
from hyperhive.bus.records import Record
from hyperhive.core import ports
from hyperhive.core.decide import agent_row
from hyperhive.core.state import Agent, Approval, HiveState, Question, turn_state
from hyperhive.names import SYSTEM

FEED_SUMMARY = 240  # characters of an event's one-line summary in the feed
LONG_RESULT_LINES = 4  # a tool result longer than this many lines is collapsed
LONG_RESULT_CHARS = 400
DESTRUCTIVE = frozenset({"stop", "restart", "rebuild", "destroy", "purge"})


def iso(ts: datetime | None) -> str:
    return ts.isoformat() if ts is not None else ""


def seconds(ms: int | None) -> str:
    if ms is None:
        return "?"
    if ms < 10_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms // 60_000} min {ms % 60_000 // 1000} s" if ms >= 60_000 else f"{ms // 1000} s"
    return f"{ms // 3_600_000} h {ms % 3_600_000 // 60_000} min"


def shorten(text: str, width: int) -> str:
    """One line of at most `width` characters (whitespace folded)."""
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


# ---------------------------------------------------------------- agents


@dataclass(frozen=True)
class AgentView:
    """One agent's row: badge, chips, status, and what may be done to it."""

    name: str
    state: str  # running | stopped | crashed
    badge: str  # thinking | waiting | idle | asking | paused | crashed | stopped | needs login
    turn_state: str
    thinking_since: str  # ISO, while thinking
    action: str | None
    model: str
    port: int
    status_text: str
    paused: bool
    needs_login: bool
    inbox: int
    last_turn: str  # "2.3 s · $0.012", "failed: ...", "cancelled", ""
    last_turn_outcome: str
    last_turn_title: str
    backend: str
    turn_id: str | None
    actions: tuple[str, ...]


def last_turn_chip(a: Agent) -> tuple[str, str, str]:
    """(chip text, outcome, tooltip) of an agent's last turn."""
    t = a.last_turn
    if t is None:
        return "", "", ""
    if t.outcome == "finished":
        return f"{seconds(t.duration_ms)} · ${t.cost_usd:.3f}", "finished", t.turn_id
    if t.outcome == "failed":
        return "failed", "failed", shorten(t.error or "", 300)
    return "cancelled", "cancelled", t.turn_id


def agent_actions(a: Agent) -> tuple[str, ...]:
    running = a.state == "running"
    out: list[str] = ["stop", "restart"] if running else ["start"]
    out.append("resume" if a.paused else "pause")
    out += ["rebuild", "destroy", "purge"]
    if a.name == ports.MANAGER:
        out = [x for x in out if x not in ("destroy", "purge")]
    return tuple(out)


def agent_view(state: HiveState, a: Agent, default_model: str) -> AgentView:
    row = agent_row(state, a, default_model)
    ts = turn_state(state, a)
    badge = "needs login" if a.needs_login and ts not in ("stopped", "crashed") else ts
    chip, outcome, title = last_turn_chip(a)
    return AgentView(
        name=a.name,
        state=a.state,
        badge=badge,
        turn_state=ts,
        thinking_since=iso(a.turn_started_at) if a.turn_id else "",
        action=a.action,
        model=str(row["model"]),
        port=int(row["port"]),
        status_text=a.status_text,
        paused=a.paused,
        needs_login=a.needs_login,
        inbox=int(row["inbox"]),
        last_turn=chip,
        last_turn_outcome=outcome,
        last_turn_title=title,
        backend=a.backend or "",
        turn_id=a.turn_id,
        actions=agent_actions(a),
    )


def agent_views(state: HiveState, default_model: str) -> list[AgentView]:
    return [agent_view(state, a, default_model) for _, a in sorted(state.agents.items())]


@dataclass(frozen=True)
class KeptView:
    name: str
    destroyed_at: str
    backend: str


def kept_views(state: HiveState) -> list[KeptView]:
    return [
        KeptView(name=k.name, destroyed_at=iso(k.destroyed_at), backend=k.backend or "")
        for _, k in sorted(state.kept.items())
    ]


def port_collisions(state: HiveState) -> list[tuple[int, list[str]]]:
    return sorted(ports.collisions(state.agents).items())


# ---------------------------------------------------------------- questions, approvals


@dataclass(frozen=True)
class QuestionView:
    question_id: str
    agent: str
    question: str
    options: tuple[str, ...]
    multi: bool
    asked_at: str
    expires_at: str


def question_view(q: Question) -> QuestionView:
    return QuestionView(
        question_id=q.question_id,
        agent=q.agent,
        question=q.question,
        options=tuple(q.options),
        multi=q.multi,
        asked_at=iso(q.asked_at),
        expires_at=iso(q.expires_at),
    )


def open_questions(state: HiveState) -> list[QuestionView]:
    qs = sorted(
        (q for q in state.questions.values() if q.status == "open"),
        key=lambda q: (q.expires_at, q.question_id),
    )
    return [question_view(q) for q in qs]


@dataclass(frozen=True)
class ApprovalView:
    approval_id: str
    agent: str
    approval_kind: str
    description: str
    payload: tuple[tuple[str, str], ...]
    requested_at: str
    expires_at: str
    has_diff: bool


def approval_view(a: Approval) -> ApprovalView:
    payload = tuple(
        (str(k), shorten(v if isinstance(v, str) else msgspec.json.encode(v).decode(), 200))
        for k, v in sorted(a.payload.items())
    )
    return ApprovalView(
        approval_id=a.approval_id,
        agent=a.agent or "",
        approval_kind=a.approval_kind,
        description=a.description,
        payload=payload,
        requested_at=iso(a.requested_at),
        expires_at=iso(a.expires_at),
        has_diff=a.approval_kind == "apply_commit",
    )


def pending_approvals(state: HiveState) -> list[ApprovalView]:
    pending = sorted(
        (a for a in state.approvals.values() if a.status == "pending"),
        key=lambda a: (a.requested_at, a.approval_id),
    )
    return [approval_view(a) for a in pending]


def answer_text(options: list[str], text: str) -> str:
    """What an answer says: the picked options (joined with ", "), then any free text."""
    picked = ", ".join(o.strip() for o in options if o.strip())
    free = text.strip()
    if picked and free:
        return f"{picked}\n{free}"
    return picked or free


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class EventView:
    """One event as a row of the feed (or a malformed message, with why)."""

    seq: int
    ts: str
    kind: str
    agent: str
    summary: str
    malformed: bool


def _summary_value(value: Any) -> str:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, str):
        return value
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return str(value)


def summary(e: ev.AnyEvent) -> str:
    """One line saying what happened, from the kind's own summary fields."""
    if isinstance(e, ev.RawEvent):
        return shorten(f"(unknown to this dashboard: {e.reason}) {e.data}", FEED_SUMMARY)
    if isinstance(e, ev.MessageSent):
        return shorten(f"{e.from_} → {e.to}: {e.body}", FEED_SUMMARY)
    if isinstance(e, ev.TurnStep):
        return shorten(f"{e.step}: {e.excerpt}", FEED_SUMMARY)
    parts = []
    for name in type(e).summary_fields:
        value = getattr(e, name, None)
        if value is None or value == "" or value == []:
            continue
        parts.append(f"{name.rstrip('_')}={_summary_value(value)}")
    return shorten(" ".join(parts), FEED_SUMMARY)


def event_view(rec: Record) -> EventView:
    e = rec.event
    if e is None:
        return EventView(
            seq=rec.seq,
            ts=iso(rec.stored),
            kind=rec.kind or "?",
            agent=rec.agent or "",
            summary=shorten(f"malformed: {rec.error}", FEED_SUMMARY),
            malformed=True,
        )
    agent = e.agent or ("" if not isinstance(e, ev.MessageSent) else e.from_)
    return EventView(
        seq=rec.seq,
        ts=iso(e.ts),
        kind=e.kind,
        agent=agent or "",
        summary=summary(e),
        malformed=False,
    )


@dataclass(frozen=True)
class MessageView:
    """A message in an inbox panel (the operator's, or an agent's)."""

    seq: int
    msg_id: str
    ts: str
    sender: str
    to: str
    body: str
    system_kind: str


def message_view(seq: int, m: ev.MessageSent) -> MessageView:
    return MessageView(
        seq=seq,
        msg_id=m.msg_id,
        ts=iso(m.ts),
        sender="system" if m.from_ == SYSTEM else m.from_,
        to=m.to,
        body=m.body,
        system_kind=m.system_kind or "",
    )


# ---------------------------------------------------------------- the live terminal


@dataclass(frozen=True)
class TermLine:
    """One line of an agent's live terminal."""

    seq: int
    turn_id: str
    kind: str  # start | text | tool_use | tool_result | end
    tool: str
    text: str
    head: str  # the first line of a long result (shown when collapsed)
    long: bool
    outcome: str  # for `end`: finished | failed | cancelled


def is_long(text: str) -> bool:
    return text.count("\n") >= LONG_RESULT_LINES or len(text) > LONG_RESULT_CHARS


def term_line(seq: int, e: ev.AnyEvent) -> TermLine | None:
    """The terminal line of a turn event (None for anything else)."""
    if isinstance(e, ev.TurnStep):
        text = e.excerpt + (" …(cut)" if e.truncated else "")
        long = e.step == "tool_result" and is_long(text)
        head = shorten(text.split("\n", 1)[0], 160) if long else ""
        return TermLine(seq, e.turn_id, e.step, e.tool or "", text, head, long, "")
    if isinstance(e, ev.TurnStarted):
        text = f"turn {e.turn_id} · {e.trigger} · {e.model}"
        return TermLine(seq, e.turn_id, "start", "", text, "", False, "")
    if isinstance(e, ev.TurnFinished):
        text = f"finished in {seconds(e.duration_ms)} · ${e.cost_usd:.4f} · {e.num_turns} steps"
        return TermLine(seq, e.turn_id, "end", "", text, "", False, "finished")
    if isinstance(e, ev.TurnFailed):
        return TermLine(seq, e.turn_id, "end", "", f"failed: {e.error}", "", False, "failed")
    if isinstance(e, ev.TurnCancelled):
        return TermLine(seq, e.turn_id, "end", "", f"cancelled by {e.by}", "", False, "cancelled")
    return None
