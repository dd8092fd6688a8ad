"""The operator token: shown once, kept only as a hash, rotated with or without signing out."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

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


def _ensure(state: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    paths = StateDir.at(Path(state))
    out.put((tokens.ensure(paths), tokens.session_key(paths)))


def test_dashboards_starting_at_once_mint_one_token_that_works(tmp_path: Path) -> None:
    """Each would print its own 'shown once' token; only the last written would sign in."""
    state = StateDir.at(tmp_path / "s").ensure()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(6)
    out = ctx.Queue()
    procs = [ctx.Process(target=_ensure, args=(str(state.root), barrier, out)) for _ in range(6)]
    for p in procs:
        p.start()
    got = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    shown = [token for token, _ in got if token is not None]
    assert len(shown) == 1
    assert tokens.verify(state, shown[0]) is not None
    assert {key for _, key in got} == {tokens.session_key(state)}
