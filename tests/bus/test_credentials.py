"""Credentials on a server shared by several hives, and files only their owner can read.

Regression tests for the probe's D11 (`hyperhive credentials --hive other` moved
every agent's permissions to the other hive) and D12 (the event log and the
server log were world-readable).
"""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from hyperhive.bus import auth, subjects
from hyperhive.errors import ConfigError
from hyperhive.eventlog.store import EventLog
from hyperhive.names import agent_role
from hyperhive.statedir import StateDir


def users(conf: Path) -> dict[str, dict[str, object]]:
    text = conf.read_text()
    body = text[text.index("[") + 1 : text.rindex("]")]
    out = {}
    for line in body.strip().splitlines():
        user = json.loads(line.strip().rstrip(","))
        out[user["user"]] = user["permissions"]
    return out


def publish_allow(perms: dict[str, object]) -> list[str]:
    publish = perms["publish"]
    assert isinstance(publish, dict)
    allow = publish["allow"]
    assert isinstance(allow, list)
    return [str(a) for a in allow]


def test_adding_an_agent_of_another_hive_leaves_the_first_hives_agents_alone(
    tmp_path: Path,
) -> None:
    auth.write_auth_conf(tmp_path, "default", ["alice", "bob"])
    conf = auth.write_auth_conf(tmp_path, "other", ["carol"])

    found = users(conf)
    alice = publish_allow(found["agent-alice@default"])
    carol = publish_allow(found["agent-carol@other"])
    assert subjects.command_pattern("default", "alice") in alice
    assert not any(".other." in a or "_OTHER" in a for a in alice)
    assert subjects.command_pattern("other", "carol") in carol
    assert not any(".default." in a or "_DEFAULT" in a for a in carol)
    # Written again for any hive, nobody moves.
    conf = auth.write_auth_conf(tmp_path, "third")
    assert publish_allow(users(conf)["agent-alice@default"]) == alice


def test_two_hives_may_each_have_an_agent_of_the_same_name(tmp_path: Path) -> None:
    auth.write_auth_conf(tmp_path, "a", ["manager"])
    conf = auth.write_auth_conf(tmp_path, "b", ["manager"])

    in_a = auth.read_credentials(auth.credentials_path(tmp_path, agent_role("manager"), "a"))
    in_b = auth.read_credentials(auth.credentials_path(tmp_path, agent_role("manager"), "b"))
    assert (in_a.user, in_a.hive, in_b.user, in_b.hive) == (
        "agent-manager@a",
        "a",
        "agent-manager@b",
        "b",
    )
    assert in_a.password != in_b.password
    found = users(conf)
    assert subjects.command_pattern("a", "manager") in publish_allow(found[in_a.user])
    assert subjects.command_pattern("b", "manager") in publish_allow(found[in_b.user])
    assert subjects.command_pattern("b", "manager") not in publish_allow(found[in_a.user])
    # ... and each reads its replies under its own hive's prefix, never the other's
    subscribe_a = found[in_a.user]["subscribe"]
    assert isinstance(subscribe_a, dict)
    assert auth.inbox_prefix(agent_role("manager"), "a") + ".>" in subscribe_a["allow"]
    assert auth.inbox_prefix(agent_role("manager"), "b") + ".>" not in subscribe_a["allow"]


def test_each_hive_has_its_own_operator_besides_the_server_wide_one(tmp_path: Path) -> None:
    auth.write_auth_conf(tmp_path, "a")
    conf = auth.write_auth_conf(tmp_path, "b")

    found = users(conf)
    assert {"admin", "operator", "operator@a", "operator@b"} <= set(found)
    own = publish_allow(found["operator@a"])
    assert subjects.command_pattern("a", "_operator") in own
    assert not any(".b." in a or "HIVE_B" in a for a in own)
    assert subjects.js_api("STREAM", "NAMES") not in own  # listing streams names every hive
    assert subjects.js_api("STREAM", "NAMES") in publish_allow(found["operator"])


def test_agent_credentials_of_an_earlier_version_move_into_their_hives_dir(
    tmp_path: Path,
) -> None:
    """Same user and password (a running harness keeps working), in the hive they name."""
    legacy = StateDir(tmp_path).credentials_file(agent_role("alice"))
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"user": "agent-alice", "password": "pw", "hive": "lab"}))

    conf = auth.write_auth_conf(tmp_path, "other")

    assert not legacy.exists()
    moved = auth.read_credentials(auth.credentials_path(tmp_path, agent_role("alice"), "lab"))
    assert moved == auth.Credentials(user="agent-alice", password="pw", hive="lab")
    assert subjects.command_pattern("lab", "alice") in publish_allow(users(conf)["agent-alice"])


def test_agent_credentials_written_before_hives_were_recorded_keep_working(
    tmp_path: Path,
) -> None:
    path = StateDir(tmp_path).credentials_file(agent_role("alice"))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"user": "agent-alice", "password": "pw"}))
    conf = auth.write_auth_conf(tmp_path, "lab")
    assert subjects.command_pattern("lab", "alice") in publish_allow(users(conf)["agent-alice"])
    moved = auth.read_credentials(auth.credentials_path(tmp_path, agent_role("alice"), "lab"))
    assert (moved.user, moved.password, moved.hive) == ("agent-alice", "pw", "lab")


def test_two_files_naming_one_user_are_refused(tmp_path: Path) -> None:
    auth.write_auth_conf(tmp_path, "a", ["alice"])
    copy = auth.credentials_path(tmp_path, agent_role("alice"), "b")
    copy.parent.mkdir(parents=True)
    copy.write_bytes(auth.credentials_path(tmp_path, agent_role("alice"), "a").read_bytes())
    with pytest.raises(ConfigError, match="agent-alice@a"):
        auth.write_auth_conf(tmp_path, "a")


def test_the_operator_may_not_touch_the_services_durables(tmp_path: Path) -> None:
    conf = auth.write_auth_conf(tmp_path, "default", ["alice"])
    publish = users(conf)["operator"]["publish"]
    assert isinstance(publish, dict)
    deny = publish["deny"]
    for durable in (subjects.PROJECTOR_DURABLE, subjects.inbox_durable("alice")):
        assert subjects.js_api("CONSUMER", "DELETE", "*", durable) in deny
        assert subjects.js_api("CONSUMER", "MSG", "NEXT", "*", durable) in deny


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_event_log_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "events.sqlite"
    log = EventLog(path, "default")
    try:
        log.conn.execute("CREATE TABLE IF NOT EXISTS t (x)")  # makes the -wal and -shm files
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert p.exists(), p
            assert mode(p) & 0o077 == 0, f"{p} is {oct(mode(p))}"
    finally:
        log.close()
    assert mode(path.parent) & 0o077 == 0


@pytest.mark.nats
def test_the_embedded_servers_log_is_private(tmp_path: Path) -> None:
    from hyperhive.bus.server import EmbeddedServer

    server = EmbeddedServer(tmp_path / "state", "default")
    server.start()
    try:
        assert mode(server.log_path) & 0o077 == 0
    finally:
        server.stop()


@pytest.mark.nats
async def test_an_agent_of_an_earlier_state_dir_still_logs_in_after_the_server_starts(
    tmp_path: Path,
) -> None:
    """The upgrade path: the old file is moved into its hive's dir by the server's start,
    and the agent logs in with the same user and password."""
    from hyperhive.bus.connect import connect, resolve_endpoint
    from hyperhive.bus.server import EmbeddedServer
    from hyperhive.config import HiveConfig

    state = tmp_path / "state"
    legacy = StateDir(state).credentials_file(agent_role("alice"))
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"user": "agent-alice", "password": "old-pw", "hive": "lab"}))
    server = EmbeddedServer(state, "lab")
    server.start()
    try:
        cfg = HiveConfig(hive="lab", state_dir=str(state))
        endpoint = resolve_endpoint(cfg, agent_role("alice"))
        assert endpoint.credentials == auth.Credentials("agent-alice", "old-pw", "lab")
        nc = await connect(endpoint, "alice")
        assert nc.is_connected
        await nc.close()
    finally:
        server.stop()
    assert not legacy.exists()


def _generate(state: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    route = auth.route_credentials(Path(state))
    admin = auth.ensure_credentials(Path(state), auth.ADMIN)
    out.put((route.password, admin.password))


def test_processes_starting_at_once_on_a_fresh_state_dir_share_one_set_of_passwords(
    tmp_path: Path,
) -> None:
    """Three `hyperhive nats --cluster` nodes started together by hand: each generates the
    missing route and admin passwords at the same moment. All must go on with the one
    on disk, or their routes (and clients) are refused by the nodes that used another."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(6)
    out = ctx.Queue()
    procs = [ctx.Process(target=_generate, args=(str(tmp_path), barrier, out)) for _ in range(6)]
    for p in procs:
        p.start()
    seen = {out.get(timeout=30) for _ in procs}
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    on_disk = (
        auth.route_credentials(tmp_path).password,
        auth.ensure_credentials(tmp_path, auth.ADMIN).password,
    )
    assert seen == {on_disk}
    assert not [p.name for p in auth.credentials_dir(tmp_path).rglob(".*")]  # no temp left


def _add_agent(state: str, name: str, barrier: Any) -> None:
    barrier.wait()
    auth.write_auth_conf(Path(state), "default", [name])


def test_auth_conf_written_at_once_by_several_processes_keeps_every_user(
    tmp_path: Path,
) -> None:
    """c0re adding an agent while a node starts: each rewrites auth.conf from the disk.
    One that read the disk before another added its agent must not write it back
    without that agent (the agent could not log in until the next reload)."""
    auth.write_auth_conf(tmp_path, "default")
    names = [f"agent{i}" for i in range(6)]
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(names))
    procs = [ctx.Process(target=_add_agent, args=(str(tmp_path), n, barrier)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    found = users(StateDir(tmp_path).auth_conf)
    assert {f"agent-{n}@default" for n in names} <= set(found)
