"""Where the evaluation tests get nixpkgs' lib/ (the module system and lib.types).

`HYPERHIVE_NIXPKGS_LIB`, else `<nixpkgs/lib>` on NIX_PATH. Without either the
tests are skipped with a reason naming both, except under CI (`CI=true`), where
they fail. A `HYPERHIVE_NIXPKGS_LIB` that is not a nixpkgs lib/ fails everywhere:
it was set on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.nix.nixcli import Nix

LIB_ENV = "HYPERHIVE_NIXPKGS_LIB"
LIB_FILES = ("default.nix", "modules.nix", "types.nix")
MISSING = (
    f"nixpkgs' lib not found: set {LIB_ENV} to a nixpkgs lib/ directory, "
    "or put nixpkgs on NIX_PATH so that <nixpkgs/lib> resolves"
)


class LibError(Exception):
    """HYPERHIVE_NIXPKGS_LIB is set, but not to nixpkgs' lib/."""


@dataclass(frozen=True)
class NixpkgsLib:
    """nixpkgs' lib/ directory, and how it was found."""

    path: Path
    found_by: str


def is_lib(path: Path) -> bool:
    return all((path / name).is_file() for name in LIB_FILES)


def find_nixpkgs_lib(nix: Nix, environ: Mapping[str, str]) -> NixpkgsLib | None:
    """`HYPERHIVE_NIXPKGS_LIB`, then `<nixpkgs/lib>` on NIX_PATH; None if neither."""
    configured = environ.get(LIB_ENV, "")
    if configured:
        path = Path(configured).expanduser().resolve()
        if not is_lib(path):
            raise LibError(
                f"{LIB_ENV}={configured} is not nixpkgs' lib/ directory "
                f"(it needs {', '.join(LIB_FILES)})"
            )
        return NixpkgsLib(path, LIB_ENV)
    nix_path = environ.get("NIX_PATH", "")
    if nix_path:
        found = nix.find_file("nixpkgs/lib", nix_path)
        if found is not None and is_lib(found.resolve()):
            return NixpkgsLib(found.resolve(), "<nixpkgs/lib> on NIX_PATH")
    return None


def require_nixpkgs_lib(found: NixpkgsLib | None, environ: Mapping[str, str]) -> NixpkgsLib:
    """The lib; else a skip naming both ways to give it, a failure under CI."""
    if found is not None:
        return found
    if environ.get("CI") == "true":
        pytest.fail(f"CI: {MISSING} (.ci/run sets {LIB_ENV} when it finds one)")
    pytest.skip(MISSING)
