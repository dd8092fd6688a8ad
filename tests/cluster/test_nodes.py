"""A local cluster of three `hyperhive nats --cluster` nodes: R3 streams, users, failover."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest

from hyperhive.backoff import Backoff
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import ServerPicker, connect, resolve_endpoint
from hyperhive.bus.publish import publish_event
from hyperhive.bus.server import running_urls
from hyperhive.bus.stream import ensure_stream
from hyperhive.errors import NotConnected
from hyperhive.statedir import StateDir
from tests.clusters import LocalCluster, free_port, jetstream_answers
from tests.helpers import BIN, connect_as, state_env, turn_started, wait_for_line, wait_until

pytestmark = [pytest.mark.nats, pytest.mark.cluster]


async def test_a_hive_stream_on_the_cluster_has_three_current_replicas(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    cfg = await cluster.config("r3", tmp_path / "r3")
    nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "test")
    try:
        info = await ensure_stream(nc.jetstream(), cfg.hive, cfg.stream)
        assert info.config.num_replicas == 3
        await cluster.wait_current(cfg.hive)
        info = await nc.jetstream().stream_info(subjects.stream_name(cfg.hive))
        assert info.cluster is not None
        assert info.cluster.name == cluster.name
        peers = {info.cluster.leader, *(r.name for r in info.cluster.replicas or [])}
        assert peers == set(cluster.nodes)
    finally:
        await nc.jetstream().delete_stream(subjects.stream_name(cfg.hive))
        await nc.close()


async def test_every_node_knows_the_same_users(cluster: LocalCluster, tmp_path: Path) -> None:
    cfg = await cluster.config("users", tmp_path / "users")
    for node in cluster.nodes.values():
        for role, hive in ((auth.OPERATOR, None), (auth.OPERATOR, cfg.hive)):
            client = await connect_as(node.url, cluster.state, role, hive=hive)
            assert client.is_connected
            await client.close()


async def test_a_new_agent_user_reaches_every_node_at_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    auth.write_auth_conf(cluster.state, "users", ["carol"])
    await cluster.wait_users("agent-carol", "users")


async def test_a_client_with_the_seed_list_fails_over_when_its_node_dies(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    cfg = await cluster.config("failover", tmp_path / "failover")
    nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "test")
    try:
        await ensure_stream(nc.jetstream(), cfg.hive, cfg.stream)
        first = nc.connected_url
        assert first is not None
        victim = next(n for n in cluster.nodes.values() if n.port == first.port)
        cluster.kill(victim.name)

        await wait_until(
            lambda: (
                nc.is_connected
                and nc.connected_url is not None
                and nc.connected_url.port != first.port
            ),
            15,
            what="the client on another node",
        )
        published = await publish_event(nc.jetstream(), turn_started(cfg.hive), retry_for=30)
        assert published.seq == 1
    finally:
        cluster.heal()
        await nc.close()


def test_the_picker_tries_every_other_server_before_backing_off() -> None:
    class Uri:
        def __init__(self, netloc: str) -> None:
            self.netloc = netloc

    class Srv:
        def __init__(self, netloc: str) -> None:
            self.uri = Uri(netloc)
            self.reconnects = 0

    servers = [Srv("a:1"), Srv("b:2"), Srv("c:3")]
    pick = ServerPicker(Backoff(0.1, 5.0, jitter=False))
    pick.lose("a:1")
    chosen = [pick(servers, {}) for _ in range(4)]
    # the two others first, at once; the lost one last; then a round with backoff
    assert [(s.uri.netloc, d) for s, d in chosen[:3]] == [("b:2", 0.0), ("c:3", 0.0), ("a:1", 0.0)]
    assert chosen[3][1] > 0
    pick.reset()
    assert pick(servers, {})[1] == 0.0


def test_hyperhive_nats_cluster_nodes_form_a_cluster(tmp_path: Path) -> None:
    """Three `hyperhive nats --cluster` processes on one state dir, as an operator runs
    them by hand; `hive-events` then finds them through the state dir."""
    state = tmp_path / "state"
    routes = {f"n{i}": free_port() for i in (1, 2, 3)}
    procs: list[subprocess.Popen[str]] = []
    try:
        for node, port in routes.items():
            argv = [str(BIN / "hyperhive"), "nats", "--cluster", "lab", "--node", node]
            argv += ["--cluster-port", str(port)]
            for other, p in routes.items():
                if other != node:
                    argv += ["--route", f"127.0.0.1:{p}"]
            procs.append(
                subprocess.Popen(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env=state_env(state),
                    cwd=tmp_path,
                )
            )
        for node, proc in zip(routes, procs, strict=True):
            wait_for_line(proc, f"node {node} of cluster lab ready at")
        urls = running_urls(state)
        assert len(urls) == 3
        # A node is ready before its cluster has elected a meta leader; a reader waits
        # for that election up to its budget (30 s), which a loaded machine can exceed.
        for n, url in enumerate(urls):
            asyncio.run(jetstream_answers(state, url, f"node {n + 1}", 90, lambda: logs(state)))

        def stats() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(BIN / "hive-events"), "tail", "-n", "1", "--hive", "lab"],
                capture_output=True,
                text=True,
                env=state_env(state),
                timeout=60,
                check=False,
            )

        # No stream yet: the readers reach the cluster and say so (not "no server").
        out = stats()
        assert out.returncode == 1
        assert "has no stream" in out.stderr, out.stderr
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
        for proc in procs:
            assert proc.stdout is not None
            proc.stdout.close()
    assert codes == [0, 0, 0]
    assert running_urls_or_none(state) is None


def logs(state: Path) -> str:
    """The last lines of every node's log, for a failure's message."""
    out = []
    for node in ("n1", "n2", "n3"):
        log = StateDir(state).server_files(node).log
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        out += [f"--- {node}", *lines[-25:]]
    return "\n".join(out)


def running_urls_or_none(state: Path) -> tuple[str, ...] | None:
    try:
        return running_urls(state)
    except NotConnected:
        return None
