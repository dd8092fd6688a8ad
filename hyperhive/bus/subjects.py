"""Subjects: the one module that builds and parses every NATS subject hyperhive uses.

Nothing else formats a subject string, a permission pattern, a durable consumer
name or a `$JS.API` subject (a test greps the package for such literals).

    hive.<hive>.evt.<agent>.<kind>          every event (`_` = hive-wide)
    hive.<hive>.inbox.<agent>               message.sent addressed to <agent>
    hive.<hive>.cmd.c0re.<caller>.<verb>    commands to c0re
    hive.<hive>.cmd.harness.<agent>.<verb>  commands to one harness
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from hyperhive.errors import InvalidName, InvalidSubject
from hyperhive.names import (
    ALL_HIVES,
    HIVE_WIDE,
    check_agent,
    check_caller,
    check_hive,
    check_kind,
    check_verb,
    show,
)

ROOT = "hive"
EVENT_MESSAGE_SENT = "message.sent"
ANY = "*"  # one subject token
REST = ">"  # the rest of a subject
STREAM_PREFIX = "HIVE_"

# Durable consumers: `<service>-<purpose>`.
PROJECTOR_DURABLE = "projector-events"
INBOX_DURABLE_PREFIX = "inbox-"


def stream_name(hive: str) -> str:
    """The JetStream stream holding one hive's events: `HIVE_<HIVE>`."""
    return STREAM_PREFIX + check_hive(hive).upper().replace("-", "_")


def inbox_durable(agent: str) -> str:
    """The durable consumer an agent's `recv` reads its inbox through: `inbox-<agent>`."""
    return INBOX_DURABLE_PREFIX + check_agent(agent)


def _join(*tokens: str) -> str:
    return ".".join(tokens)


def event_subject(hive: str, agent: str | None, kind: str) -> str:
    """`hive.<hive>.evt.<agent>.<kind>`; `agent=None` is a hive-wide fact."""
    token = HIVE_WIDE if agent is None else check_agent(agent)
    return _join(ROOT, check_hive(hive), "evt", token, check_kind(kind))


def inbox_subject(hive: str, agent: str) -> str:
    """`hive.<hive>.inbox.<agent>`: messages addressed to `agent`."""
    return _join(ROOT, check_hive(hive), "inbox", check_agent(agent))


def command_subject(hive: str, caller: str, verb: str) -> str:
    """`hive.<hive>.cmd.c0re.<caller>.<verb>`; caller is an agent or `_operator`."""
    return _join(ROOT, check_hive(hive), "cmd", "c0re", check_caller(caller), check_verb(verb))


def harness_command_subject(hive: str, agent: str, verb: str) -> str:
    """`hive.<hive>.cmd.harness.<agent>.<verb>`: commands to one agent's harness."""
    return _join(ROOT, check_hive(hive), "cmd", "harness", check_agent(agent), check_verb(verb))


def hive_token(hive: str) -> str:
    """A subject token for `hive`, where `*` means every hive."""
    return ANY if hive == ALL_HIVES else check_hive(hive)


def event_subject_template(kind: str) -> str:
    """The subject of a kind with placeholders, for the docs: `hive.<hive>.evt.<agent>.<kind>`."""
    return _join(ROOT, "<hive>", "evt", "<agent>", check_kind(kind))


def inbox_subject_template() -> str:
    """The subject of a message with placeholders, for the docs."""
    return _join(ROOT, "<hive>", "inbox", "<to>")


# ---------------------------------------------------------------- patterns


def event_pattern(hive: str, agent: str = ANY, kind: str = REST) -> str:
    """`hive.<hive>.evt.<agent>.<kind...>` with `*`/`>` allowed in any place."""
    return _join(ROOT, hive_token(hive), "evt", agent, kind)


def all_events_pattern(hive: str) -> str:
    """`hive.<hive>.evt.>`: every event of `hive` (`*` = any hive)."""
    return _join(ROOT, hive_token(hive), "evt", REST)


def inbox_pattern(hive: str, agent: str = REST) -> str:
    """`hive.<hive>.inbox.<agent>`, `>` = every inbox."""
    return _join(ROOT, hive_token(hive), "inbox", agent)


def command_pattern(hive: str, caller: str = ANY) -> str:
    """Every c0re command of `caller` (`*` = anyone) in `hive` (`*` = any hive)."""
    return _join(ROOT, hive_token(hive), "cmd", "c0re", caller, REST)


def harness_command_pattern(hive: str, agent: str = ANY) -> str:
    """Every harness command to `agent` (`*` = any) in `hive` (`*` = any hive)."""
    return _join(ROOT, hive_token(hive), "cmd", "harness", agent, REST)


def stream_subjects(hive: str) -> list[str]:
    """The subjects a hive's stream captures."""
    h = check_hive(hive)
    return [all_events_pattern(h), inbox_pattern(h)]


def all_hive_subjects() -> str:
    """Every hyperhive subject of every hive."""
    return _join(ROOT, REST)


REPLY_INBOX = "_INBOX"
HIVE_SCOPE = "hive"  # `_INBOX.hive.<hive>.<role>`: never `admin` or `operator`


def reply_inbox_prefix(role: str, hive: str | None = None) -> str:
    """The reply-inbox prefix of a role: `_INBOX.<role>` server-wide, or one hive's
    own role's `_INBOX.hive.<hive>.<role>` (an agent, a hive's operator).

    No prefix is a prefix of another's, so a role allowed to read under its own
    never reads another role's replies.
    """
    if hive is None:
        return _join(REPLY_INBOX, role)
    return _join(REPLY_INBOX, HIVE_SCOPE, check_hive(hive), role)


def reply_inbox_pattern(prefix: str) -> str:
    """What a client with reply-inbox prefix `prefix` may receive replies on."""
    return _join(prefix, REST)


# ---------------------------------------------------------------- $JS.API

JS_API = "$JS.API"
JS_ACK = "$JS.ACK"
JS_FC = "$JS.FC"


def js_api(*tokens: str) -> str:
    """`$JS.API.<tokens...>`: one JetStream API subject (or pattern)."""
    return _join(JS_API, *tokens)


def js_msg_next(stream: str, consumer: str) -> str:
    """The pull-request subject of one consumer."""
    return js_api("CONSUMER", "MSG", "NEXT", stream, consumer)


def js_ack_pattern(stream: str, consumer: str) -> str:
    """The ack subjects of one consumer's deliveries."""
    return _join(JS_ACK, stream, consumer, REST)


def js_fc_pattern(stream: str | None = None) -> str:
    """Flow-control replies: of every stream, or of one (`$JS.FC.<stream>.>`)."""
    return _join(JS_FC, REST) if stream is None else _join(JS_FC, stream, REST)


def is_js_ack(reply: str) -> bool:
    """True if a delivery's reply subject is a JetStream ack subject."""
    return reply.startswith(JS_ACK + ".")


class AckInfo(NamedTuple):
    """The numbers JetStream puts in a delivery's reply subject."""

    stream_seq: int
    consumer_seq: int
    num_pending: int


def parse_ack_reply(reply: str) -> AckInfo | None:
    """Parse `$JS.ACK.[<domain>.<account>.]<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`.

    None for a shape this does not know.
    """
    tokens = reply.split(".")
    if len(tokens) == 9:  # v1
        return AckInfo(int(tokens[5]), int(tokens[6]), int(tokens[8]))
    if len(tokens) >= 11 and reply.startswith(JS_ACK + "."):  # v2
        return AckInfo(int(tokens[7]), int(tokens[8]), int(tokens[10]))
    return None


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class ParsedSubject:
    """What a stream subject says about the event it carries."""

    hive: str
    agent: str | None  # None for hive-wide events
    kind: str
    inbox: bool  # True for hive.<hive>.inbox.<agent>


@functools.lru_cache(maxsize=4096)
def parse_subject(subject: str) -> ParsedSubject:
    """Parse an event or inbox subject; raise `InvalidSubject` for anything else.

    Cached: a hive has few distinct subjects, and this runs for every event read.
    """
    parts = subject.split(".")
    try:
        if len(parts) >= 4 and parts[0] == ROOT:
            hive = check_hive(parts[1])
            if parts[2] == "inbox" and len(parts) == 4:
                return ParsedSubject(hive, check_agent(parts[3]), EVENT_MESSAGE_SENT, True)
            if parts[2] == "evt" and len(parts) >= 6:
                agent = None if parts[3] == HIVE_WIDE else check_agent(parts[3])
                return ParsedSubject(hive, agent, check_kind(".".join(parts[4:])), False)
    except InvalidName as exc:
        raise InvalidSubject(f"not a hyperhive event subject: {show(subject)} ({exc})") from exc
    raise InvalidSubject(f"not a hyperhive event subject: {show(subject)}")


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """What a command subject says: which hive, who calls, which verb."""

    hive: str
    caller: str  # an agent name or `_operator`
    verb: str


def parse_command_subject(subject: str) -> ParsedCommand:
    """Parse `hive.<hive>.cmd.c0re.<caller>.<verb>`; raise `InvalidSubject` otherwise."""
    parts = subject.split(".")
    if len(parts) != 6 or parts[0] != ROOT or parts[2:4] != ["cmd", "c0re"]:
        raise InvalidSubject(f"not a c0re command subject: {show(subject)}")
    try:
        return ParsedCommand(check_hive(parts[1]), check_caller(parts[4]), check_verb(parts[5]))
    except InvalidName as exc:
        raise InvalidSubject(f"not a c0re command subject: {show(subject)} ({exc})") from exc


@dataclass(frozen=True, slots=True)
class ParsedHarnessCommand:
    """What a harness command subject says: which hive, which agent's harness, which verb."""

    hive: str
    agent: str
    verb: str


def parse_harness_subject(subject: str) -> ParsedHarnessCommand:
    """Parse `hive.<hive>.cmd.harness.<agent>.<verb>`; raise `InvalidSubject` otherwise."""
    parts = subject.split(".")
    if len(parts) != 6 or parts[0] != ROOT or parts[2:4] != ["cmd", "harness"]:
        raise InvalidSubject(f"not a harness command subject: {show(subject)}")
    try:
        return ParsedHarnessCommand(
            check_hive(parts[1]), check_agent(parts[4]), check_verb(parts[5])
        )
    except InvalidName as exc:
        raise InvalidSubject(f"not a harness command subject: {show(subject)} ({exc})") from exc


def hive_of_stream_subjects(name: str, captured: list[str]) -> str | None:
    """The hive a stream named `name` capturing `captured` belongs to, or None."""
    if not name.startswith(STREAM_PREFIX):
        return None
    for subject in captured:
        parts = subject.split(".")
        if len(parts) != 4 or parts[0] != ROOT or parts[2:] != ["evt", REST]:
            continue
        try:
            if stream_name(parts[1]) == name:
                return parts[1]
        except InvalidName:
            continue
    return None
