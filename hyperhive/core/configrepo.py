"""An agent's config repos: *proposed* (the manager commits there) and *applied* (c0re only).

Approving an `apply_commit` copies `agent.nix` as it is at the proposed commit
into the applied repo and commits it there; the agent is then rebuilt from
the applied repo. git is `cfg.git` (`HYPERHIVE_GIT`, an absolute path on NixOS)
and runs with an argv list, never a shell; refs are checked before use.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
from pathlib import Path

from hyperhive.errors import BackendError, InvalidName
from hyperhive.statedir import StateDir

AGENT_NIX = "agent.nix"
REF_RE = re.compile(r"[A-Za-z0-9._/-]{1,128}")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "hyperhive c0re",
    "GIT_AUTHOR_EMAIL": "c0re@hyperhive.invalid",
    "GIT_COMMITTER_NAME": "hyperhive c0re",
    "GIT_COMMITTER_EMAIL": "c0re@hyperhive.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
INITIAL = "{ ... }:\n{\n  # this agent's own NixOS configuration\n}\n"


def check_ref(ref: str) -> str:
    if not REF_RE.fullmatch(ref) or ".." in ref or ref.startswith(("-", "/")):
        raise InvalidName(f"invalid commit ref {ref!r}: use a commit id, branch or tag")
    return ref


async def git(git_bin: str, repo: Path, *args: str) -> str:
    """Run git in `repo`; its stdout, or `BackendError` with its last stderr line."""
    env = {**os.environ, **GIT_ENV, "HOME": str(repo)}
    try:
        proc = await asyncio.create_subprocess_exec(
            git_bin,
            "-C",
            str(repo),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
        )
    except OSError as exc:
        raise BackendError(f"cannot run git ({git_bin}): {exc.strerror or exc}") from None
    out, err = await proc.communicate()
    if proc.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise BackendError(f"git {args[0]} in {repo.name}: {last}")
    return out.decode(errors="replace")


async def ensure_repos(git_bin: str, state: StateDir, agent: str) -> None:
    """Both repos exist, with an initial agent.nix (idempotent)."""
    for repo in (state.proposed_config(agent), state.applied_config(agent)):
        if (repo / ".git").exists():
            continue
        repo.mkdir(parents=True, exist_ok=True, mode=0o700)
        await git(git_bin, repo, "init", "-q", "-b", "main")
        (repo / AGENT_NIX).write_text(INITIAL)
        await git(git_bin, repo, "add", AGENT_NIX)
        await git(git_bin, repo, "commit", "-q", "-m", "initial agent.nix")


async def proposed_file(git_bin: str, state: StateDir, agent: str, ref: str) -> str:
    """agent.nix as it is at `ref` in the proposed repo."""
    repo = state.proposed_config(agent)
    if not (repo / ".git").exists():
        raise BackendError(f"{agent} has no proposed config repo")
    commit = (
        await git(git_bin, repo, "rev-parse", "--verify", f"{check_ref(ref)}^{{commit}}")
    ).strip()
    return await git(git_bin, repo, "show", f"{commit}:{AGENT_NIX}")


async def diff(git_bin: str, state: StateDir, agent: str, ref: str) -> str:
    """What applying `ref` would change in agent.nix (a unified diff)."""
    new = await proposed_file(git_bin, state, agent, ref)
    applied = state.applied_config(agent) / AGENT_NIX
    old = applied.read_text() if applied.exists() else ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"applied/{AGENT_NIX}",
        tofile=f"proposed/{AGENT_NIX}@{ref}",
    )
    return "".join(lines)


async def apply(git_bin: str, state: StateDir, agent: str, ref: str) -> str:
    """Copy agent.nix at `ref` into the applied repo and commit; returns the applied commit."""
    content = await proposed_file(git_bin, state, agent, ref)
    repo = state.applied_config(agent)
    await ensure_repos(git_bin, state, agent)
    (repo / AGENT_NIX).write_text(content)
    await git(git_bin, repo, "add", AGENT_NIX)
    status = await git(git_bin, repo, "status", "--porcelain")
    if status.strip():
        await git(git_bin, repo, "commit", "-q", "-m", f"apply {ref} from proposed")
    return (await git(git_bin, repo, "rev-parse", "HEAD")).strip()
