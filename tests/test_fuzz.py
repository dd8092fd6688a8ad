"""Fuzz: arbitrary bytes and JSON on a hive's stream, read by the projector and every reader.

Hypothesis makes the messages: random bytes, random JSON values, and JSON objects that
look like events (a kind of the catalogue or an unknown one; `id`, `ts`, `hive`, `kind`,
`agent` right, missing or of the wrong type; timestamps at the ends of the calendar with
extreme zone offsets; huge ints, unicode, control characters, nesting thousands deep,
sizes around the 256 KiB limit), on event and inbox subjects and on subjects the stream
captures but no event has (`hive.<h>.evt.alice`, agent tokens that are not agent names).
A fixed list of known edge cases is always added.

One draw per test (N examples collected up front), one publish round, then each reader
once, as a real process over the same stream and log:

- the projector keeps running and writes every stored message as exactly one row, a
  malformed one with `error` set, a good one with the id it was published with;
- `hive-events tail -o json|text` and `export` exit 0 without a traceback and print one
  line per message; `verify` says ok; `replay` writes the projector's rows, identically.

Bounded and reproducible: `CI` in the environment derandomizes hypothesis (a fixed
seed); `HYPERHIVE_FUZZ_SEED=<int>` replays one seed; `HYPERHIVE_FUZZ_EXAMPLES` sets N.
A failure names each offending message (its sequence, subject and bytes).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import msgspec
import nats.js.errors
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.config import HiveConfig
from hyperhive.eventlog.projector import eventlog_path, project
from hyperhive.eventlog.store import EventLog, Row
from hyperhive.names import is_agent
from tests.conftest import cfg_env
from tests.factories import sample
from tests.helpers import db_position, stop_task, wait_until

pytestmark = pytest.mark.nats

N_EXAMPLES = int(os.environ.get("HYPERHIVE_FUZZ_EXAMPLES", "150"))
SEED = os.environ.get("HYPERHIVE_FUZZ_SEED")
DERANDOMIZE = bool(os.environ.get("CI"))
HIVE_EVENTS = str(Path(sys.executable).parent / "hive-events")
READER_DEADLINE = 60.0
PROJECTOR_DEADLINE = 60.0

MAX_BYTES = ev.MAX_EVENT_BYTES  # the codec's limit; the stream's max_msg_size is the same

Verdict = Literal["malformed", "valid", "either"]


# ---------------------------------------------------------------- one fuzzed message


# Placeholders in the JSON text, replaced by bytes json.dumps cannot write: a unique id
# (given when the messages are assembled), nesting thousands deep, padding.
ID_MARK = "\x00id\x00"
DEEP_MARK = "\x00deep\x00"
PAD_MARK = "\x00pad\x00"


def _mark(mark: str) -> bytes:
    return json.dumps(mark).encode()


def unique_id(n: int) -> str:
    """As long as the id placeholder's JSON, so replacing it keeps the size."""
    text = f"fuzz-{n:09d}"
    assert len(json.dumps(text)) == len(_mark(ID_MARK))
    return text


@dataclass(frozen=True)
class Fuzzed:
    """A message to publish, and what its row must be."""

    subject: str
    data: bytes
    verdict: Verdict = "either"
    why: str = ""  # what makes it so (for the failure messages)
    has_id_mark: bool = False  # `data` holds ID_MARK, replaced by `unique_id` when assembled
    id: str | None = None  # the id a row without an error must carry, when it is known

    def assembled(self, n: int) -> Fuzzed:
        if not self.has_id_mark:
            return self
        new = unique_id(n)
        data = self.data.replace(_mark(ID_MARK), json.dumps(new).encode())
        return replace(self, data=data, has_id_mark=False, id=new)

    def show(self, limit: int = 400) -> str:
        data = self.data if len(self.data) <= limit else self.data[:limit] + b"..."
        return (
            f"subject={self.subject!r} ({self.verdict}: {self.why or '-'}) "
            f"{len(self.data)} bytes: {data!r}"
        )


class Judgement:
    """Why a message must be malformed (`bad`), or may go either way (`doubt`)."""

    def __init__(self) -> None:
        self.bad: list[str] = []
        self.doubt: list[str] = []

    def verdict(self) -> Verdict:
        if self.bad:
            return "malformed"
        return "either" if self.doubt else "valid"

    def why(self) -> str:
        return "; ".join(self.bad or self.doubt or ["a good event"])


def nested(depth: int, shape: str) -> bytes:
    """A JSON value `depth` levels deep (`open`: the brackets are never closed)."""
    if shape == "list":
        return b"[" * depth + b"]" * depth
    if shape == "dict":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if shape == "mixed":
        half = max(depth // 2, 1)
        return b'[{"k":' * half + b'"v"' + b"}]" * half
    return b"[" * depth


# ---------------------------------------------------------------- values

AGENTS = ("alice", "bob", "z" + "9" * 30)  # the last: the longest agent name there is
BAD_AGENTS = ("Alice", "9lives", "-x", "x_y", "a" * 32, "_x", "é", "$sys", "al\u200bice", "ALICE")
UNKNOWN_KINDS = ("future.thing", "turn.started.v2", "a.b", "x_1.y_2.z_3", "zz." + "y" * 61)
KNOWN_KINDS = tuple(sorted(ev.KINDS))
ENVELOPE = ("id", "ts", "hive", "kind", "source", "agent", "v", "correlation_id", "causation_id")

NASTY = (
    "\x1b[31mred\x1b[0m",
    "line\r\nbreak",
    "\u2028\u2029\x85",
    "\u202eevil",
    "\x00nul",
    "\ufeffbom",
    "e\u0301",
    "🐝" * 3,
    "\x7f\x9b[2J",
    "\t\x0b\x0c",
    "x" * 300,
)
BIG_INTS = (10**40, -(10**40), 2**63, 2**64, -(2**63) - 1, 10**400)
WRONG_TYPES: tuple[object, ...] = (None, 0, 1, 10**40, -1.5, True, [], {}, ["x"], {"id": "x"})

GOOD_TS = (
    "2026-01-31T12:00:00Z",
    "2026-01-31T12:00:00.123456Z",
    "2026-01-31T12:00:00+14:00",
    "2026-01-31T12:00:00-12:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T14:00:00+14:00",  # exactly 0001-01-01T00:00:00Z
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T09:59:59-14:00",  # exactly 9999-12-31T23:59:59Z
    "1970-01-01T00:00:00+00:00",
)
BAD_TS = (  # no UTC equivalent, no zone, or not a time at all
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T13:59:59+14:00",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999-00:01",
    "9999-12-31T23:59:59-23:59",
    "2026-01-31T12:00:00",
    "2026-01-31",
    "",
    "not a time",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-31T24:00:00Z",
    "2026-01-31T12:00:00+24:00",
    "+10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "2026-01-31T12:00:00Z\x00",
)
ODD_TS = (  # up to the decoder
    "2026-01-31T23:59:60Z",
    "2026-01-31t12:00:00z",
    "2026-01-31 12:00:00Z",
    "2026-01-31T12:00:00.1234567891Z",
    "9999-12-31T23:59:59.9999999Z",  # rounds up past the last microsecond there is
    "0001-01-01T00:00:00.0000001+00:00",
    "2026-01-31T12:00Z",
    "2026-01-31T12:00:00+0100",
    "2026-01-31T12:00:00+23:59",
)
TS_LIKE = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")

texts = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))
# Lone surrogates: written as \ud800 escapes, or as their (invalid) UTF-8 bytes.
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BIG_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=10,
)
depths = st.one_of(
    st.integers(1, 5000),
    st.integers(900, 1100),  # around the recursion limit
    st.sampled_from((988, 990, 992, 994, 995, 996, 997, 998, 999, 1000, 1001, 2500, 5000)),
)
shapes = st.sampled_from(("list", "dict", "mixed", "open"))
subject_tokens = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters=".*>"),
    min_size=1,
    max_size=40,
)
bad_agents = st.one_of(
    st.sampled_from(BAD_AGENTS), subject_tokens.filter(lambda t: not is_agent(t) and t != "_")
)


def evt_subject(hive: str, agent: str | None, kind: str) -> str:
    return ".".join(("hive", hive, "evt", agent or "_", kind))


def inbox_subject(hive: str, agent: str) -> str:
    return ".".join(("hive", hive, "inbox", agent))


@st.composite
def odd_subjects(draw: st.DrawFn, hive: str, agent: str | None, kind: str) -> str:
    """Subjects the hive's stream captures that no event is published on."""
    token = agent or "_"
    prefix = f"hive.{hive}"
    subject: str = draw(
        st.one_of(
            st.just(f"{prefix}.evt.{token}"),  # 4 tokens: no kind
            st.just(f"{prefix}.evt.{token}.turn"),  # a kind of one word
            bad_agents.map(lambda b: f"{prefix}.evt.{b}.{kind}"),
            st.one_of(bad_agents, st.just("_")).map(lambda b: f"{prefix}.inbox.{b}"),
            st.just(f"{prefix}.inbox.{token}.extra"),
            st.just(f"{prefix}.evt.{token}.{kind.upper()}"),
            st.just(f"{prefix}.evt.{token}.zz.{'y' * 62}"),  # a kind over 64 characters
            subject_tokens.map(lambda t: f"{prefix}.evt.{token}.{kind}.{t}"),
        )
    )
    return subject


def encode(obj: Any, ensure_ascii: bool, marks: dict[str, bytes]) -> bytes:
    data = json.dumps(obj, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    for mark, value in marks.items():
        data = data.replace(_mark(mark), value)
    return data


def sample_dict(kind: str, hive: str, agent: str | None) -> dict[str, Any]:
    """A valid event of `kind` as a JSON object, without its id and ts."""
    obj: dict[str, Any] = msgspec.json.decode(ev.encode_event(sample(kind, hive=hive, agent=agent)))
    del obj["id"], obj["ts"]
    return obj


# ---------------------------------------------------------------- messages


FAULTS = ("subject", "id", "ts", "hive", "kind", "agent", "v", "source", "refs", "field")


@st.composite
def event_like(draw: st.DrawFn, hive: str) -> Fuzzed:
    """A JSON object that looks like an event, with up to 3 parts wrong, and its subject.

    Whatever is not among the faults drawn is right; fields no kind has, odd text, huge
    ints, deep nesting and padding to the size limit are added on top.
    """
    j = Judgement()
    marks: dict[str, bytes] = {}
    faults = draw(st.lists(st.sampled_from(FAULTS), max_size=3, unique=True))

    def fault(part: str, *how: str) -> str:
        return draw(st.sampled_from(how)) if part in faults else "keep"

    kind = draw(st.sampled_from(KNOWN_KINDS + UNKNOWN_KINDS))
    agent = draw(st.sampled_from((*AGENTS, None)))
    if kind in ev.KINDS:
        obj = sample_dict(kind, hive, agent)
    else:
        obj = {"kind": kind, "hive": hive, "agent": agent, "source": "future", "v": 1}
        if agent is None and draw(st.booleans()):
            del obj["agent"]

    how = fault("subject", "inbox", "odd")
    to = obj.get("to")
    if how == "keep" and kind == "message.sent" and isinstance(to, str) and draw(st.booleans()):
        subject = inbox_subject(hive, to)  # where a message is published
    elif how == "keep":
        subject = evt_subject(hive, agent, kind)
    elif how == "inbox":
        subject = inbox_subject(hive, draw(st.sampled_from(AGENTS)))
        if kind != "message.sent" or to != subject.rsplit(".", 1)[-1]:
            j.bad.append(f"{kind} to {to!r} on {subject}")
    else:
        subject = draw(odd_subjects(hive, agent, kind))
        j.bad.append("a subject no event is published on")
    on_inbox = subject.startswith(f"hive.{hive}.inbox.")

    has_id_mark, known_id = False, None
    how = fault("id", "missing", "empty", "text", "wrong")
    if how == "keep":
        obj["id"], has_id_mark = ID_MARK, True
    elif how == "missing":
        j.bad.append("no id")
    elif how == "empty":
        obj["id"] = ""
        j.bad.append("an empty id")
    elif how == "text":
        obj["id"] = known_id = draw(st.one_of(texts.filter(bool), surrogates))
        j.doubt.append("a drawn id (may repeat: a duplicate)")
    else:
        obj["id"] = draw(st.sampled_from(WRONG_TYPES))
        j.bad.append("an id of the wrong type")

    how = fault("ts", "bad", "odd", "wrong", "missing", "text")
    if how == "keep":
        obj["ts"] = draw(st.sampled_from(GOOD_TS))
    elif how == "bad":
        obj["ts"] = draw(st.sampled_from(BAD_TS))
        j.bad.append(f"ts {obj['ts']!r}")
    elif how == "odd":
        obj["ts"] = draw(st.sampled_from(ODD_TS))
        j.doubt.append(f"ts {obj['ts']!r}")
    elif how == "wrong":
        obj["ts"] = draw(st.sampled_from(WRONG_TYPES))
        j.bad.append("a ts of the wrong type")
    elif how == "missing":
        j.bad.append("no ts")
    else:
        obj["ts"] = draw(texts)
        (j.doubt if TS_LIKE.match(obj["ts"]) else j.bad).append(f"ts {obj['ts']!r}")

    for key, wrong in (("hive", "someone-else"), ("kind", "turn.finished"), ("agent", "carol")):
        how = fault(key, "other", "wrong", "missing")
        if how == "keep" or (key == "agent" and how == "missing" and obj.get("agent") is None):
            continue
        if key == "kind" and kind == wrong:
            wrong = "turn.started"
        if how == "other":
            obj[key] = wrong
        elif how == "wrong":
            obj[key] = draw(st.sampled_from([w for w in WRONG_TYPES if w is not None]))
        else:
            obj.pop(key, None)
        if how == "wrong":
            j.bad.append(f"a {key} of the wrong type")
        elif key == "agent" and on_inbox:  # an inbox subject names the recipient only
            j.doubt.append(f"a message's sender {how}")
        else:
            j.bad.append(
                f"{key} {wrong!r} differs from the subject's" if how == "other" else f"no {key}"
            )

    how = fault("v", "newer", "old", "huge", "wrong")
    if how == "newer":
        obj["v"] = ev.SCHEMA_VERSION + draw(st.integers(1, 5))
    elif how == "old":
        obj["v"] = draw(st.sampled_from((0, -1)))
    elif how == "huge":
        obj["v"] = draw(st.sampled_from(BIG_INTS))
        j.doubt.append(f"v {obj['v']}")
    elif how == "wrong":
        obj["v"] = draw(st.sampled_from(("1", 1.5, None, [])))
        j.bad.append("a v of the wrong type")

    how = fault("source", "missing", "wrong")
    if how == "missing":
        del obj["source"]
        j.doubt.append("no source")
    elif how == "wrong":
        obj["source"] = draw(st.sampled_from([w for w in WRONG_TYPES if w is not None]))
        j.bad.append("a source of the wrong type")
    elif draw(st.booleans()):
        obj["source"] = draw(texts)

    ref = draw(st.sampled_from(("correlation_id", "causation_id")))
    how = fault("refs", "wrong")
    if how == "wrong":
        obj[ref] = draw(st.sampled_from((5, 10**40, [], {})))
        j.bad.append(f"a {ref} of the wrong type")
    elif draw(st.booleans()):
        obj[ref] = draw(st.one_of(texts, st.none()))

    own_fields = [k for k in obj if k not in ENVELOPE]
    how = fault("field", "replace", "delete") if own_fields else "keep"
    if how != "keep":
        field = draw(st.sampled_from(own_fields))
        if how == "replace":
            obj[field] = draw(json_values)
        else:
            del obj[field]
        j.doubt.append(f"field {field!r} {how}d")
    strings = [k for k in own_fields if isinstance(obj.get(k), str)]
    if bool(strings) and draw(st.booleans()):  # what the text line shows: escaped, one line
        field = draw(st.sampled_from(strings))
        obj[field] = draw(texts)
        j.doubt.append(f"field {field!r} = {obj[field]!r}")

    for name, value in draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)).items():
        obj["x_" + name] = value  # fields no kind has: ignored
    if draw(st.booleans()):
        obj["x_text"] = draw(st.one_of(texts, surrogates))
        if any(0xD800 <= ord(c) <= 0xDFFF for c in obj["x_text"]):
            j.doubt.append("a lone surrogate")
    if draw(st.integers(0, 3)) == 0:
        obj["x_big"] = draw(st.sampled_from(BIG_INTS))
    if draw(st.integers(0, 3)) == 0:
        depth, shape = draw(depths), draw(shapes)
        marks[DEEP_MARK] = nested(depth, shape)
        if kind == "approval.requested" and draw(st.booleans()):
            obj["payload"] = {"deep": DEEP_MARK}
        else:
            obj["x_deep"] = DEEP_MARK
        if shape == "open":
            j.bad.append("not JSON (nesting never closed)")
        else:
            j.doubt.append(f"nested {depth} deep ({shape})")
    padded = draw(st.integers(0, 14)) == 0
    if padded:
        obj["x_pad"] = PAD_MARK

    data = encode(obj, draw(st.booleans()), marks)
    if padded:  # a size around the limit: some just under, some just over (refused)
        target = draw(st.integers(MAX_BYTES - 4, MAX_BYTES + 4))
        fill = max(0, target - (len(data) - len(_mark(PAD_MARK))) - 2)
        data = data.replace(_mark(PAD_MARK), b'"' + b"y" * fill + b'"')
        if len(data) > MAX_BYTES:
            j.bad.append(f"{len(data)} bytes, over the limit")
    if not j.bad and any(k not in obj for k in ("id", "ts", "hive", "kind")):
        j.bad.append("an envelope without all of id, ts, hive, kind")
    return Fuzzed(subject, data, j.verdict(), j.why(), has_id_mark, known_id)


@st.composite
def any_subject(draw: st.DrawFn, hive: str) -> str:
    agent = draw(st.sampled_from((*AGENTS, None)))
    kind = draw(st.sampled_from(KNOWN_KINDS + UNKNOWN_KINDS))
    return draw(
        st.one_of(
            st.just(evt_subject(hive, agent, kind)),
            st.just(inbox_subject(hive, agent or "bob")),
            odd_subjects(hive, agent, kind),
        )
    )


def not_an_object(data: bytes) -> bool:
    return not data.lstrip(b" \t\r\n").startswith(b"{")


@st.composite
def raw_bytes(draw: st.DrawFn, hive: str) -> Fuzzed:
    data = draw(st.binary(max_size=600))
    verdict: Verdict = "malformed" if not_an_object(data) else "either"
    return Fuzzed(draw(any_subject(hive)), data, verdict, "random bytes")


@st.composite
def json_value(draw: st.DrawFn, hive: str) -> Fuzzed:
    value = draw(json_values)
    data = encode(value, draw(st.booleans()), {})
    envelope = isinstance(value, dict) and all(k in value for k in ("id", "ts", "hive", "kind"))
    verdict: Verdict = "either" if envelope else "malformed"
    return Fuzzed(draw(any_subject(hive)), data, verdict, "a JSON value, not an envelope")


@st.composite
def deep_value(draw: st.DrawFn, hive: str) -> Fuzzed:
    depth, shape = draw(depths), draw(shapes)
    why = f"a bare value nested {depth} deep ({shape}): no envelope"
    return Fuzzed(draw(any_subject(hive)), nested(depth, shape), "malformed", why)


def messages(hive: str) -> st.SearchStrategy[Fuzzed]:
    return st.one_of(
        event_like(hive),
        event_like(hive),
        event_like(hive),
        raw_bytes(hive),
        json_value(hive),
        deep_value(hive),
    )


def draw_messages(hive: str, n: int) -> list[Fuzzed]:
    """`n` messages from hypothesis: one draw for the whole test."""
    out: list[Fuzzed] = []

    @settings(
        max_examples=n,
        derandomize=DERANDOMIZE and SEED is None,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(messages(hive))
    def collect(m: Fuzzed) -> None:
        out.append(m)

    run: Callable[[], None] = collect
    if SEED is not None:
        run = seed(int(SEED))(collect)
    run()
    return out


# ---------------------------------------------------------------- the known edge cases


def event_bytes(hive: str, kind: str, **changes: Any) -> bytes:
    """A valid event of `kind` on alice's subject, with fields changed (`...` deletes)."""
    if kind in ev.KINDS:
        obj = sample_dict(kind, hive, "alice") | {"id": ID_MARK, "ts": GOOD_TS[0]}
    else:
        obj = {"id": ID_MARK, "ts": GOOD_TS[0], "hive": hive, "agent": "alice", "kind": kind}
    deep = changes.pop("deep", None)
    for key, value in changes.items():
        if value is ...:
            obj.pop(key, None)
        else:
            obj[key] = value
    marks = {}
    if deep is not None:
        marks[DEEP_MARK] = deep
    return encode(obj, True, marks)


def edge_cases(hive: str) -> list[Fuzzed]:
    """Always published, whatever hypothesis draws."""
    started = evt_subject(hive, "alice", "turn.started")
    future = evt_subject(hive, "alice", "future.thing")
    out: list[Fuzzed] = []

    def add(subject: str, data: bytes, verdict: Verdict, why: str) -> None:
        out.append(Fuzzed(subject, data, verdict, why, has_id_mark=_mark(ID_MARK) in data))

    for subject, kind in ((started, "turn.started"), (future, "future.thing")):
        add(subject, event_bytes(hive, kind), "valid", f"a good {kind}")
        for ts in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            add(subject, event_bytes(hive, kind, ts=ts), "malformed", f"ts {ts} overflows in UTC")
        add(subject, event_bytes(hive, kind, id=...), "malformed", "no id")
        for _ in range(2):  # twice: a second row with the same (empty) id
            add(subject, event_bytes(hive, kind, id=""), "malformed", "an empty id")
        add(subject, event_bytes(hive, kind, ts=...), "malformed", "no ts")
        add(subject, event_bytes(hive, kind, ts="2026-01-31T12:00:00"), "malformed", "naive ts")
        add(subject, event_bytes(hive, kind, id=10**40), "malformed", "id 10**40")
        add(subject, event_bytes(hive, kind, ts=10**40), "malformed", "ts 10**40")
        add(subject, event_bytes(hive, kind, v=10**40), "either", "v 10**40")
        add(subject, event_bytes(hive, kind, x_big=10**40), "valid", "an extra field 10**40")
        # Around the recursion limit, which depends on how deep the reader's stack is.
        for depth in (500, *range(940, 1000, 4), 1000, 1001, 5000):
            data = event_bytes(hive, kind, x_deep=DEEP_MARK, deep=nested(depth, "list"))
            add(subject, data, "either", f"a field nested {depth} deep")
    approval = evt_subject(hive, "alice", "approval.requested")
    for depth in (940, 955, 970, 980, 990, 1000, 3000):
        data = event_bytes(
            hive, "approval.requested", payload={"d": DEEP_MARK}, deep=nested(depth, "dict")
        )
        add(approval, data, "either", f"approval payload nested {depth} deep")
    add(started, nested(5000, "list"), "malformed", "a list nested 5000 deep")
    add(started, nested(3000, "dict"), "malformed", "an object nested 3000 deep, no envelope")
    add(started, nested(5000, "open"), "malformed", "5000 open brackets")
    add(started, b"", "malformed", "empty")
    add(started, b"NaN", "malformed", "NaN")
    add(started, b"1" + b"0" * 40, "malformed", "10**40")
    add(
        started,
        event_bytes(hive, "turn.started", x_nan=0)[:-1] + b',"y":NaN}',
        "malformed",
        "NaN: not JSON",
    )
    add(
        started,
        event_bytes(hive, "turn.started")[:-1] + b',"x":"\xff"}',
        "either",
        "not UTF-8 (in a field no kind has)",
    )
    add(started, event_bytes(hive, "turn.started", x="\ud800"), "either", "a lone surrogate")
    add(f"hive.{hive}.evt.alice", event_bytes(hive, "turn.started"), "malformed", "4 tokens")
    add(
        f"hive.{hive}.evt.Alice.turn.started",
        event_bytes(hive, "turn.started"),
        "malformed",
        "Alice",
    )
    add(f"hive.{hive}.inbox.BOB", event_bytes(hive, "message.sent"), "malformed", "inbox BOB")
    body = "\x1b[31mred\r\n\u2028\u202e\x00\x85 " * 10
    msg = event_bytes(hive, "message.sent", body=body)
    add(inbox_subject(hive, "bob"), msg, "valid", "a message full of control characters")
    text = event_bytes(hive, "turn.failed", error="\x1b]0;title\x07\r\x1b[2J")
    add(evt_subject(hive, "alice", "turn.failed"), text, "valid", "escapes in an error")
    fill = b"y" * (MAX_BYTES - len(event_bytes(hive, "future.thing", x_pad="")))
    at_limit = event_bytes(hive, "future.thing", x_pad=PAD_MARK).replace(
        _mark(PAD_MARK), b'"' + fill + b'"'
    )
    assert len(at_limit) == MAX_BYTES
    add(future, at_limit, "valid", "exactly the size limit")
    add(future, at_limit[:-1] + b" }", "malformed", "one byte over the limit")
    return out


# ---------------------------------------------------------------- running it


BUDGET = 16 * 1024 * 1024  # bytes published per test: well inside the test stream's max_bytes


def within_budget(fuzzed: list[Fuzzed]) -> list[Fuzzed]:
    """The messages in order, leaving out big ones once `BUDGET` bytes are used."""
    kept, used = [], 0
    for f in fuzzed:
        if used + len(f.data) <= BUDGET or len(f.data) < 64 * 1024:
            kept.append(f)
            used += len(f.data)
    return kept


async def publish_all(nc: Client, hive: str, fuzzed: list[Fuzzed]) -> dict[int, Fuzzed]:
    """Publish each message; the ones the server stored, by stream sequence."""
    js = nc.jetstream()
    stored: dict[int, Fuzzed] = {}
    for f in fuzzed:
        try:  # no headers (not even Nats-Expected-Stream): the limit is on the data alone
            ack = await js.publish(f.subject, f.data)
        except nats.js.errors.APIError as exc:
            if len(f.data) > MAX_BYTES:  # over the stream's max_msg_size: refused, fine
                continue
            raise AssertionError(f"the server refused {f.show()}: {exc}") from None
        seq = int(ack.seq)
        assert ack.stream == subjects.stream_name(hive), f"{f.subject} went to {ack.stream}"
        assert seq not in stored, f"seq {seq} acked twice"
        stored[seq] = f
    return stored


async def hive_events(cfg: HiveConfig, *args: str) -> tuple[int | None, str, str]:
    """Run `hive-events ARGS`; (status, stdout, stderr), status None if it hung."""
    proc = await asyncio.create_subprocess_exec(
        HIVE_EVENTS,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cfg_env(cfg),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), READER_DEADLINE)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def python_json(data: bytes | str) -> Any:
    """Python's own reading of some JSON (nesting up to `nested`'s depths), None if it is not."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None
    finally:
        sys.setrecursionlimit(limit)


def check_rows(rows: list[Row], stored: dict[int, Fuzzed], last: int, hive: str) -> list[str]:
    """Every message exactly one row, malformed ones with `error`, good ones with their id."""
    problems = []
    seqs = [r.seq for r in rows]
    if seqs != list(range(1, last + 1)):
        missing = sorted(set(range(1, last + 1)) - set(seqs))
        problems.append(f"rows are not seq 1..{last}: {len(rows)} rows, missing {missing[:10]}")
        problems += [f"  seq {s} lost: {stored[s].show()}" for s in missing[:5] if s in stored]
    for r in rows:
        f = stored.get(r.seq)
        if f is None:
            problems.append(f"row {r.seq} is no message that was published")
            continue
        if (r.subject, r.raw) != (f.subject, f.data):
            problems.append(f"row {r.seq} differs from what was stored: {f.show()}")
        if f.verdict == "malformed" and (r.error is None or r.id is not None):
            problems.append(
                f"row {r.seq} should be malformed ({f.why}) but is kind={r.kind!r} "
                f"id={r.id!r} ts={r.ts!r}: {f.show()}"
            )
        if f.verdict == "valid" and (r.error is not None or r.id != f.id):
            problems.append(
                f"row {r.seq} should be a good event, got error={r.error!r}: {f.show()}"
            )
        if r.error is None:
            body = python_json(f.data)
            wanted = body.get("id") if isinstance(body, dict) else f.id
            if (body is not None and not isinstance(body, dict)) or r.id != wanted or not r.id:
                problems.append(f"row {r.seq} has id {r.id!r}, the message {wanted!r}: {f.show()}")
            if r.ts is None or r.hive != hive:
                problems.append(f"row {r.seq}: ts {r.ts!r}, hive {r.hive!r}: {f.show()}")
    return problems


def ndjson_seqs(out: str) -> tuple[list[int | None], list[str]]:
    """The `seq` of each line of ndjson output, and the lines that are not JSON objects."""
    seqs: list[int | None] = []
    broken = []
    for line in out.split("\n")[:-1]:
        obj = python_json(line)
        seqs.append(obj.get("seq") if isinstance(obj, dict) else None)
        if not isinstance(obj, dict):
            broken.append(line[:200])
    return seqs, broken


TAIL_LINES = 1000


def check_reader(
    name: str, result: tuple[int | None, str, str], stored: dict[int, Fuzzed], last: int
) -> list[str]:
    """Exit 0, no traceback; one line per message (tail: the last 1000); verify says ok."""
    code, out, err = result
    first = max(1, last - TAIL_LINES + 1) if name.startswith("tail") else 1
    wanted = list(range(first, last + 1))
    problems = []
    if code is None:
        problems.append(f"{name} hung (killed after {READER_DEADLINE:.0f}s); stderr: {err[-2000:]}")
    elif code != 0:
        problems.append(f"{name} exited {code}; stderr: {err[-3000:]}")
    if "Traceback" in err:
        problems.append(f"{name} printed a traceback: {err[-3000:]}")
    if name.startswith("tail -o text"):
        lines = out.split("\n")[:-1]
        if len(lines) != len(wanted):
            problems.append(f"{name} printed {len(lines)} lines for {len(wanted)} messages")
        weird = sorted({ch for ch in out if not ch.isprintable() and ch != "\n"})
        if weird:
            problems.append(f"{name} printed unescaped control characters {weird}")
    elif name.startswith(("tail -o json", "export")):
        seqs, broken = ndjson_seqs(out)
        if seqs != wanted:
            gone = sorted(set(wanted) - {s for s in seqs if s is not None})
            problems.append(
                f"{name} printed {len(seqs)} lines for {len(wanted)} messages; "
                f"missing seqs {gone[:10]}"
            )
            problems += [f"  seq {s}: {stored[s].show()}" for s in gone[:5] if s in stored]
        if broken:
            problems.append(f"{name} printed lines that are not JSON: {broken[:3]}")
    elif name == "verify" and code == 0 and not out.startswith("ok"):
        problems.append(f"verify did not say ok: {out}")
    return problems


def rows_of(path: Path, hive: str) -> tuple[list[Row], int]:
    log = EventLog(path, hive, readonly=True)
    try:
        return list(log.rows()), log.position()
    except sqlite3.Error as exc:
        raise AssertionError(f"cannot read {path}: {exc}") from None
    finally:
        log.close()


async def test_fuzzed_messages_reach_the_log_and_every_reader_one_for_one(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    began = time.monotonic()
    hive = cfg.hive
    fuzzed = within_budget(
        [f.assembled(n) for n, f in enumerate(edge_cases(hive) + draw_messages(hive, N_EXAMPLES))]
    )
    stored = await publish_all(nc, hive, fuzzed)
    info = await nc.jetstream().stream_info(subjects.stream_name(hive))
    last = int(info.state.last_seq)
    assert info.state.first_seq == 1, "the stream dropped messages: publish fewer bytes"
    assert sorted(stored) == list(range(1, last + 1)), "the stream holds what was acked"
    refused = len(fuzzed) - len(stored)
    assert refused <= sum(len(f.data) > MAX_BYTES for f in fuzzed)
    problems: list[str] = []

    # The projector: keeps running, every message one row.
    path = eventlog_path(cfg)
    log = EventLog(path, hive)
    task = asyncio.ensure_future(project(cfg, log))
    try:

        def caught_up() -> bool:
            return task.done() or db_position(path) >= last

        try:
            await wait_until(caught_up, PROJECTOR_DEADLINE, what="the projector")
        except AssertionError:
            at = db_position(path)
            nxt = stored[at + 1].show() if at + 1 in stored else "-"
            problems.append(f"the projector is stuck at seq {at} of {last}; next: {nxt}")
        if task.done():
            exc = None if task.cancelled() else task.exception()
            at = db_position(path)
            nxt = stored[at + 1].show() if at + 1 in stored else "-"
            problems.append(f"the projector stopped at seq {at} of {last}: {exc!r}; next: {nxt}")
    finally:
        if task.done():
            if not task.cancelled():
                task.exception()  # retrieved (it is in the problems)
        else:
            await stop_task(task)
        log.close()
    rows, position = rows_of(path, hive)
    if position != last:
        problems.append(f"the log's position is {position}, the stream's last seq {last}")
    problems += check_rows(rows, stored, last, hive)

    # Every reader once, as a real process, side by side.
    replayed = tmp_path / "replayed.sqlite"
    runs = {
        "tail -o json": ("tail", "-n", str(TAIL_LINES), "-o", "json"),
        "tail -o text": ("tail", "-n", str(TAIL_LINES), "-o", "text"),
        "export": ("export", "--log", str(path)),
        "verify": ("verify", "--log", str(path)),
        "replay": ("replay", "--output", str(replayed)),
    }
    results = await asyncio.gather(*(hive_events(cfg, *args) for args in runs.values()))
    for name, result in zip(runs, results, strict=True):
        problems += check_reader(name, result, stored, last)

    if replayed.exists():
        again, position = rows_of(replayed, hive)
        if position != last:
            problems.append(f"replay: the log's position is {position}, not {last}")
        problems += [f"replay: {p}" for p in check_rows(again, stored, last, hive)]
        by_seq = {r.seq: r for r in again}
        for r in rows:
            other = by_seq.get(r.seq)
            if other is not None and other != r:
                problems.append(
                    f"seq {r.seq}: the projector's row and replay's differ "
                    f"({r.error!r} / {other.error!r}): {stored[r.seq].show()}"
                )

    took = time.monotonic() - began
    summary = (
        f"{len(fuzzed)} messages ({len(stored)} stored, {refused} refused as too large) "
        f"in {took:.1f}s; verdicts: "
        + ", ".join(
            f"{v} {sum(f.verdict == v for f in stored.values())}"
            for v in ("malformed", "valid", "either")
        )
    )
    assert not problems, summary + "\n" + "\n".join(problems[:60])
