"""A real 3-node NATS cluster on loopback, for any test: start it, kill a node, restart it.

    with LocalCluster(tmp_path / "cluster") as cluster:   # or the `cluster` fixture
        cfg = cluster.config("lab", tmp_path / "lab")      # R3 stream, the seed list
        leader = await cluster.stream_leader(cfg.hive)     # which node leads HIVE_LAB
        cluster.kill(leader)                               # SIGKILL, as a crash
        cluster.restart(leader)                            # same ports, same store
        await cluster.wait_ready()                         # JetStream answers on every node

The nodes are `hyperhive nats --cluster` nodes (`EmbeddedServer` with a
`ClusterNode`): one state dir for the cluster, each node's store and log under
`<state>/nats/nodes/<node>/`, the same users on every node (the state dir's one
auth.conf), routes with generated credentials. Client ports are picked by the
servers; route ports are found free first (tried again if one was taken
meanwhile). Hives using the cluster get their own state dirs and name the
cluster's as `nats_state_dir`, so the agent users their c0re writes reach every
node. The dashboard's failover test can use it the same way: the `cluster`
fixture is in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import nats.errors
from nats.aio.client import Client
from nats.js import api as js_api
from nats.js import errors as js_errors

from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.server import ClusterNode, EmbeddedServer, reload_running
from hyperhive.config import HiveConfig, StreamConfig
from hyperhive.errors import ServerError
from tests.helpers import wait_until

CLUSTER = "hh-test"
SIZE = 3
HIVE = "default"  # the hive the cluster's own auth.conf is first written for
READY_TIMEOUT = 30.0
LIMITS = StreamConfig(max_bytes=64 * 1024 * 1024, replicas=3)
PROBE = "HH_PLACEMENT_PROBE"
PROBE_SUBJECT = "hh-placement-probe"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def jetstream_answers(
    state: Path,
    url: str,
    name: str,
    timeout: float = READY_TIMEOUT,
    tails: Callable[[], str] = lambda: "",
) -> None:
    """Until the node at `url` answers JetStream requests (its cluster has a meta leader)."""
    cfg = HiveConfig(nats_url=url, state_dir=str(state))

    async def answers() -> bool:
        try:
            nc = await connect(resolve_endpoint(cfg, auth.ADMIN), f"ready-{name}")
        except (nats.errors.Error, TimeoutError, OSError):
            return False
        try:
            await nc.jetstream(timeout=2).account_info()
            return True
        except (nats.errors.Error, TimeoutError, OSError):
            return False
        finally:
            await nc.close()

    await wait_until(answers, timeout, lambda: f"JetStream on {name}\n" + tails(), interval=0.1)


class LocalCluster:
    """Three nats-server nodes routed to each other, JetStream on every one."""

    def __init__(self, state: Path, size: int = SIZE, name: str = CLUSTER) -> None:
        self.state = state
        self.size = size
        self.name = name
        self.nodes: dict[str, EmbeddedServer] = {}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> LocalCluster:
        for attempt in range(3):
            self._make_nodes()
            try:
                for node in self.nodes.values():
                    node.start()
                return self
            except ServerError:
                self.stop()  # a route port was taken meanwhile: new ports, again
                if attempt == 2:
                    raise
        return self

    def _make_nodes(self) -> None:
        ports = {f"n{i + 1}": free_port() for i in range(self.size)}
        self.nodes = {}
        for name, port in ports.items():
            routes = tuple(f"127.0.0.1:{p}" for n, p in ports.items() if n != name)
            member = ClusterNode(cluster=self.name, name=name, port=port, routes=routes)
            self.nodes[name] = EmbeddedServer(self.state, HIVE, node=member)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    def kill(self, name: str) -> EmbeddedServer:
        """SIGKILL one node, as a crash would (its store survives)."""
        node = self.nodes[name]
        node.kill()
        return node

    def restart(self, name: str) -> EmbeddedServer:
        """Start a killed or stopped node again: same ports, same store."""
        node = self.nodes[name]
        if not node.running:
            node.start()
        return node

    def heal(self) -> None:
        """Every node running again."""
        for name in self.nodes:
            self.restart(name)

    def reload(self) -> None:
        """Every running node re-reads the state dir's auth.conf (new users)."""
        reload_running(self.state)

    # ------------------------------------------------------------ addresses

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes.values()]

    @property
    def seed(self) -> str:
        """The seed list, as `nats_url` takes it."""
        return ",".join(self.urls)

    def running(self) -> list[str]:
        return [name for name, node in self.nodes.items() if node.running]

    def log_tails(self, lines: int = 15) -> str:
        """Each node's last log lines, for a failure message."""
        return "\n".join(f"--- {name}\n{node.log_tail(lines)}" for name, node in self.nodes.items())

    async def config(
        self,
        hive: str,
        state_dir: Path,
        limits: StreamConfig = LIMITS,
        **settings: object,
    ) -> HiveConfig:
        """A hive on this cluster: its own state dir, the cluster's users, the seed list.

        The hive's own operator is added to every node, and waited for.
        """
        auth.write_auth_conf(self.state, hive)
        await self.wait_users(auth.OPERATOR, hive)
        return HiveConfig(
            hive=hive,
            nats_url=self.seed,
            nats_state_dir=str(self.state),
            state_dir=str(state_dir),
            stream=limits,
            **settings,  # type: ignore[arg-type]
        )

    async def wait_users(self, role: str, hive: str | None, timeout: float = 15.0) -> None:
        """Reload every node, then wait until `role` (of `hive`) logs in on each."""
        self.reload()
        creds = auth.read_credentials(auth.credentials_path(self.state, role, hive))
        deadline = time.monotonic() + timeout
        for name in self.running():
            while True:
                client = Client()
                try:
                    await client.connect(
                        servers=[self.nodes[name].url],
                        user=creds.user,
                        password=creds.password,
                        allow_reconnect=False,
                        connect_timeout=2,
                    )
                    break
                except (nats.errors.Error, OSError, TimeoutError):
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{creds.user} refused by {name}") from None
                    await asyncio.sleep(0.05)  # sleep-ok: the reload is on its way
                finally:
                    await client.close()

    async def admin(self, name: str = "test-cluster-admin") -> Client:
        """An admin connection with the whole seed list (it fails over)."""
        cfg = HiveConfig(nats_url=self.seed, state_dir=str(self.state))
        return await connect(resolve_endpoint(cfg, auth.ADMIN), name, wait=True)

    # ------------------------------------------------------------ JetStream

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until every running node answers JetStream requests (a meta leader is known)."""
        deadline = time.monotonic() + timeout
        for name in self.running():
            left = max(0.0, deadline - time.monotonic())
            await jetstream_answers(self.state, self.nodes[name].url, name, left, self.log_tails)

    async def wait_placeable(self, timeout: float = READY_TIMEOUT) -> None:
        """Until an R3 stream can be placed (every peer back in the meta group): a probe
        stream is made and removed."""
        nc = await self.admin("test-cluster-probe")
        deadline = time.monotonic() + timeout
        probe = js_api.StreamConfig(
            name=PROBE,
            subjects=[PROBE_SUBJECT],
            storage=js_api.StorageType.MEMORY,
            num_replicas=self.size,
        )
        try:
            while True:
                try:
                    js = nc.jetstream(timeout=2)
                    await js.add_stream(probe)
                    await js.delete_stream(PROBE)
                    return
                except (nats.errors.Error, TimeoutError) as exc:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"no R{self.size} stream can be placed after {timeout:.0f}s: {exc}\n"
                            + self.log_tails()
                        ) from None
                    await asyncio.sleep(0.1)  # sleep-ok: polls placement inside a deadline
        finally:
            await nc.close()

    async def stream_leader(self, hive: str, timeout: float = READY_TIMEOUT) -> str:
        """The node that leads the hive's stream (waits for one to be elected)."""
        nc = await self.admin("test-cluster-leader")
        deadline = time.monotonic() + timeout
        try:
            while True:
                with contextlib.suppress(nats.errors.Error, TimeoutError):
                    info = await nc.jetstream(timeout=2).stream_info(subjects.stream_name(hive))
                    leader = info.cluster.leader if info.cluster else None
                    if leader in self.nodes and self.nodes[leader].running:
                        return str(leader)
                if time.monotonic() > deadline:
                    raise AssertionError(f"no leader for {hive}'s stream after {timeout:.0f}s")
                await asyncio.sleep(0.1)  # sleep-ok: polls for an election inside a deadline
        finally:
            await nc.close()

    async def wait_current(self, hive: str, timeout: float = READY_TIMEOUT) -> None:
        """Until the hive's stream has a leader and every replica is current."""
        nc = await self.admin("test-cluster-current")
        deadline = time.monotonic() + timeout
        try:
            while True:
                with contextlib.suppress(nats.errors.Error, TimeoutError, js_errors.Error):
                    info = await nc.jetstream(timeout=2).stream_info(subjects.stream_name(hive))
                    c = info.cluster
                    replicas = list(c.replicas or []) if c else []
                    if (
                        c is not None
                        and c.leader
                        and len(replicas) == self.size - 1
                        and all(r.current and not r.offline for r in replicas)
                    ):
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{hive}'s stream not current after {timeout:.0f}s")
                await asyncio.sleep(0.1)  # sleep-ok: polls replica state inside a deadline
        finally:
            await nc.close()

    async def wait_all_current(self, hive: str, timeout: float = READY_TIMEOUT) -> None:
        """Until the hive's stream and every replicated consumer of it have a leader and
        every replica is current: only then may another node go down without one of
        those groups losing its quorum (a node just restarted is still catching up on
        each of them)."""
        nc = await self.admin("test-cluster-all-current")
        deadline = time.monotonic() + timeout
        lagging = "?"
        try:
            while True:
                with contextlib.suppress(nats.errors.Error, TimeoutError, js_errors.Error):
                    lagging = await self._lagging(nc, subjects.stream_name(hive))
                    if not lagging:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"not current after {timeout:.0f}s: {lagging}")
                await asyncio.sleep(0.2)  # sleep-ok: polls replica state inside a deadline
        finally:
            await nc.close()

    async def _lagging(self, nc: Client, stream: str) -> str:
        """The stream, or the first replicated consumer of it, that is not current; or ''."""
        js = nc.jetstream(timeout=3)
        for info in [await js.stream_info(stream)]:
            groups: list[tuple[str, js_api.ClusterInfo | None, int]] = [
                (f"stream {info.config.name}", info.cluster, info.config.num_replicas or 1)
            ]
            for ci in await js.consumers_info(info.config.name or ""):
                name = str(ci.name)
                # The services' durables (the projector's, the inboxes) are replicated as
                # the stream is; readers' consumers have one replica and come and go.
                if name == subjects.PROJECTOR_DURABLE or name.startswith(
                    subjects.INBOX_DURABLE_PREFIX
                ):
                    size = ci.config.num_replicas or info.config.num_replicas or 1
                    groups.append((f"consumer {name}", ci.cluster, size))
            for what, c, size in groups:
                if size <= 1:
                    continue
                peers = list(c.replicas or []) if c else []
                if c is None or not c.leader or len(peers) < size - 1:
                    return f"{what}: no leader or missing peers"
                if not all(r.current and not r.offline for r in peers):
                    return f"{what}: a replica is behind"
        return ""


@contextlib.contextmanager
def local_cluster(state: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(state)
    try:
        cluster.start()
    except ServerError as exc:
        raise AssertionError(f"the cluster did not start: {exc}\n{cluster.log_tails()}") from exc
    try:
        yield cluster
    finally:
        cluster.stop()


def cluster_env(cfg: HiveConfig) -> dict[str, str]:
    """Environment that points a CLI subprocess at a hive on the cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(
        HYPERHIVE_NATS_URL=cfg.nats_url,
        HYPERHIVE_NATS_STATE_DIR=cfg.nats_state_dir,
        HYPERHIVE_HIVE=cfg.hive,
        HYPERHIVE_STATE_DIR=cfg.state_dir,
        HYPERHIVE_CONFIG=os.devnull,
        NO_COLOR="1",
    )
    return env
