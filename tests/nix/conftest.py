"""Fixtures of the NixOS side's tests (marker `nix`).

`nix`: a real `nix-instantiate`, found on PATH. When it is missing, CI
(`CI=true`) installs Debian's nix-bin and fails if that fails; anywhere else the
tests are skipped with the command that installs it. Every call uses the
`dummy://` store (tests/nix/nixcli.py).

`nixpkgs_lib`: nixpkgs' lib/ for the evaluation tests (tests/nix/nixpkgs_lib.py):
`HYPERHIVE_NIXPKGS_LIB`, else `<nixpkgs/lib>` on NIX_PATH; skipped without
either, naming both; failed under CI.

`evaluated`: every host and container of tests/nix/configs.py, evaluated in one
nix-instantiate run (tests/nix/evaluation.py); `evaluator` for more.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.nix import configs
from tests.nix.evaluation import Evaluation, Evaluator
from tests.nix.nixcli import Nix
from tests.nix.nixpkgs_lib import LibError, NixpkgsLib, find_nixpkgs_lib, require_nixpkgs_lib

INSTALL = "apt-get update && apt-get install -y nix-bin"
SKIP_REASON = "nix-instantiate not found: apt-get install nix-bin (CI installs it)"


def _install_nix_bin() -> None:
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", INSTALL], capture_output=True, text=True, check=False, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"CI: `{INSTALL}` could not run: {exc}")
    if proc.returncode != 0:
        pytest.fail(
            f"CI: `{INSTALL}` failed with exit status {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )


@pytest.fixture(scope="session")
def nix(tmp_path_factory: pytest.TempPathFactory) -> Nix:
    found = shutil.which("nix-instantiate")
    if found is None:
        if os.environ.get("CI") != "true":
            pytest.skip(SKIP_REASON)
        _install_nix_bin()
        found = shutil.which("nix-instantiate")
        if found is None:
            pytest.fail("CI: nix-bin is installed but nix-instantiate is not on PATH")
    home = tmp_path_factory.mktemp("nix-home")
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "NIX_PATH": "",
    }
    return Nix(binary=found, env=env)


@pytest.fixture(scope="session")
def nixpkgs_lib(nix: Nix) -> NixpkgsLib:
    try:
        found = find_nixpkgs_lib(nix, os.environ)
    except LibError as exc:
        pytest.fail(str(exc))
    return require_nixpkgs_lib(found, os.environ)


@pytest.fixture(scope="session")
def evaluator(
    nix: Nix, nixpkgs_lib: NixpkgsLib, tmp_path_factory: pytest.TempPathFactory
) -> Evaluator:
    return Evaluator(nix=nix, lib=nixpkgs_lib.path, workdir=tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="session")
def evaluated(evaluator: Evaluator) -> Evaluation:
    """Every host and container of tests/nix/configs.py, evaluated in one run."""
    return evaluator.evaluate(
        hosts={**configs.HOSTS, **{k: v.config for k, v in configs.BAD_HOSTS.items()}},
        containers={
            **configs.CONTAINERS,
            **{k: v.spec for k, v in configs.BAD_CONTAINERS.items()},
        },
        probes=[p.package for p in configs.UNFREE_PROBES],
    )
