"""Which servers and which user a command connects with (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperhive.bus import auth
from hyperhive.bus.connect import resolve_endpoint
from hyperhive.config import HiveConfig
from hyperhive.errors import NotConnected
from hyperhive.names import agent_role

SEED = "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"


@pytest.fixture
def nats_state(tmp_path: Path) -> Path:
    """A NATS state dir with users for hive `lab` (its operator, agent alice)."""
    state = tmp_path / "nats"
    auth.write_auth_conf(state, "lab", ["alice"])
    return state


def cfg(nats_state: Path, tmp_path: Path, hive: str = "lab") -> HiveConfig:
    return HiveConfig(
        hive=hive, nats_url=SEED, nats_state_dir=str(nats_state), state_dir=str(tmp_path / hive)
    )


def test_every_client_gets_the_whole_seed_list(nats_state: Path, tmp_path: Path) -> None:
    endpoint = resolve_endpoint(cfg(nats_state, tmp_path), auth.ADMIN)
    assert endpoint.servers == tuple(SEED.split(","))
    assert endpoint.url == SEED


def test_a_hives_commands_use_its_own_operator_and_readers_of_every_hive_the_server_wide(
    nats_state: Path, tmp_path: Path
) -> None:
    own = resolve_endpoint(cfg(nats_state, tmp_path), auth.OPERATOR)
    assert own.credentials is not None
    assert (own.credentials.user, own.inbox_prefix) == ("operator@lab", "_INBOX.hive.lab.operator")
    for every in (
        resolve_endpoint(cfg(nats_state, tmp_path), auth.OPERATOR, every_hive=True),
        resolve_endpoint(cfg(nats_state, tmp_path, hive="*"), auth.OPERATOR),
    ):
        assert every.credentials is not None
        assert (every.credentials.user, every.inbox_prefix) == ("operator", "_INBOX.operator")
    # A hive with no operator of its own yet: the server-wide one.
    other = resolve_endpoint(cfg(nats_state, tmp_path, hive="other"), auth.OPERATOR)
    assert other.credentials is not None
    assert other.credentials.user == "operator"


def test_an_agent_connects_as_itself_in_its_hive(nats_state: Path, tmp_path: Path) -> None:
    alice = resolve_endpoint(cfg(nats_state, tmp_path), agent_role("alice"))
    assert alice.credentials is not None
    assert alice.credentials.user == "agent-alice@lab"
    assert alice.inbox_prefix == "_INBOX.hive.lab.agent-alice"
    with pytest.raises(NotConnected, match="one hive"):
        resolve_endpoint(cfg(nats_state, tmp_path, hive="*"), agent_role("alice"))


def test_an_explicit_credentials_file_keeps_the_hive_it_names(
    nats_state: Path, tmp_path: Path
) -> None:
    path = auth.credentials_path(nats_state, auth.OPERATOR, "lab")
    explicit = HiveConfig(hive="lab", nats_url=SEED, nats_credentials=str(path))
    endpoint = resolve_endpoint(explicit, auth.OPERATOR)
    assert endpoint.inbox_prefix == "_INBOX.hive.lab.operator"
