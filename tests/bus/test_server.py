"""The embedded nats-server: loopback, a free port, its store in the state dir, crash-proof."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client

from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.server import EmbeddedServer, ServerInfo, clear_orphan_server, read_server_info
from hyperhive.config import HiveConfig
from hyperhive.errors import NotConnected, ServerError
from tests.helpers import publish_many, stream_count, turn_events, wait_until

pytestmark = pytest.mark.nats


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A second embedded server with its own state dir, stopped after the test."""
    server = EmbeddedServer(tmp_path / "own-state", hive="own")
    yield server
    server.stop()


def test_embedded_server_listens_on_a_free_loopback_port(own_server: EmbeddedServer) -> None:
    own_server.start()
    assert own_server.proc is not None

    assert own_server.running
    assert own_server.port > 0
    assert own_server.url == f"nats://127.0.0.1:{own_server.port}"
    info = msgspec.json.decode((own_server.dir / "server.json").read_bytes(), type=ServerInfo)
    assert info == ServerInfo(url=own_server.url, port=own_server.port, pid=own_server.proc.pid)
    assert read_server_info(own_server.state_dir) == info
    assert (
        f"Listening for client connections on 127.0.0.1:{own_server.port}"
        in own_server.log_path.read_text()
    )
    with socket.create_connection(("127.0.0.1", own_server.port), timeout=2) as s:
        assert s.recv(4096).startswith(b"INFO ")


async def test_embedded_server_keeps_its_store_in_the_state_dir(
    server: EmbeddedServer, nc: Client, hive: str
) -> None:
    await publish_many(nc.jetstream(), turn_events(hive, 3))

    store = server.state_dir / "nats" / "jetstream"
    found = [p for p in store.rglob(subjects.stream_name(hive)) if p.is_dir()]
    assert found, f"no directory for stream {subjects.stream_name(hive)} under {store}"
    assert f'store_dir: "{store}"' in (server.dir / "server.conf").read_text()


async def test_store_survives_kill_9_and_restart(
    server: EmbeddedServer, cfg: HiveConfig, nc: Client
) -> None:
    events = turn_events(cfg.hive, 20)
    published = await publish_many(nc.jetstream(), events)
    await nc.close()
    assert server.proc is not None
    old_pid = server.proc.pid

    server.kill()
    with pytest.raises(NotConnected):
        read_server_info(server.state_dir)
    server.start()

    assert server.proc.pid != old_pid
    client = await connect(resolve_endpoint(cfg, auth.ADMIN), "test-after-restart")
    try:
        js = client.jetstream()
        assert await stream_count(js, cfg.hive) == len(events)
        for event, ack in zip(events, published, strict=True):
            msg = await js.get_msg(subjects.stream_name(cfg.hive), ack.seq)
            assert msg.subject == ack.subject
            assert msg.data is not None
            assert msgspec.json.decode(msg.data)["id"] == event.id
    finally:
        await client.close()


async def test_clients_reconnect_to_a_restarted_server_on_the_same_port(
    server: EmbeddedServer, nc: Client, hive: str
) -> None:
    port = server.port
    reconnects = nc.stats["reconnects"]
    server.kill()
    server.start()

    assert server.port == port
    await wait_until(
        lambda: nc.stats["reconnects"] > reconnects and nc.is_connected,
        what="the admin client to reconnect",
    )
    await publish_many(nc.jetstream(), turn_events(hive, 1))
    assert await stream_count(nc.jetstream(), hive) == 1


def test_a_predecessors_server_that_lingers_is_stopped_before_a_new_start(
    own_server: EmbeddedServer,
) -> None:
    # Holding the state dir's lock, a server still in server.json is an orphan
    # of a dead predecessor: it is given a moment, then asked to stop.
    clear_orphan_server(own_server.state_dir)  # nothing runs yet: nothing to do
    own_server.start()
    assert own_server.proc is not None
    orphan = own_server.proc

    clear_orphan_server(own_server.state_dir)

    assert orphan.wait(timeout=10) is not None
    assert not (own_server.dir / "server.json").exists()
    own_server.start()
    with pytest.raises(ServerError, match="already running"):
        own_server.start()


def test_a_server_killed_by_someone_else_no_longer_blocks_a_new_one(
    own_server: EmbeddedServer,
) -> None:
    own_server.start()
    proc = own_server.proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)  # the process we started, killed behind the object's back
    proc.wait()

    assert (own_server.dir / "server.json").exists()  # stale file left behind
    clear_orphan_server(own_server.state_dir)
    with pytest.raises(NotConnected, match="not running"):
        read_server_info(own_server.state_dir)


def test_a_requested_port_already_taken_fails_with_the_servers_own_words(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedServer(tmp_path / "state", hive="own", port=port)
        try:
            with pytest.raises(ServerError) as caught:
                server.start()
        finally:
            server.stop()

    message = str(caught.value)
    assert "address already in use" in message
    assert str(port) in message
    assert not server.running
    assert not (server.dir / "server.json").exists()


def test_a_stopped_server_is_reported_as_not_running(own_server: EmbeddedServer) -> None:
    own_server.start()
    own_server.stop()

    assert not own_server.running
    with pytest.raises(NotConnected, match="no NATS server configured"):
        read_server_info(own_server.state_dir)
    # the credentials it generated stay for the next start
    assert auth.credentials_path(own_server.state_dir, auth.ADMIN).exists()
