"""NATS credentials per role, and the server's authorization block built from them.

Roles:
  admin            c0re and the projector: every subject.
  operator         hivectl, the dashboard, hive-events: operator commands, harness
                   commands, read events through JetStream; never publish an event.
  agent-<name>     one per agent: its own command subject, its own inbox consumer,
                   its own turn/recv events; nothing else.

Credentials live in `<state>/nats/credentials/<role>.json` (mode 0600) as
`{"user": ..., "password": ...}`; `auth.conf` beside them is the nats-server
`authorization` block. Generating is idempotent: existing credentials are kept.
Each role gets its own reply-inbox prefix (`_INBOX.<role>`), so one agent never
sees another's replies.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import msgspec

from hyperhive.bus import subjects
from hyperhive.errors import ConfigError, InvalidName
from hyperhive.files import write_atomic
from hyperhive.names import (
    AGENT_ROLE_PREFIX,
    ALL_HIVES,
    FIXED_ROLES,
    ROLE_ADMIN,
    ROLE_OPERATOR,
    agent_role,
    check_hive,
)
from hyperhive.names import OPERATOR as OPERATOR_CALLER
from hyperhive.names import check_role as _check_role
from hyperhive.statedir import StateDir

ADMIN = ROLE_ADMIN
OPERATOR = ROLE_OPERATOR
ROLES = FIXED_ROLES


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a client needs to log in to NATS as one role (an agent's also names its hive)."""

    user: str
    password: str
    hive: str | None = None  # agent roles only: the hive the agent belongs to


def check_role(role: str) -> str:
    try:
        return _check_role(role)
    except InvalidName as exc:
        raise ConfigError(str(exc)) from None


def inbox_prefix(role: str) -> str:
    """The reply-inbox prefix a role's connections use (its users may only read there)."""
    return f"_INBOX.{check_role(role)}"


def credentials_dir(state_dir: Path) -> Path:
    return StateDir(state_dir).credentials


def credentials_path(state_dir: Path, role: str) -> Path:
    return StateDir(state_dir).credentials_file(check_role(role))


def read_credentials(path: Path) -> Credentials:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Credentials)
    except OSError as exc:
        raise ConfigError(f"cannot read NATS credentials {path}: {exc.strerror}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"NATS credentials {path} are not valid: {exc}") from exc


def ensure_credentials(state_dir: Path, role: str, hive: str | None = None) -> Credentials:
    """The role's credentials, generated on first use.

    An agent's credentials record its hive. Asking for an agent of one hive whose
    name already belongs to another hive on this server is refused (agent users
    are per server); an agent file written before hives were recorded is
    stamped with `hive` now.
    """
    path = credentials_path(state_dir, role)
    agent = role.startswith(AGENT_ROLE_PREFIX)
    if hive is not None:
        check_hive(hive)
    if path.exists():
        creds = read_credentials(path)
        if agent and hive is not None:
            if creds.hive is None:
                creds = msgspec.structs.replace(creds, hive=hive)
                write_atomic(path, msgspec.json.encode(creds), 0o600)
            elif creds.hive != hive:
                raise ConfigError(
                    f"agent {role[len(AGENT_ROLE_PREFIX) :]!r} already belongs to hive "
                    f"{creds.hive!r} on this server: pick another name for hive {hive!r}"
                )
        return creds
    creds = Credentials(user=role, password=secrets.token_urlsafe(32), hive=hive if agent else None)
    write_atomic(path, msgspec.json.encode(creds), 0o600)
    return creds


def protected_durables(agents: list[str] | tuple[str, ...]) -> list[str]:
    """The durable consumers of the hive's services: no operator may touch them."""
    return [subjects.PROJECTOR_DURABLE, *(subjects.inbox_durable(a) for a in agents)]


def _consumer_denials(durables: list[str]) -> list[str]:
    """The JetStream API subjects that would create, read from or delete `durables`."""
    any_stream = subjects.ANY
    out = [subjects.js_api("CONSUMER", "DURABLE", "CREATE", subjects.REST)]  # no durables at all
    for d in durables:
        out += [
            subjects.js_api("CONSUMER", "CREATE", any_stream, d),
            subjects.js_api("CONSUMER", "CREATE", any_stream, d, subjects.REST),
            subjects.js_api("CONSUMER", "DELETE", any_stream, d),
            subjects.js_api("CONSUMER", "MSG", "NEXT", any_stream, d),
        ]
    return out


def agents_of(state_dir: Path) -> list[str]:
    """Every agent with credentials in the state dir."""
    prefix = len(AGENT_ROLE_PREFIX)
    return sorted(
        p.stem[prefix:] for p in credentials_dir(state_dir).glob(f"{AGENT_ROLE_PREFIX}*.json")
    )


def known_roles(state_dir: Path, agents: list[str] | tuple[str, ...] = ()) -> list[str]:
    """admin, operator, every agent with credentials already, and `agents`."""
    roles = list(ROLES)
    found = sorted(p.stem for p in credentials_dir(state_dir).glob(f"{AGENT_ROLE_PREFIX}*.json"))
    for role in [*found, *(agent_role(a) for a in agents)]:
        if role not in roles:
            roles.append(check_role(role))
    return roles


def permissions(
    role: str, hive: str, agents: list[str] | tuple[str, ...] = ()
) -> dict[str, object]:
    """The nats-server permissions block of one role.

    `hive` is the hive an agent role acts in; `agents` (every agent on the
    server) name the inbox durables the operator may not touch.
    """
    check_role(role)
    if role == ADMIN:
        return {"publish": {"allow": [subjects.REST]}, "subscribe": {"allow": [subjects.REST]}}
    if role == OPERATOR:
        every = ALL_HIVES
        return {
            "publish": {
                "allow": [
                    subjects.command_pattern(every, OPERATOR_CALLER),
                    subjects.harness_command_pattern(every),
                    subjects.js_api("INFO"),
                    subjects.js_api("STREAM", "INFO", subjects.ANY),
                    subjects.js_api("STREAM", "NAMES"),
                    subjects.js_api("STREAM", "LIST"),
                    subjects.js_api("STREAM", "MSG", "GET", subjects.ANY),
                    subjects.js_api("DIRECT", "GET", subjects.REST),
                    subjects.js_api("CONSUMER", "CREATE", subjects.REST),
                    subjects.js_api("CONSUMER", "INFO", subjects.REST),
                    subjects.js_api("CONSUMER", "MSG", "NEXT", subjects.REST),
                    subjects.js_api("CONSUMER", "DELETE", subjects.REST),
                    subjects.js_api("CONSUMER", "NAMES", subjects.ANY),
                    subjects.js_api("CONSUMER", "LIST", subjects.ANY),
                    subjects.js_fc_pattern(),
                ],
                # Read through its own ephemeral consumers only: never create, read
                # from or delete a service's durable (the projector's, an inbox).
                # The 5-token CONSUMER.CREATE.<stream> takes the name from the body,
                # where a deny cannot see it: refused, hyperhive names consumers in
                # the subject.
                "deny": [
                    subjects.js_api("CONSUMER", "CREATE", subjects.ANY),
                    *_consumer_denials(protected_durables(agents)),
                ],
            },
            "subscribe": {
                "allow": [
                    subjects.reply_inbox_pattern(inbox_prefix(role)),
                    subjects.all_events_pattern(every),
                    subjects.inbox_pattern(every),
                ]
            },
        }
    agent = role[len(AGENT_ROLE_PREFIX) :]
    h = check_hive(hive)
    stream = subjects.stream_name(h)
    durable = subjects.inbox_durable(agent)
    return {
        "publish": {
            "allow": [
                subjects.command_pattern(h, agent),
                subjects.event_pattern(h, agent, "turn." + subjects.REST),
                subjects.event_pattern(h, agent, "recv." + subjects.REST),
                subjects.event_subject(h, agent, "agent.needs_login"),
                subjects.js_api("INFO"),
                subjects.js_api("CONSUMER", "INFO", stream, durable),
                subjects.js_msg_next(stream, durable),
                subjects.js_ack_pattern(stream, durable),
            ]
        },
        "subscribe": {
            "allow": [
                subjects.reply_inbox_pattern(inbox_prefix(role)),
                subjects.harness_command_pattern(h, agent),
            ]
        },
        # Its harness answers the harness commands it receives (cancel_turn, kick):
        # one reply per request, to that request's reply subject only.
        "allow_responses": {"max": 1, "expires": "1m"},
    }


def render_auth_conf(state_dir: Path, hive: str, agents: list[str] | tuple[str, ...] = ()) -> str:
    """The `authorization { users = [...] }` block for every known role.

    `agents` are added (with credentials for `hive`); agents already known keep
    the hive their credentials name, so several hives share one server.
    nats-server's config format accepts JSON values, so each user is a JSON object.
    """
    new = set(agents)
    roles = known_roles(state_dir, agents)
    every_agent = sorted({*agents_of(state_dir), *agents})
    users = []
    for role in roles:
        is_agent = role.startswith(AGENT_ROLE_PREFIX)
        name = role[len(AGENT_ROLE_PREFIX) :] if is_agent else ""
        creds = ensure_credentials(state_dir, role, hive if name in new else None)
        if is_agent and creds.hive is None:  # written before hives were recorded
            creds = ensure_credentials(state_dir, role, hive)
        role_hive = creds.hive if is_agent and creds.hive else hive
        perms = permissions(role, role_hive, every_agent)
        users.append({"user": creds.user, "password": creds.password, "permissions": perms})
    body = ",\n".join("    " + json.dumps(u, sort_keys=True) for u in users)
    return (
        "# generated by hyperhive: do not edit\nauthorization {\n  users = [\n"
        + body
        + "\n  ]\n}\n"
    )


def write_auth_conf(state_dir: Path, hive: str, agents: list[str] | tuple[str, ...] = ()) -> Path:
    """Generate missing credentials and (re)write `<state>/nats/auth.conf`."""
    path = StateDir(state_dir).auth_conf
    write_atomic(path, render_auth_conf(state_dir, hive, agents).encode(), 0o600)
    return path
