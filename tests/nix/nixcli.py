"""Running Debian's `nix-instantiate` against the dummy:// store.

Nothing needs a writable /nix, a daemon or root: every call evaluates against
`dummy://` (store paths are computed, never written) with a HOME of its own.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


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

    def run(self, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run(
            [self.binary, "--store", "dummy://", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=timeout,
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

    def eval_file_json(self, path: Path, *options: str, **argstr: str) -> Any:
        """Evaluate a file (a function of string arguments) strictly, as JSON."""
        args: list[str] = [*options]
        for name, value in argstr.items():
            args += ["--argstr", name, value]
        return json.loads(self.run("--eval", "--strict", "--json", str(path), *args))

    def import_lib(self) -> str:
        """A Nix expression for nix/lib.nix."""
        return f"(import {nix_string(str(ROOT / 'nix' / 'lib.nix'))})"

    def find_file(self, name: str, nix_path: str) -> Path | None:
        """Where `<name>` resolves with this NIX_PATH, or None."""
        try:
            proc = subprocess.run(
                [self.binary, "--find-file", name],
                capture_output=True,
                text=True,
                env={**self.env, "NIX_PATH": nix_path},
                cwd=ROOT,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = proc.stdout.strip()
        return Path(found) if proc.returncode == 0 and found else None
