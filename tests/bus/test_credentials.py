"""Credentials on a server shared by several hives, and files only their owner can read.

Regression tests for the probe's D11 (`hyperhive credentials --hive other` moved
every agent's permissions to the other hive) and D12 (the event log and the
server log were world-readable).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from hyperhive.bus import auth, subjects
from hyperhive.errors import ConfigError
from hyperhive.eventlog.store import EventLog
from hyperhive.names import agent_role


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
    alice = publish_allow(found["agent-alice"])
    carol = publish_allow(found["agent-carol"])
    assert subjects.command_pattern("default", "alice") in alice
    assert not any(".other." in a for a in alice)
    assert subjects.command_pattern("other", "carol") in carol
    assert not any(".default." in a for a in carol)
    # Written again for any hive, nobody moves.
    conf = auth.write_auth_conf(tmp_path, "third")
    assert publish_allow(users(conf)["agent-alice"]) == alice


def test_an_agent_name_belongs_to_one_hive_per_server(tmp_path: Path) -> None:
    auth.write_auth_conf(tmp_path, "default", ["alice"])
    with pytest.raises(ConfigError, match="already belongs to hive 'default'"):
        auth.write_auth_conf(tmp_path, "other", ["alice"])


def test_agent_credentials_written_before_hives_were_recorded_keep_working(
    tmp_path: Path,
) -> None:
    path = auth.credentials_path(tmp_path, agent_role("alice"))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"user": "agent-alice", "password": "pw"}))
    conf = auth.write_auth_conf(tmp_path, "lab")
    assert subjects.command_pattern("lab", "alice") in publish_allow(users(conf)["agent-alice"])
    assert auth.read_credentials(path).hive == "lab"


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
