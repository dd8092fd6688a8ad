"""The real Claude Code CLI for tests: where it is, how to get it, how to run it offline.

Tests that run the CLI are marked `@pytest.mark.claude` and take the `claude_bin`
fixture (tests/harness/conftest.py), which calls `claude_binary()`:

* installed at `CLAUDE_CODE_VERSION` in `<repo>/.test-tools`: its path;
* missing, with `CI=true`: installed there with npm (under a file lock, so parallel
  test processes don't race), and the test fails with npm's output if that fails;
* missing otherwise: the test is skipped, the reason naming the npm command.

`offline_env()` is the whole environment for a CLI child that must talk to nothing
but the fake API on loopback (tests/harness/fake_anthropic.py).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CLAUDE_CODE_VERSION = "2.1.197"
CLAUDE_CODE_PACKAGE = "@anthropic-ai/claude-code"
REPO = Path(__file__).resolve().parent.parent
TOOLS_DIR = REPO / ".test-tools"
INSTALL_TIMEOUT = 900.0

# Every proxy variable points at a closed loopback port, so anything the CLI (or a
# tool it runs) might try to fetch from outside fails at once instead of leaving the
# machine; the fake API itself is reached directly (NO_PROXY).
_DEAD_PROXY = "http://127.0.0.1:9"
_LOOPBACK = "127.0.0.1,localhost,::1"


def claude_path() -> Path:
    """Where the `claude` bin of the test tools dir is (installed or not)."""
    return TOOLS_DIR / "node_modules" / ".bin" / "claude"


def install_command() -> list[str]:
    return [
        "npm",
        "install",
        "--prefix",
        str(TOOLS_DIR),
        "--no-audit",
        "--no-fund",
        f"{CLAUDE_CODE_PACKAGE}@{CLAUDE_CODE_VERSION}",
    ]


def _installed_problem() -> str | None:
    """None when the pinned version is installed and runs; else what is wrong."""
    path = claude_path()
    if not path.exists():
        return f"{path} does not exist"
    try:
        out = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", os.defpath), "DISABLE_AUTOUPDATER": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path} --version failed: {exc}"
    version = out.stdout.strip().split(" ", 1)[0]
    if out.returncode != 0 or version != CLAUDE_CODE_VERSION:
        return (
            f"{path} --version gave {out.stdout.strip() or out.stderr.strip()!r} "
            f"(exit {out.returncode}), not {CLAUDE_CODE_VERSION}"
        )
    return None


def _install() -> str | None:
    """Install the pinned CLI into TOOLS_DIR; None on success, else what went wrong."""
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with (TOOLS_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _installed_problem() is None:  # another test process did it meanwhile
            return None
        if shutil.which("npm") is None:
            return "npm is not on PATH (Node.js 18+ with npm is needed to install Claude Code)"
        command = install_command()
        try:
            out = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                stdin=subprocess.DEVNULL,
                cwd=TOOLS_DIR,
            )
        except subprocess.TimeoutExpired as exc:
            return f"`{shlex.join(command)}` timed out after {exc.timeout}s"
        problem = _installed_problem()
        extra = ""
        postinstall = TOOLS_DIR / "node_modules" / CLAUDE_CODE_PACKAGE / "install.cjs"
        if out.returncode == 0 and problem is not None and postinstall.exists():
            # The package's postinstall puts the native binary in place of a stub;
            # an npm that skips install scripts leaves the stub: run it ourselves.
            post = subprocess.run(
                ["node", postinstall.name],
                capture_output=True,
                text=True,
                timeout=300,
                stdin=subprocess.DEVNULL,
                cwd=postinstall.parent,
            )
            extra = f"\n--- node install.cjs (exit {post.returncode})\n{post.stdout}{post.stderr}"
            problem = _installed_problem()
        if out.returncode != 0 or problem is not None:
            return (
                f"`{shlex.join(command)}` exited {out.returncode}"
                f"{'; ' + problem if problem else ''}\n"
                f"--- npm stdout\n{out.stdout}\n--- npm stderr\n{out.stderr}{extra}"
            )
        return None


@functools.cache
def _prepare() -> tuple[bool, str | None]:
    """(ready, problem), once per process: in CI the install happens here."""
    problem = _installed_problem()
    if problem is None:
        return True, None
    if os.environ.get("CI") != "true":
        return False, problem
    failure = _install()
    return failure is None, failure


def prepare_claude() -> None:
    """Install the CLI now if it is missing and CI=true (conftest calls this once,
    before any test's timeout starts); a failure is reported by `claude_binary()`."""
    _prepare()


def claude_binary() -> Path:
    """The pinned Claude Code CLI; installs it in CI, skips the test elsewhere."""
    ready, problem = _prepare()
    if ready:
        return claude_path()
    if os.environ.get("CI") == "true":
        pytest.fail(f"could not install Claude Code {CLAUDE_CODE_VERSION}: {problem}")
    pytest.skip(
        f"Claude Code {CLAUDE_CODE_VERSION} is not installed in .test-tools ({problem}); "
        f"get it with: {shlex.join(install_command())}  (or run the tests with CI=true)"
    )


def offline_env(
    base_url: str, config_dir: Path | str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The complete environment for a CLI child that talks only to the fake at `base_url`.

    Built from nothing (no variable of this process leaks in but PATH, LANG and
    TMPDIR): a dummy API key, the fake's URL, auto-updater, telemetry, error
    reporting and all other non-essential traffic off (without
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC the CLI makes DNS look-ups), proxies
    pointing at a closed loopback port except for loopback itself, and
    `config_dir` (created if missing) as both CLAUDE_CONFIG_DIR and HOME, so no
    user's settings, sessions or credentials are read. `extra` is added last.
    """
    host = urlsplit(base_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"offline_env is for a fake API on loopback, not {base_url!r}")
    config = Path(config_dir)
    config.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(config),
        "CLAUDE_CONFIG_DIR": str(config),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-api03-offline-test-key-not-a-real-one",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "HTTPS_PROXY": _DEAD_PROXY,
        "HTTP_PROXY": _DEAD_PROXY,
        "https_proxy": _DEAD_PROXY,
        "http_proxy": _DEAD_PROXY,
        "NO_PROXY": _LOOPBACK,
        "no_proxy": _LOOPBACK,
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    env.update(extra or {})
    return env


# --- running the CLI and reading its stream-json ----------------------------------


def parse_stream_json(text: str) -> list[dict[str, Any]]:
    """The JSON lines of `--output-format stream-json` output (other lines skipped)."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


@dataclass
class ClaudeRun:
    """What one CLI run printed."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    lines: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, type_: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines
            if line.get("type") == type_ and (subtype is None or line.get("subtype") == subtype)
        ]

    @property
    def init(self) -> dict[str, Any]:
        found = self.of_type("system", "init")
        assert found, f"no system/init line in the CLI's output:\n{self.describe()}"
        return found[0]

    @property
    def result(self) -> dict[str, Any]:
        found = self.of_type("result")
        assert found, f"no result line in the CLI's output:\n{self.describe()}"
        return found[-1]

    @property
    def session_id(self) -> str:
        return str(self.result["session_id"])

    def assistant_blocks(self) -> Iterator[dict[str, Any]]:
        """The content blocks of all assistant lines, in order."""
        for line in self.of_type("assistant"):
            yield from line.get("message", {}).get("content", [])

    def describe(self) -> str:
        return (
            f"exit {self.returncode} after {self.seconds:.2f}s\n--- stdout\n{self.stdout}"
            f"\n--- stderr\n{self.stderr}"
        )


def claude_command(binary: Path, prompt: str, args: Sequence[str] = ()) -> list[str]:
    """`claude --print --verbose --output-format stream-json ARGS -- PROMPT`.

    The prompt goes after `--`: options such as --allowedTools, --disallowedTools,
    --tools, --mcp-config and --add-dir take several values and would swallow it.
    """
    return [
        str(binary),
        "--print",
        "--verbose",
        "--output-format",
        "stream-json",
        *args,
        "--",
        prompt,
    ]


def run_claude(
    binary: Path,
    prompt: str,
    args: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 60.0,
) -> ClaudeRun:
    """Run the CLI to the end, stdin closed, and parse its stream-json output."""
    started = time.monotonic()
    out = subprocess.run(
        claude_command(binary, prompt, args),
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return ClaudeRun(
        returncode=out.returncode,
        stdout=out.stdout,
        stderr=out.stderr,
        seconds=time.monotonic() - started,
        lines=parse_stream_json(out.stdout),
    )
