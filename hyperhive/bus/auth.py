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
from hyperhive.errors import ConfigError
from hyperhive.files import write_atomic

ADMIN = "admin"
OPERATOR = "operator"
ROLES = (ADMIN, OPERATOR)
AGENT_ROLE_PREFIX = "agent-"


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a client needs to log in to NATS as one role."""

    user: str
    password: str


def agent_role(agent: str) -> str:
    return AGENT_ROLE_PREFIX + subjects.check_agent(agent)


def check_role(role: str) -> str:
    if role in ROLES:
        return role
    if role.startswith(AGENT_ROLE_PREFIX):
        agent_role(role[len(AGENT_ROLE_PREFIX) :])
        return role
    raise ConfigError(f"unknown NATS role {role!r}: use admin, operator or agent-<name>")


def inbox_prefix(role: str) -> str:
    """The reply-inbox prefix a role's connections use (its users may only read there)."""
    return f"_INBOX.{check_role(role)}"


def credentials_dir(state_dir: Path) -> Path:
    return state_dir / "nats" / "credentials"


def credentials_path(state_dir: Path, role: str) -> Path:
    return credentials_dir(state_dir) / f"{check_role(role)}.json"


def read_credentials(path: Path) -> Credentials:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Credentials)
    except OSError as exc:
        raise ConfigError(f"cannot read NATS credentials {path}: {exc.strerror}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"NATS credentials {path} are not valid: {exc}") from exc


def ensure_credentials(state_dir: Path, role: str) -> Credentials:
    """The role's credentials, generated on first use."""
    path = credentials_path(state_dir, role)
    if path.exists():
        return read_credentials(path)
    creds = Credentials(user=role, password=secrets.token_urlsafe(32))
    write_atomic(path, msgspec.json.encode(creds), 0o600)
    return creds


def known_roles(state_dir: Path, agents: list[str] | tuple[str, ...] = ()) -> list[str]:
    """admin, operator, every agent with credentials already, and `agents`."""
    roles = list(ROLES)
    found = sorted(p.stem for p in credentials_dir(state_dir).glob(f"{AGENT_ROLE_PREFIX}*.json"))
    for role in [*found, *(agent_role(a) for a in agents)]:
        if role not in roles:
            roles.append(check_role(role))
    return roles


def permissions(role: str, hive: str) -> dict[str, object]:
    """The nats-server permissions block of one role."""
    check_role(role)
    if role == ADMIN:
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    if role == OPERATOR:
        return {
            "publish": {
                "allow": [
                    "hive.*.cmd.c0re._operator.>",
                    "hive.*.cmd.harness.>",
                    "$JS.API.INFO",
                    "$JS.API.STREAM.INFO.*",
                    "$JS.API.STREAM.NAMES",
                    "$JS.API.STREAM.LIST",
                    "$JS.API.STREAM.MSG.GET.*",
                    "$JS.API.DIRECT.GET.>",
                    "$JS.API.CONSUMER.CREATE.>",
                    "$JS.API.CONSUMER.INFO.>",
                    "$JS.API.CONSUMER.MSG.NEXT.>",
                    "$JS.API.CONSUMER.DELETE.>",
                    "$JS.API.CONSUMER.NAMES.*",
                    "$JS.API.CONSUMER.LIST.*",
                    "$JS.FC.>",
                ]
            },
            "subscribe": {"allow": [f"{inbox_prefix(role)}.>", "hive.*.evt.>", "hive.*.inbox.>"]},
        }
    agent = role[len(AGENT_ROLE_PREFIX) :]
    h = subjects.check_hive(hive)
    stream = subjects.stream_name(h)
    durable = f"inbox-{agent}"
    return {
        "publish": {
            "allow": [
                f"hive.{h}.cmd.c0re.{agent}.>",
                f"hive.{h}.evt.{agent}.turn.>",
                f"hive.{h}.evt.{agent}.recv.>",
                "$JS.API.INFO",
                f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(role)}.>", f"hive.{h}.cmd.harness.{agent}.>"]},
    }


def render_auth_conf(state_dir: Path, hive: str, agents: list[str] | tuple[str, ...] = ()) -> str:
    """The `authorization { users = [...] }` block for every known role.

    nats-server's config format accepts JSON values, so each user is a JSON object.
    """
    users = []
    for role in known_roles(state_dir, agents):
        creds = ensure_credentials(state_dir, role)
        users.append(
            {"user": creds.user, "password": creds.password, "permissions": permissions(role, hive)}
        )
    body = ",\n".join("    " + json.dumps(u, sort_keys=True) for u in users)
    return (
        "# generated by hyperhive: do not edit\nauthorization {\n  users = [\n"
        + body
        + "\n  ]\n}\n"
    )


def write_auth_conf(state_dir: Path, hive: str, agents: list[str] | tuple[str, ...] = ()) -> Path:
    """Generate missing credentials and (re)write `<state>/nats/auth.conf`."""
    path = state_dir / "nats" / "auth.conf"
    write_atomic(path, render_auth_conf(state_dir, hive, agents).encode(), 0o600)
    return path
