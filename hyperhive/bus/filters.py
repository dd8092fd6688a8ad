"""Event filters: which events a reader wants, as NATS subject filters and as an exact check.

`EventFilter.subjects()` gives the narrowest NATS filter subjects that cover the
filter; `matches()` is the exact client-side check that applies to every event
read (pushed-down filters only make reading cheaper, they never decide alone).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from hyperhive.bus import subjects
from hyperhive.errors import InvalidName
from hyperhive.names import ALL_HIVES, HIVE_WIDE, check_agent, check_hive, show

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
        tokens[-1] = subjects.REST
    if all(_TOKEN_WORD.fullmatch(t) for t in tokens[:-1]) and (
        tokens[-1] == subjects.REST or _TOKEN_WORD.fullmatch(tokens[-1])
    ):
        return tokens
    return None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a reader wants: hives, agents, kind globs."""

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
                raise InvalidName(f"invalid kind pattern {show(k)}")

    def for_hive(self, hive: str) -> EventFilter:
        """The filter narrowed to one hive (what one stream is read with)."""
        return EventFilter(hive=hive, agents=self.agents, kinds=self.kinds)

    def subjects(self) -> list[str]:
        if not self.agents and not self.kinds:
            # Everything the stream holds, odd subjects (`hive.h.evt.x`) included:
            # an unfiltered reader shows even what is not a valid event subject.
            return [subjects.all_events_pattern(self.hive), subjects.inbox_pattern(self.hive)]
        agents = list(self.agents) or [subjects.ANY]
        kind_tokens: list[list[str]] = []
        for k in self.kinds or ("*",):
            toks = _kind_pattern_tokens(k)
            kind_tokens.append(toks if toks is not None else [subjects.REST])
        out: list[str] = []
        for a in agents:
            for toks in kind_tokens:
                out.append(subjects.event_pattern(self.hive, a, ".".join(toks)))
        if self.wants_messages():
            # message.sent lives on inbox subjects; a sender filter can't be pushed
            # down (the subject names the recipient), so read all inboxes then.
            out.append(subjects.inbox_pattern(self.hive))
        return minimise(out)

    def wants_messages(self) -> bool:
        return not self.kinds or any(
            fnmatch.fnmatchcase(subjects.EVENT_MESSAGE_SENT, k) for k in self.kinds
        )

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
        if tok == subjects.REST:
            return len(s) > i
        if i >= len(s) or (tok != subjects.ANY and tok != s[i]):
            return False
    return len(p) == len(s)


def minimise(patterns: list[str]) -> list[str]:
    """Drop patterns covered by another one (NATS refuses overlapping filters)."""
    uniq = list(dict.fromkeys(patterns))
    return [p for p in uniq if not any(q != p and pattern_covers(q, p) for q in uniq)]


def pattern_covers(wide: str, narrow: str) -> bool:
    """True if every subject `narrow` matches is matched by `wide` too."""
    w, n = wide.split("."), narrow.split(".")
    for i, tok in enumerate(w):
        if tok == subjects.REST:
            return len(n) > i
        if i >= len(n):
            return False
        if tok == subjects.ANY:
            if n[i] == subjects.REST:
                return False
            continue
        if tok != n[i]:
            return False
    return len(w) == len(n)
