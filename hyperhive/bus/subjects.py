"""Names and subjects: the one module that builds, parses and validates them.

Nothing else in hyperhive formats a subject string. Names are validated before
they are used anywhere, because agent names become subject tokens, directory
names and container names: `..`, `/`, `*`, `>` and friends never get through.

    hive.<hive>.evt.<agent>.<kind>          every event (`_` = hive-wide)
    hive.<hive>.inbox.<agent>               message.sent addressed to <agent>
    hive.<hive>.cmd.c0re.<caller>.<verb>    commands to c0re
    hive.<hive>.cmd.harness.<agent>.<verb>  commands to one harness
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass

from hyperhive.errors import InvalidName, InvalidSubject

HIVE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
AGENT_RE = re.compile(r"[a-z][a-z0-9-]{0,30}")
KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
VERB_RE = re.compile(r"[a-z][a-z0-9_]{0,47}")

HIVE_WIDE = "_"
OPERATOR = "_operator"
ALL_HIVES = "*"
EVENT_MESSAGE_SENT = "message.sent"


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def check_hive(name: str) -> str:
    """Return `name` if it is a valid hive name, else raise `InvalidName`."""
    if not isinstance(name, str) or not HIVE_RE.fullmatch(name):
        raise InvalidName(
            f"invalid hive name {_show(str(name))}: use 1-32 of a-z, 0-9, '-', "
            "starting with a letter or digit"
        )
    return name


def check_agent(name: str) -> str:
    """Return `name` if it is a valid agent name, else raise `InvalidName`."""
    if not isinstance(name, str) or not AGENT_RE.fullmatch(name):
        raise InvalidName(
            f"invalid agent name {_show(str(name))}: use 1-31 of a-z, 0-9, '-', "
            "starting with a letter"
        )
    return name


def check_kind(kind: str) -> str:
    """Return `kind` if it is a valid dotted event kind (`turn.finished`)."""
    if not isinstance(kind, str) or len(kind) > 64 or not KIND_RE.fullmatch(kind):
        raise InvalidName(
            f"invalid event kind {_show(str(kind))}: use dotted lowercase words like 'turn.finished'"
        )
    return kind


def check_verb(verb: str) -> str:
    """Return `verb` if it is a valid command verb (`spawn`, `cancel_turn`)."""
    if not isinstance(verb, str) or not VERB_RE.fullmatch(verb):
        raise InvalidName(f"invalid command verb {_show(str(verb))}")
    return verb


def stream_name(hive: str) -> str:
    """The JetStream stream holding one hive's events: `HIVE_<HIVE>`."""
    return "HIVE_" + check_hive(hive).upper().replace("-", "_")


def event_subject(hive: str, agent: str | None, kind: str) -> str:
    """`hive.<hive>.evt.<agent>.<kind>`; `agent=None` is a hive-wide fact."""
    token = HIVE_WIDE if agent is None else check_agent(agent)
    return f"hive.{check_hive(hive)}.evt.{token}.{check_kind(kind)}"


def inbox_subject(hive: str, agent: str) -> str:
    """`hive.<hive>.inbox.<agent>`: messages addressed to `agent`."""
    return f"hive.{check_hive(hive)}.inbox.{check_agent(agent)}"


def command_subject(hive: str, caller: str, verb: str) -> str:
    """`hive.<hive>.cmd.c0re.<caller>.<verb>`; caller is an agent or `_operator`."""
    if caller != OPERATOR:
        check_agent(caller)
    return f"hive.{check_hive(hive)}.cmd.c0re.{caller}.{check_verb(verb)}"


def harness_command_subject(hive: str, agent: str, verb: str) -> str:
    """`hive.<hive>.cmd.harness.<agent>.<verb>`: commands to one agent's harness."""
    return f"hive.{check_hive(hive)}.cmd.harness.{check_agent(agent)}.{check_verb(verb)}"


def stream_subjects(hive: str) -> list[str]:
    """The subjects a hive's stream captures."""
    h = check_hive(hive)
    return [f"hive.{h}.evt.>", f"hive.{h}.inbox.>"]


def hive_pattern(hive: str) -> str:
    """A subject token for `hive`, where `*` means every hive."""
    return "*" if hive == ALL_HIVES else check_hive(hive)


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
        if len(parts) >= 4 and parts[0] == "hive":
            hive = check_hive(parts[1])
            if parts[2] == "inbox" and len(parts) == 4:
                return ParsedSubject(hive, check_agent(parts[3]), EVENT_MESSAGE_SENT, True)
            if parts[2] == "evt" and len(parts) >= 6:
                agent = None if parts[3] == HIVE_WIDE else check_agent(parts[3])
                return ParsedSubject(hive, agent, check_kind(".".join(parts[4:])), False)
    except InvalidName as exc:
        raise InvalidSubject(f"not a hyperhive event subject: {_show(subject)} ({exc})") from exc
    raise InvalidSubject(f"not a hyperhive event subject: {_show(subject)}")


# ---------------------------------------------------------------- filters

_TOKEN_WORD = re.compile(r"[a-z0-9_]+")
_KIND_PATTERN = re.compile(r"[a-z0-9_.*?\[\]!-]+")


def _kind_pattern_tokens(pattern: str) -> list[str] | None:
    """Translate a kind glob into subject tokens, or None if NATS can't express it.

    A kind glob's `*` matches dots too (`turn.*` matches `turn.tool.used`), so
    only a trailing `*` token is pushed down, as NATS's `>`: `turn.*` ->
    [`turn`, `>`]; `*` -> [`>`]; `turn.finished` -> as is. Anything else with
    a wildcard (`*.finished`, `turn.fin*`) can't be expressed exactly and is
    read widely, then matched on our side.
    """
    tokens = pattern.split(".")
    if tokens[-1] == "*":
        tokens[-1] = ">"
    if all(_TOKEN_WORD.fullmatch(t) for t in tokens[:-1]) and (
        tokens[-1] == ">" or _TOKEN_WORD.fullmatch(tokens[-1])
    ):
        return tokens
    return None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a reader wants: hives, agents, kind globs.

    `subjects()` gives the narrowest NATS filter subjects that cover the filter;
    `matches()` is the exact client-side check that applies to every event read
    (pushed-down filters only make reading cheaper, they never decide alone).
    """

    hive: str = "default"
    agents: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.hive != ALL_HIVES:
            check_hive(self.hive)
        for a in self.agents:
            if a != HIVE_WIDE:
                check_agent(a)
        for k in self.kinds:
            if not k or len(k) > 64 or not _KIND_PATTERN.fullmatch(k):
                raise InvalidName(f"invalid kind pattern {_show(k)}")

    def subjects(self) -> list[str]:
        h = hive_pattern(self.hive)
        agents = list(self.agents) or ["*"]
        kind_tokens: list[list[str]] = []
        for k in self.kinds or ("*",):
            toks = _kind_pattern_tokens(k)
            kind_tokens.append(toks if toks is not None else [">"])
        out: list[str] = []
        for a in agents:
            for toks in kind_tokens:
                out.append(f"hive.{h}.evt.{a}." + ".".join(toks))
        if self.wants_messages():
            # message.sent lives on inbox subjects; a sender filter can't be pushed
            # down (the subject names the recipient), so read all inboxes then.
            out.append(f"hive.{h}.inbox.>")
        return _minimise(out)

    def wants_messages(self) -> bool:
        return not self.kinds or any(fnmatch.fnmatchcase(EVENT_MESSAGE_SENT, k) for k in self.kinds)

    def matches(
        self, hive: str, agent: str | None, kind: str, related: tuple[str, ...] = ()
    ) -> bool:
        """Exact check. `related` are other agents an event concerns (a message's to/from)."""
        if self.hive != ALL_HIVES and hive != self.hive:
            return False
        if self.kinds and not any(fnmatch.fnmatchcase(kind, k) for k in self.kinds):
            return False
        if self.agents:
            names = {agent or HIVE_WIDE, *related}
            if not names.intersection(self.agents):
                return False
        return True


def subject_covers(pattern: str, subject: str) -> bool:
    """True if NATS subject `pattern` (with `*`/`>`) matches `subject`."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


def _minimise(patterns: list[str]) -> list[str]:
    """Drop patterns covered by another one (NATS refuses overlapping filters)."""
    uniq = list(dict.fromkeys(patterns))
    out = []
    for p in uniq:
        if any(q != p and _pattern_covers(q, p) for q in uniq):
            continue
        out.append(p)
    return out


def _pattern_covers(wide: str, narrow: str) -> bool:
    w, n = wide.split("."), narrow.split(".")
    for i, tok in enumerate(w):
        if tok == ">":
            return len(n) > i
        if i >= len(n):
            return False
        if tok == "*":
            if n[i] == ">":
                return False
            continue
        if tok != n[i]:
            return False
    return len(w) == len(n)
