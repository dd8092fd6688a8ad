"""The operator token: shown once, kept only as a hash, rotated with or without signing out."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hyperhive.errors import ConfigError
from hyperhive.statedir import StateDir
from hyperhive.web import tokens


def test_a_token_is_kept_only_as_its_hash_in_a_private_file(tmp_path: Path) -> None:
    state = StateDir.at(tmp_path / "s").ensure()
    token = tokens.mint(state)
    stored = state.operator_token.read_text()
    assert token not in stored
    assert stat.S_IMODE(state.operator_token.stat().st_mode) == 0o600
    assert tokens.verify(state, token) is not None
    assert tokens.verify(state, token + "x") is None
    assert tokens.verify(state, "") is None
    assert tokens.verify(state, "x" * 10_000) is None


def test_ensure_mints_once_and_then_leaves_the_token_alone(tmp_path: Path) -> None:
    state = StateDir.at(tmp_path / "s").ensure()
    first = tokens.ensure(state)
    assert first is not None
    assert tokens.ensure(state) is None
    assert tokens.verify(state, first) is not None


def test_a_new_token_keeps_or_ends_the_sessions_as_asked(tmp_path: Path) -> None:
    state = StateDir.at(tmp_path / "s").ensure()
    tokens.mint(state)
    gen = tokens.current_generation(state)
    old = tokens.mint(state, sign_out=False)
    assert tokens.current_generation(state) == gen
    new = tokens.mint(state, sign_out=True)
    assert tokens.current_generation(state) != gen
    assert tokens.verify(state, old) is None
    assert tokens.verify(state, new) is not None


def test_the_session_key_is_made_once_and_kept(tmp_path: Path) -> None:
    state = StateDir.at(tmp_path / "s").ensure()
    key = tokens.session_key(state)
    assert len(key) == 32
    assert tokens.session_key(state) == key
    assert stat.S_IMODE(state.session_key.stat().st_mode) == 0o600


def test_a_damaged_token_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    state = StateDir.at(tmp_path / "s").ensure()
    state.operator_token.parent.mkdir(parents=True)
    state.operator_token.write_text("{garbage")
    with pytest.raises(ConfigError, match="run `hyperhive token`"):
        tokens.verify(state, "whatever")
