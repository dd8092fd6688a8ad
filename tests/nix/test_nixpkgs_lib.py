"""Where the evaluation tests find nixpkgs' lib, and what they do without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.nix.nixcli import Nix
from tests.nix.nixpkgs_lib import (
    LIB_ENV,
    LIB_FILES,
    LibError,
    NixpkgsLib,
    find_nixpkgs_lib,
    require_nixpkgs_lib,
)

pytestmark = [pytest.mark.nix]


def fake_lib(where: Path) -> Path:
    where.mkdir(parents=True)
    for name in LIB_FILES:
        (where / name).write_text("{ }\n", encoding="utf-8")
    return where


def test_hyperhive_nixpkgs_lib_comes_first(nix: Nix, tmp_path: Path) -> None:
    given = fake_lib(tmp_path / "given" / "lib")
    on_path = fake_lib(tmp_path / "nixpkgs" / "lib")
    found = find_nixpkgs_lib(nix, {LIB_ENV: str(given), "NIX_PATH": f"nixpkgs={on_path.parent}"})
    assert found == NixpkgsLib(given.resolve(), LIB_ENV)


def test_nixpkgs_on_nix_path_is_the_fallback(nix: Nix, tmp_path: Path) -> None:
    lib = fake_lib(tmp_path / "nixpkgs" / "lib")
    found = find_nixpkgs_lib(nix, {"NIX_PATH": f"other=/nonexistent:nixpkgs={lib.parent}"})
    assert found == NixpkgsLib(lib.resolve(), "<nixpkgs/lib> on NIX_PATH")


def test_without_either_there_is_no_lib(nix: Nix, tmp_path: Path) -> None:
    assert find_nixpkgs_lib(nix, {}) is None
    assert find_nixpkgs_lib(nix, {"NIX_PATH": f"nixpkgs={tmp_path / 'nothing'}"}) is None
    # A nixpkgs whose lib/ is not nixpkgs' lib does not count.
    (tmp_path / "half" / "lib").mkdir(parents=True)
    assert find_nixpkgs_lib(nix, {"NIX_PATH": f"nixpkgs={tmp_path / 'half'}"}) is None


def test_a_hyperhive_nixpkgs_lib_that_is_no_lib_is_an_error(nix: Nix, tmp_path: Path) -> None:
    with pytest.raises(LibError, match=f"{LIB_ENV}=.* is not nixpkgs' lib/ directory"):
        find_nixpkgs_lib(nix, {LIB_ENV: str(tmp_path)})


def test_locally_the_tests_skip_naming_both_ways() -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_nixpkgs_lib(None, {})
    reason = str(skipped.value)
    assert LIB_ENV in reason
    assert "<nixpkgs/lib>" in reason
    assert "NIX_PATH" in reason


def test_under_ci_they_fail() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        require_nixpkgs_lib(None, {"CI": "true"})
    assert LIB_ENV in str(failed.value)
    assert "<nixpkgs/lib>" in str(failed.value)


def test_a_found_lib_is_used(tmp_path: Path) -> None:
    found = NixpkgsLib(tmp_path, LIB_ENV)
    assert require_nixpkgs_lib(found, {"CI": "true"}) is found
