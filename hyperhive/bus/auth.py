"""NATS credentials per role, and the server's authorization block built from them.

Roles (docs/security.md has the whole table, checked against a live server):
  admin                  c0re and the projector: every subject.
  operator               server-wide: the dashboard, `hive-events --hive '*'`: operator
                         commands and harness commands of every hive, read every hive's
                         events through JetStream; never publish an event.
  operator of <hive>     the same, in one hive only (hivectl, hive-events of that hive).
  agent-<name> of <hive> one agent: its own command subject, its own inbox consumer,
                         its own turn/recv events; nothing else, and nothing in any
                         other hive.

The server-wide roles live in `<state>/nats/credentials/<role>.json`, a hive's own
in `<state>/nats/credentials/<hive>/<role>.json` (mode 0600), as `{"user": ...,
"password": ..., "hive": ...}`: two hives may each have an agent `manager`. Users
are `admin`, `operator`, `operator@<hive>` and `agent-<name>@<hive>` (an agent
file from before hives had their own dirs is moved into its hive's and keeps its
user, `agent-<name>`). `auth.conf` beside them is the nats-server
`authorization` block. Generating is idempotent: existing credentials are kept.
Each role gets its own reply-inbox prefix (`subjects.reply_inbox_prefix`), so one
client never sees another's replies.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

import msgspec

from hyperhive import lockfile
from hyperhive.bus import subjects
from hyperhive.errors import ConfigError, InvalidName
from hyperhive.files import create_once, write_atomic
from hyperhive.names import (
    AGENT_ROLE_PREFIX,
    ALL_HIVES,
    FIXED_ROLES,
    HIVE_RE,
    ROLE_ADMIN,
    ROLE_OPERATOR,
    agent_role,
    check_hive,
    is_agent_role,
)
from hyperhive.names import OPERATOR as OPERATOR_CALLER
from hyperhive.names import check_role as _check_role
from hyperhive.statedir import DIR_MODE, StateDir

log = logging.getLogger("hyperhive.bus")

ADMIN = ROLE_ADMIN
OPERATOR = ROLE_OPERATOR
ROLES = FIXED_ROLES
ROUTE_USER = "route"  # a local cluster's nodes log in to each other's routes as this


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a client needs to log in to NATS as one role (a hive's own role names its hive)."""

    user: str
    password: str
    hive: str | None = None  # a hive's own roles only: the hive they act in


def check_role(role: str) -> str:
    try:
        return _check_role(role)
    except InvalidName as exc:
        raise ConfigError(str(exc)) from None


def scope(role: str, hive: str | None) -> str | None:
    """The hive a role's credentials belong to: None for the server-wide ones.

    `admin` is always server-wide; `operator` is server-wide unless a hive is
    named; an agent always belongs to a hive.
    """
    check_role(role)
    if role == ADMIN or hive is None or hive == ALL_HIVES:
        if is_agent_role(role):
            raise ConfigError(f"{role} belongs to a hive: name it")
        return None
    return check_hive(hive)


def inbox_prefix(role: str, hive: str | None = None) -> str:
    """The reply-inbox prefix a role's connections use (its users may only read there)."""
    return subjects.reply_inbox_prefix(role, scope(role, hive))


def user_name(role: str, hive: str | None = None) -> str:
    """The NATS user of a new role's credentials: `admin`, `operator@lab`, `agent-alice@lab`."""
    h = scope(role, hive)
    return role if h is None else f"{role}@{h}"


def credentials_dir(state_dir: Path) -> Path:
    return StateDir(state_dir).credentials


def credentials_path(state_dir: Path, role: str, hive: str | None = None) -> Path:
    return StateDir(state_dir).credentials_file(check_role(role), scope(role, hive))


def read_credentials(path: Path) -> Credentials:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Credentials)
    except OSError as exc:
        raise ConfigError(f"cannot read NATS credentials {path}: {exc.strerror}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"NATS credentials {path} are not valid: {exc}") from exc


def _legacy_agent_files(state_dir: Path) -> list[Path]:
    """Agent files from before hives had their own credentials dirs."""
    return sorted(credentials_dir(state_dir).glob(f"{AGENT_ROLE_PREFIX}*.json"))


def migrate_legacy(state_dir: Path, hive: str) -> list[Path]:
    """Move `credentials/agent-<name>.json` into its hive's dir, user and password kept.

    A file that names no hive (written before hives were recorded) belongs to
    `hive`. Returns the new paths. Idempotent; a file already in place wins.
    """
    moved = []
    for old in _legacy_agent_files(state_dir):
        role = check_role(old.stem)
        creds = read_credentials(old)
        owner = check_hive(creds.hive or hive)
        new = credentials_path(state_dir, role, owner)
        if not new.exists():
            new.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            stamped = msgspec.structs.replace(creds, hive=owner)
            write_atomic(new, msgspec.json.encode(stamped), 0o600)
            log.info("moved NATS credentials %s to %s (user %s kept)", old, new, creds.user)
        old.unlink(missing_ok=True)  # another process may have moved it meanwhile
        moved.append(new)
    return moved


def ensure_credentials(state_dir: Path, role: str, hive: str | None = None) -> Credentials:
    """The role's credentials, generated on first use (in its hive's dir, for a hive's role)."""
    h = scope(role, hive)
    if h is not None and is_agent_role(role):
        migrate_legacy(state_dir, h)
    path = credentials_path(state_dir, role, h)
    if path.exists():
        creds = read_credentials(path)
        if h is not None and creds.hive != h:
            creds = msgspec.structs.replace(creds, hive=h)
            write_atomic(path, msgspec.json.encode(creds), 0o600)
        return creds
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    creds = Credentials(user=user_name(role, h), password=secrets.token_urlsafe(32), hive=h)
    return _generate(path, creds)


def route_credentials(state_dir: Path) -> Credentials:
    """The user and password a local cluster's nodes open their routes with (generated once)."""
    path = StateDir(state_dir).route_credentials
    if path.exists():
        return read_credentials(path)
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return _generate(path, Credentials(user=ROUTE_USER, password=secrets.token_urlsafe(32)))


def _generate(path: Path, creds: Credentials) -> Credentials:
    """`creds` stored at `path`, or what another process stored there a moment before
    (processes starting together must all go on with the same password)."""
    if create_once(path, msgspec.json.encode(creds), 0o600):
        return creds
    return read_credentials(path)


def hives_of(state_dir: Path) -> list[str]:
    """Every hive with credentials of its own in the state dir."""
    root = credentials_dir(state_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and HIVE_RE.fullmatch(p.name))


def agents_of(state_dir: Path, hive: str | None = None) -> list[str]:
    """The agents with credentials in the state dir: of one hive, or of every hive."""
    found: set[str] = set()
    for h in [check_hive(hive)] if hive is not None else hives_of(state_dir):
        folder = StateDir(state_dir).hive_credentials(h)
        found.update(p.stem[len(AGENT_ROLE_PREFIX) :] for p in folder.glob("agent-*.json"))
    return sorted(found)


def known_credentials(state_dir: Path) -> list[tuple[str, Path]]:
    """(who, file) of every role with credentials: `admin`, `operator@lab`, `agent-x@lab`."""
    out = [(role, credentials_path(state_dir, role)) for role in ROLES]
    for h in hives_of(state_dir):
        roles = [OPERATOR, *(agent_role(a) for a in agents_of(state_dir, h))]
        out += [(f"{r}@{h}", credentials_path(state_dir, r, h)) for r in roles]
    return [(who, path) for who, path in out if path.exists()]


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


def _operator_reads(stream: str) -> list[str]:
    """What an operator may ask JetStream about `stream` (`*`: every stream)."""
    return [
        subjects.js_api("STREAM", "INFO", stream),
        subjects.js_api("STREAM", "MSG", "GET", stream),
        subjects.js_api("DIRECT", "GET", stream),
        subjects.js_api("DIRECT", "GET", stream, subjects.REST),
        subjects.js_api("CONSUMER", "CREATE", stream, subjects.REST),
        subjects.js_api("CONSUMER", "INFO", stream, subjects.REST),
        subjects.js_api("CONSUMER", "MSG", "NEXT", stream, subjects.REST),
        subjects.js_api("CONSUMER", "DELETE", stream, subjects.REST),
        subjects.js_api("CONSUMER", "NAMES", stream),
        subjects.js_api("CONSUMER", "LIST", stream),
    ]


def permissions(
    role: str, hive: str | None = None, agents: list[str] | tuple[str, ...] = ()
) -> dict[str, object]:
    """The nats-server permissions block of one role.

    `hive` is the hive a hive's own role acts in (None: the server-wide
    operator); `agents` (every agent on the server) name the inbox durables no
    operator may touch.
    """
    h = scope(role, hive)
    prefix = subjects.reply_inbox_prefix(role, h)
    if role == ADMIN:
        return {"publish": {"allow": [subjects.REST]}, "subscribe": {"allow": [subjects.REST]}}
    if role == OPERATOR:
        every = h is None
        stream = subjects.ANY if every else subjects.stream_name(h or "")
        target = ALL_HIVES if every else (h or "")
        # Listing the streams names every hive: the server-wide operator only.
        listing = [subjects.js_api("STREAM", s) for s in ("NAMES", "LIST")] if every else []
        allow = [
            subjects.command_pattern(target, OPERATOR_CALLER),
            subjects.harness_command_pattern(target),
            subjects.js_api("INFO"),
            *listing,
            *_operator_reads(stream),
            subjects.js_fc_pattern(None if every else stream),
        ]
        return {
            "publish": {
                "allow": allow,
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
                    subjects.reply_inbox_pattern(prefix),
                    subjects.all_events_pattern(target),
                    subjects.inbox_pattern(target),
                ]
            },
        }
    agent = role[len(AGENT_ROLE_PREFIX) :]
    own = h or ""
    stream = subjects.stream_name(own)
    durable = subjects.inbox_durable(agent)
    return {
        "publish": {
            "allow": [
                subjects.command_pattern(own, agent),
                subjects.event_pattern(own, agent, "turn." + subjects.REST),
                subjects.event_pattern(own, agent, "recv." + subjects.REST),
                subjects.event_subject(own, agent, "agent.needs_login"),
                subjects.js_api("INFO"),
                subjects.js_api("CONSUMER", "INFO", stream, durable),
                subjects.js_msg_next(stream, durable),
                subjects.js_ack_pattern(stream, durable),
            ]
        },
        "subscribe": {
            "allow": [
                subjects.reply_inbox_pattern(prefix),
                subjects.harness_command_pattern(own, agent),
            ]
        },
        # Its harness answers the harness commands it receives (cancel_turn, kick):
        # one reply per request, to that request's reply subject only.
        "allow_responses": {"max": 1, "expires": "1m"},
    }


def render_auth_conf(state_dir: Path, hive: str, agents: list[str] | tuple[str, ...] = ()) -> str:
    """The `authorization { users = [...] }` block for every known role.

    Generates what is missing: admin, the server-wide operator, `hive`'s own
    operator, and `agents` of `hive`. Every hive with credentials in the state
    dir keeps its operator and agents, so several hives share one server (or
    cluster). nats-server's config format accepts JSON values, so each user is a
    JSON object.
    """
    one = hive if hive != ALL_HIVES else None
    if one is not None:
        check_hive(one)
        migrate_legacy(state_dir, one)
    elif _legacy_agent_files(state_dir):
        raise ConfigError(
            "agent credentials of an earlier version wait to be moved into their hive's "
            "dir: run `hyperhive credentials` with the hive's name (--hive NAME)"
        )
    ensure_credentials(state_dir, ADMIN)
    ensure_credentials(state_dir, OPERATOR)
    if one is not None:
        ensure_credentials(state_dir, OPERATOR, one)
        for a in agents:
            ensure_credentials(state_dir, agent_role(a), one)
    every_agent = agents_of(state_dir)
    entries: list[tuple[Credentials, dict[str, object]]] = [
        (read_credentials(credentials_path(state_dir, r)), permissions(r, None, every_agent))
        for r in ROLES
    ]
    for h in hives_of(state_dir):
        roles = [OPERATOR, *(agent_role(a) for a in agents_of(state_dir, h))]
        for r in roles:
            path = credentials_path(state_dir, r, h)
            if path.exists():
                entries.append((read_credentials(path), permissions(r, h, every_agent)))
    users, seen = [], set()
    for creds, perms in entries:
        if creds.user in seen:
            raise ConfigError(
                f"two credential files in {credentials_dir(state_dir)} name the NATS user "
                f"{creds.user!r}: remove one"
            )
        seen.add(creds.user)
        users.append({"user": creds.user, "password": creds.password, "permissions": perms})
    body = ",\n".join("    " + json.dumps(u, sort_keys=True) for u in users)
    return (
        "# generated by hyperhive: do not edit\nauthorization {\n  users = [\n"
        + body
        + "\n  ]\n}\n"
    )


def write_auth_conf(state_dir: Path, hive: str, agents: list[str] | tuple[str, ...] = ()) -> Path:
    """Generate missing credentials and (re)write `<state>/nats/auth.conf`."""
    paths = StateDir(state_dir)
    path = paths.auth_conf
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with lockfile.exclusive(paths.auth_lock):  # one writer at a time, each from the disk
        write_atomic(path, render_auth_conf(state_dir, hive, agents).encode(), 0o600)
    return path


def remove_credentials(state_dir: Path, role: str, hive: str) -> None:
    """Forget one of a hive's roles (a purged agent); rewrite auth.conf without it."""
    credentials_path(state_dir, role, hive).unlink(missing_ok=True)
    legacy = StateDir(state_dir).credentials_file(check_role(role))
    if is_agent_role(role) and legacy.exists() and read_credentials(legacy).hive in (None, hive):
        os.unlink(legacy)
    write_auth_conf(state_dir, hive)
