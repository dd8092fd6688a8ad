"""Names: the one place a hive, agent, kind or verb name is validated.

Agent names become subject tokens, directory names and container names, so
`..`, `/`, `*`, `>`, whitespace and friends never get through. Every check is a
full match and returns the name, so callers write `agent = check_agent(raw)`.
"""

from __future__ import annotations

import re

from hyperhive.errors import InvalidName

HIVE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
AGENT_RE = re.compile(r"[a-z][a-z0-9-]{0,30}")
KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
VERB_RE = re.compile(r"[a-z][a-z0-9_]{0,47}")
MAX_KIND = 64

HIVE_WIDE = "_"  # the agent token of hive-wide events
OPERATOR = "_operator"  # the caller token of operator commands
SYSTEM = "_system"  # the sender of system messages
ALL_HIVES = "*"  # readers only: every hive on the server


def show(value: object) -> str:
    """A name as it appears in a refusal: quoted, and cut if it is long."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "...")


def check_hive(name: str) -> str:
    """Return `name` if it is a valid hive name, else raise `InvalidName`."""
    if not isinstance(name, str) or not HIVE_RE.fullmatch(name):
        raise InvalidName(
            f"invalid hive name {show(name)}: use 1-32 of a-z, 0-9, '-', "
            "starting with a letter or digit"
        )
    return name


def check_agent(name: str) -> str:
    """Return `name` if it is a valid agent name, else raise `InvalidName`."""
    if not isinstance(name, str) or not AGENT_RE.fullmatch(name):
        raise InvalidName(
            f"invalid agent name {show(name)}: use 1-31 of a-z, 0-9, '-', starting with a letter"
        )
    return name


def check_kind(kind: str) -> str:
    """Return `kind` if it is a valid dotted event kind (`turn.finished`)."""
    if not isinstance(kind, str) or len(kind) > MAX_KIND or not KIND_RE.fullmatch(kind):
        raise InvalidName(
            f"invalid event kind {show(kind)}: use dotted lowercase words like 'turn.finished'"
        )
    return kind


def check_verb(verb: str) -> str:
    """Return `verb` if it is a valid command verb (`spawn`, `cancel_turn`)."""
    if not isinstance(verb, str) or not VERB_RE.fullmatch(verb):
        raise InvalidName(f"invalid command verb {show(verb)}")
    return verb


def check_caller(caller: str) -> str:
    """A command's caller: an agent name or `_operator`."""
    return caller if caller == OPERATOR else check_agent(caller)


def is_agent(name: str) -> bool:
    return isinstance(name, str) and AGENT_RE.fullmatch(name) is not None


# ---------------------------------------------------------------- NATS roles

ROLE_ADMIN = "admin"
ROLE_OPERATOR = "operator"
FIXED_ROLES = (ROLE_ADMIN, ROLE_OPERATOR)
AGENT_ROLE_PREFIX = "agent-"


def agent_role(agent: str) -> str:
    """The NATS role (user) of one agent: `agent-<name>`."""
    return AGENT_ROLE_PREFIX + check_agent(agent)


NODE_RE = HIVE_RE


def check_node(name: str) -> str:
    """A local cluster node's name (its nats-server `server_name`): the hive name rule."""
    if not isinstance(name, str) or not NODE_RE.fullmatch(name):
        raise InvalidName(
            f"invalid node name {show(name)}: use 1-32 of a-z, 0-9, '-', "
            "starting with a letter or digit"
        )
    return name


def is_agent_role(role: str) -> bool:
    return isinstance(role, str) and role.startswith(AGENT_ROLE_PREFIX)


def check_role(role: str) -> str:
    """Return `role` if it is admin, operator or agent-<valid name>."""
    if role in FIXED_ROLES:
        return role
    if isinstance(role, str) and role.startswith(AGENT_ROLE_PREFIX):
        agent_role(role[len(AGENT_ROLE_PREFIX) :])
        return role
    raise InvalidName(f"unknown NATS role {show(role)}: use admin, operator or agent-<name>")
