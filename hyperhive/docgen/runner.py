"""Generated documentation files: check them, rewrite them, one `main` for each generator.

A generator module declares `GENERATED = {"docs/x.md": render_x, ...}` and calls
`run(...)` from its `main`; tests call that `main` with `--check`, so a page that
no longer says what the code does fails the suite.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hyperhive.errors import HyperhiveError

Generated = Mapping[str, Callable[[], str]]

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the tree holding docs/


def stale_files(root: Path, generated: Generated) -> list[str]:
    """The generated files (relative paths) whose content differs from what the code says."""
    stale = []
    for rel, render in generated.items():
        try:
            current: str | None = (root / rel).read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != render():
            stale.append(rel)
    return stale


def write_files(root: Path, generated: Generated) -> list[str]:
    """Rewrite the stale generated files; return those that changed."""
    changed = []
    for rel in stale_files(root, generated):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generated[rel](), encoding="utf-8")
        changed.append(rel)
    return changed


def run(module: str, description: str, generated: Generated, argv: Sequence[str] | None) -> int:
    """`python -m <module> [--check] [--root DIR]`: 0 ok, 1 stale (or unrenderable)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file is stale"
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="source tree holding docs/ (default: this one)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root or SOURCE_ROOT
    try:
        if args.check:
            stale = stale_files(root, generated)
            for rel in stale:
                print(f"{rel} is stale: run python -m {module}", file=sys.stderr)
            return 1 if stale else 0
        for rel in write_files(root, generated):
            print(f"wrote {rel}")
    except HyperhiveError as exc:
        print(f"docgen: {exc}", file=sys.stderr)
        return 1
    return 0
