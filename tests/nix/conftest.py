"""A real `nix-instantiate` for the tests of the NixOS side (marker `nix`).

Found on PATH. When it is missing, CI (`CI=true`) installs Debian's nix-bin and
fails if that fails; anywhere else the tests are skipped with the command that
installs it. Every call uses the `dummy://` store, so nothing needs a writable
/nix, a daemon or root, and a HOME of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "apt-get update && apt-get install -y nix-bin"
SKIP_REASON = "nix-instantiate not found: apt-get install nix-bin (CI installs it)"


class NixError(Exception):
    """nix-instantiate refused a file or an expression; the message is its stderr."""


def nix_string(value: str) -> str:
    """`value` as a Nix string literal (JSON escapes are Nix escapes, bar `${`)."""
    return json.dumps(value).replace("${", "\\${")


@dataclass(frozen=True)
class Nix:
    """Runs nix-instantiate against the dummy store."""

    binary: str
    env: dict[str, str]

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            [self.binary, "--store", "dummy://", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise NixError(proc.stderr.strip() or f"nix-instantiate exited {proc.returncode}")
        return proc.stdout

    def parse(self, path: Path) -> str:
        """Parse one file: syntax errors and unbound names fail."""
        return self.run("--parse", str(path))

    def eval_json(self, expr: str) -> Any:
        """Evaluate an expression strictly and decode its JSON."""
        return json.loads(self.run("--eval", "--strict", "--json", "--expr", expr))

    def eval_file_json(self, path: Path, **argstr: str) -> Any:
        """Evaluate a file (a function of string arguments) strictly, as JSON."""
        args: list[str] = []
        for name, value in argstr.items():
            args += ["--argstr", name, value]
        return json.loads(self.run("--eval", "--strict", "--json", str(path), *args))

    def import_lib(self) -> str:
        """A Nix expression for nix/lib.nix."""
        return f"(import {nix_string(str(ROOT / 'nix' / 'lib.nix'))})"


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
