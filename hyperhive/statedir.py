"""The state dir: every path under `<state>/`, built in this one module.

    <state>/                          /var/lib/hyperhive on NixOS, ./.hyperhive for `up`
      up.lock                         held (flock) by the `up` or `nats` that owns the dir
      events.sqlite                   event log + projections (WAL)
      nats/server.conf                generated nats-server config
      nats/auth.conf                  generated users and permissions
      nats/auth.lock                  held while auth.conf is rewritten
      nats/credentials/<role>.json    admin, operator (every hive), route (0600)
      nats/credentials/<hive>/<role>.json   a hive's own roles: operator, agent-<name>
      nats/jetstream/                 the JetStream store
      nats/server.log                 the server's own log
      nats/server.json                where the running embedded server listens
      nats/last-port                  the port it used last (reused when free)
      nats/nodes/<node>/              one node of a local cluster: its server.conf,
                                      jetstream/, server.log, server.json, last-port, lock
      agents/<name>/state/            bind-mounted to /state in the agent's container
      agents/<name>/claude/           bind-mounted to /root/.claude
      agents/<name>/harness.log       the process backend's harness output
      agents/<name>/config/proposed/  git repo the manager commits agent.nix to
      agents/<name>/config/applied/   git repo only c0re writes (what is built)
      dashboard/operator-token        the dashboard's operator token, hashed (0600)
      dashboard/session-key           the key sealing the dashboard's session cookies (0600)

Agent names are validated before they become a path, and `inside` proves a
resolved path lies under the state dir before anything is deleted there.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from hyperhive.errors import ConfigError, InvalidName
from hyperhive.names import check_agent, check_hive, check_node, check_role

EVENTS_DB = "events.sqlite"
DIR_MODE = 0o700
_EFFECTIVE = os.access in os.supports_effective_ids


@dataclass(frozen=True)
class ServerFiles:
    """The files of one nats-server of a state dir: the embedded one, or a cluster node's."""

    dir: Path
    conf: Path
    jetstream: Path
    log: Path
    info: Path  # where it listens, while it runs
    last_port: Path
    lock: Path  # held by whoever runs it (`up.lock` for the embedded server)
    auth_include: str  # auth.conf as `conf` includes it (nats-server: relative to conf's dir)


@dataclass(frozen=True)
class StateDir:
    """One hive machine's state dir (an absolute path)."""

    root: Path

    @classmethod
    def at(cls, path: str | Path) -> StateDir:
        """The state dir at `path`, made absolute (`~` expanded)."""
        text = str(path)
        if not text:
            raise ConfigError("state_dir: must not be empty")
        return cls(Path(text).expanduser().resolve())

    def check(self) -> StateDir:
        """Refuse (`ConfigError`) a state dir that exists but is not a directory; create nothing."""
        try:
            is_dir = self.root.is_dir()
            exists = is_dir or self.root.exists()
        except OSError as exc:
            raise ConfigError(f"state dir {self.root}: {exc.strerror or exc}") from None
        if exists and not is_dir:
            raise ConfigError(
                f"state dir {self.root} is not a directory: remove it or pass another --state-dir"
            )
        return self

    def ensure(self) -> StateDir:
        """Create the state dir (0700, parents too) if missing; `ConfigError` if it can't be used.

        Refused: a path that is not a directory, one that can't be created (a
        read-only file system, no permission), one this user can't write in.
        """
        self.check()
        try:
            self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the state dir {self.root}: {exc.strerror or exc}"
            ) from None
        if not os.access(self.root, os.W_OK | os.X_OK, effective_ids=_EFFECTIVE):
            raise ConfigError(
                f"cannot write in the state dir {self.root}: {_why_unwritable(self.root)}"
            )
        return self

    # ------------------------------------------------------------ the hive's own files

    @property
    def lock(self) -> Path:
        return self.root / "up.lock"

    @property
    def events_db(self) -> Path:
        return self.root / EVENTS_DB

    # ------------------------------------------------------------ the embedded server

    @property
    def nats(self) -> Path:
        return self.root / "nats"

    @property
    def server_conf(self) -> Path:
        return self.nats / "server.conf"

    @property
    def auth_conf(self) -> Path:
        return self.nats / "auth.conf"

    @property
    def auth_lock(self) -> Path:
        """Held while auth.conf is rendered from the credentials and written."""
        return self.nats / "auth.lock"

    @property
    def jetstream(self) -> Path:
        return self.nats / "jetstream"

    @property
    def server_log(self) -> Path:
        return self.nats / "server.log"

    @property
    def server_info(self) -> Path:
        return self.nats / "server.json"

    @property
    def last_port(self) -> Path:
        return self.nats / "last-port"

    @property
    def credentials(self) -> Path:
        return self.nats / "credentials"

    def credentials_file(self, role: str, hive: str | None = None) -> Path:
        """A role's credentials: server-wide (`hive=None`), or one hive's own role."""
        name = f"{check_role(role)}.json"
        return self.credentials / name if hive is None else self.hive_credentials(hive) / name

    @property
    def route_credentials(self) -> Path:
        """The user and password a local cluster's nodes open their routes with."""
        return self.credentials / "route.json"

    def hive_credentials(self, hive: str) -> Path:
        """The credentials of one hive's own roles (its operator, its agents)."""
        return self.credentials / check_hive(hive)

    def server_files(self, node: str | None = None) -> ServerFiles:
        """The files of the embedded server (`node=None`) or of one local cluster node."""
        if node is None:
            return ServerFiles(
                dir=self.nats,
                conf=self.server_conf,
                jetstream=self.jetstream,
                log=self.server_log,
                info=self.server_info,
                last_port=self.last_port,
                lock=self.lock,
                auth_include="auth.conf",
            )
        d = self.nodes / check_node(node)
        return ServerFiles(
            dir=d,
            conf=d / "server.conf",
            jetstream=d / "jetstream",
            log=d / "server.log",
            info=d / "server.json",
            last_port=d / "last-port",
            lock=d / "lock",
            auth_include="../../auth.conf",
        )

    @property
    def nodes(self) -> Path:
        """The local cluster's nodes, one dir each."""
        return self.nats / "nodes"

    # ------------------------------------------------------------ the dashboard

    @property
    def dashboard(self) -> Path:
        return self.root / "dashboard"

    @property
    def operator_token(self) -> Path:
        """The operator token's sha256 and the sign-in generation (never the token)."""
        return self.dashboard / "operator-token"

    @property
    def session_key(self) -> Path:
        """The key that seals the dashboard's session cookies."""
        return self.dashboard / "session-key"

    # ------------------------------------------------------------ agents

    @property
    def agents(self) -> Path:
        return self.root / "agents"

    def agent(self, name: str) -> Path:
        return self.agents / check_agent(name)

    def agent_state(self, name: str) -> Path:
        return self.agent(name) / "state"

    def agent_claude(self, name: str) -> Path:
        return self.agent(name) / "claude"

    def harness_log(self, name: str) -> Path:
        return self.agent(name) / "harness.log"

    def proposed_config(self, name: str) -> Path:
        """The git repo the manager commits an agent's config to."""
        return self.agent(name) / "config" / "proposed"

    def applied_config(self, name: str) -> Path:
        """The git repo only c0re writes: what the agent's container is built from."""
        return self.agent(name) / "config" / "applied"

    def inside(self, path: Path) -> Path:
        """`path` resolved, if it lies strictly inside the state dir; else `InvalidName`."""
        resolved = path.resolve()
        if resolved == self.root or not resolved.is_relative_to(self.root):
            raise InvalidName(f"refusing {path}: it is not inside the state dir {self.root}")
        return resolved


def _why_unwritable(path: Path) -> str:
    with contextlib.suppress(OSError):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return os.strerror(errno.EROFS)
    return os.strerror(errno.EACCES)
