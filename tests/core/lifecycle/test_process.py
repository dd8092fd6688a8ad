"""The process backend, for real: the stand-in harness (standin.py) as the child.

Nothing sleeps to wait: exits come off the queue with a deadline, log lines and
vanishing pids are waited for with `wait_until`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from hyperhive.config import HiveConfig
from hyperhive.core.lifecycle.common import LINE_MAX, TAIL_BYTES
from hyperhive.core.lifecycle.process import ProcessBackend, harness_argv
from hyperhive.errors import BackendError
from hyperhive.names import agent_role
from hyperhive.procs import pid_alive
from hyperhive.statedir import StateDir
from tests.core.lifecycle.conftest import (
    HIVE,
    NATS_URL,
    STANDIN,
    SpecMaker,
    log_text,
    next_exit,
    ready_count,
    standin_cfg,
)
from tests.helpers import wait_until


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as gone)."""
    if not pid_alive(pid):
        return True
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def ready(state: StateDir, count: int = 1, agent: str = "alice") -> None:
    await wait_until(lambda: ready_count(state, agent) >= count, what=f"{agent}'s stand-in ready")


def test_the_command_names_the_agent_and_a_bare_hyperhive_is_ours() -> None:
    argv = harness_argv(("hyperhive", "harness", "--agent", "{agent}", "x-{agent}-y"), "alice")
    assert argv == [
        str(Path(sys.executable).parent / "hyperhive"),
        "harness",
        "--agent",
        "alice",
        "x-alice-y",
    ]
    assert harness_argv(("/bin/hyperhive", "{agent}"), "bob") == ["/bin/hyperhive", "bob"]
    with pytest.raises(BackendError, match="harness_command is empty"):
        harness_argv((), "alice")


async def test_the_harness_gets_its_environment_and_output_goes_to_harness_log(
    state: StateDir, make_spec: SpecMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_FROM_PARENT", "inherited")
    monkeypatch.setenv("HYPERHIVE_NATS_CREDENTIALS", "/elsewhere/admin.json")
    backend = ProcessBackend(
        standin_cfg(state, "--stderr", "to stderr", "--name={agent}-x", "{agent}")
    )
    try:
        await backend.start(make_spec("alice", STANDIN_EXTRA="from spec"))
        await ready(state)
    finally:
        await backend.aclose()
    text = log_text(state)
    assert '"--name=alice-x", "alice"]' in text
    assert f"standin: cwd={state.agent_state('alice')}" in text
    for line in (
        "env HYPERHIVE_AGENT=alice",
        f"env HYPERHIVE_HIVE={HIVE}",
        f"env HYPERHIVE_STATE_DIR={state.root}",
        f"env HYPERHIVE_NATS_URL={NATS_URL}",
        f"env HYPERHIVE_NATS_CREDENTIALS={state.credentials_file(agent_role('alice'), HIVE)}",
        f"env CLAUDE_CONFIG_DIR={state.agent_claude('alice')}",
        "env STANDIN_EXTRA=from spec",
        "env STANDIN_FROM_PARENT=inherited",
        "to stderr",
    ):
        assert line in text.splitlines(), line
    assert stat.S_IMODE(state.harness_log("alice").stat().st_mode) == 0o600
    for path in (state.agent("alice"), state.agent_state("alice"), state.agent_claude("alice")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


async def test_output_is_appended_across_runs(
    process_backend: ProcessBackend, state: StateDir, make_spec: SpecMaker
) -> None:
    log = state.harness_log("alice")
    log.parent.mkdir(parents=True)
    log.write_text("an earlier line\n")
    spec = make_spec()
    await process_backend.start(spec)
    await ready(state)
    await process_backend.stop(spec)
    await process_backend.start(spec)
    await ready(state, 2)
    lines = log_text(state).splitlines()
    assert lines[0] == "an earlier line"
    assert sum(line.startswith("=== hyperhive: ") for line in lines) == 2
    assert "standin: SIGTERM" in lines


async def test_a_sigkilled_harness_is_reported_within_a_second(
    process_backend: ProcessBackend, state: StateDir, make_spec: SpecMaker
) -> None:
    await process_backend.start(make_spec())
    await ready(state)
    pid = process_backend.pid("alice")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    exit_ = await next_exit(process_backend.exits, timeout=1.0)
    assert (exit_.agent, exit_.exit_status, exit_.signal, exit_.unit) == (
        "alice",
        None,
        "SIGKILL",
        None,
    )
    assert "standin: ready" in exit_.last_log_lines
    assert not process_backend.is_running("alice")
    assert process_backend.pid("alice") is None


async def test_an_exit_status_and_the_last_lines_are_reported(
    state: StateDir, make_spec: SpecMaker
) -> None:
    backend = ProcessBackend(
        standin_cfg(state, "--long", str(3 * LINE_MAX), "--exit-after", "50", "--status", "3")
    )
    try:
        await backend.start(make_spec())
        exit_ = await next_exit(backend.exits)
    finally:
        await backend.aclose()
    assert (exit_.exit_status, exit_.signal) == (3, None)
    assert exit_.last_log_lines[-1] == "standin: ready"
    assert len(exit_.last_log_lines) <= 20
    assert max(len(line) for line in exit_.last_log_lines) <= LINE_MAX + 3
    assert any(line.startswith("LLLL") for line in exit_.last_log_lines)


async def test_a_clean_stop_is_reported_and_a_second_stop_is_a_no_op(
    process_backend: ProcessBackend, state: StateDir, make_spec: SpecMaker
) -> None:
    spec = make_spec()
    await process_backend.start(spec)
    await ready(state)
    await process_backend.stop(spec)
    exit_ = process_backend.exits.get_nowait()  # reported before stop returned
    assert (exit_.exit_status, exit_.signal) == (0, None)
    assert "standin: SIGTERM" in exit_.last_log_lines
    await process_backend.stop(spec)
    assert process_backend.exits.empty()


async def test_a_harness_that_ignores_sigterm_is_killed_after_the_grace(
    state: StateDir, make_spec: SpecMaker
) -> None:
    backend = ProcessBackend(standin_cfg(state, "--ignore-term"), stop_grace=0.3)
    spec = make_spec()
    try:
        await backend.start(spec)
        await ready(state)
        await backend.stop(spec)
        exit_ = backend.exits.get_nowait()
    finally:
        await backend.aclose()
    assert exit_.signal == "SIGKILL"
    assert "standin: ignoring SIGTERM" in log_text(state)


async def test_start_is_idempotent_and_rebuild_restarts(
    process_backend: ProcessBackend, state: StateDir, make_spec: SpecMaker
) -> None:
    spec = make_spec()
    await process_backend.start(spec)
    first = process_backend.pid("alice")
    await process_backend.start(spec)
    assert process_backend.pid("alice") == first
    await ready(state)
    await process_backend.rebuild(spec)
    assert process_backend.pid("alice") not in (None, first)
    assert (await next_exit(process_backend.exits)).exit_status == 0
    await ready(state, 2)


async def test_what_the_harness_started_dies_with_it(state: StateDir, make_spec: SpecMaker) -> None:
    backend = ProcessBackend(standin_cfg(state, "--child"))
    try:
        await backend.start(make_spec())
        await ready(state)
        line = next(li for li in log_text(state).splitlines() if li.startswith("standin: child="))
        grandchild = int(line.split("=", 1)[1])
        assert not gone(grandchild)
        pid = backend.pid("alice")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the harness only; its child stays in the group
        await next_exit(backend.exits, timeout=1.0)
        await wait_until(lambda: gone(grandchild), what="the harness's child to be killed")
    finally:
        await backend.aclose()


PARENT = """
import asyncio, sys
from hyperhive.config import HiveConfig
from hyperhive.core.lifecycle import AgentSpec
from hyperhive.core.lifecycle.process import ProcessBackend
from hyperhive.statedir import StateDir

async def main() -> None:
    state = StateDir.at(sys.argv[1])
    cfg = HiveConfig(state_dir=sys.argv[1], harness_command=(sys.executable, sys.argv[2]))
    backend = ProcessBackend(cfg)
    spec = AgentSpec(name="alice", hive="h1", state=state, nats_url="nats://x:1", port=1)
    await backend.start(spec)
    print(f"child={backend.pid('alice')}", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_the_harness_dies_when_its_parent_is_killed(state: StateDir) -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PARENT,
        str(state.root),
        str(STANDIN),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None
        line = (await asyncio.wait_for(parent.stdout.readline(), 30)).decode()
        assert line.startswith("child="), line
        child = int(line.split("=", 1)[1])
        await ready(state)
        parent.kill()  # SIGKILL: no cleanup of its own can run
        await parent.wait()
        await wait_until(lambda: gone(child), what="the orphaned harness to die")
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
    assert "standin: SIGTERM" in log_text(state)  # PR_SET_PDEATHSIG's signal


def write_big_log(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True)
    with open(path, "w") as f:
        f.write("FIRST\n")
        f.write(line * (2 * TAIL_BYTES // len(line)))
        f.write("y" * (3 * LINE_MAX) + "\n")
        f.write("last\n")


async def test_log_lines_are_bounded(process_backend: ProcessBackend, state: StateDir) -> None:
    line = "x" * 99 + "\n"
    write_big_log(state.harness_log("alice"), line)
    assert await process_backend.log_lines("alice", 2) == ["y" * LINE_MAX + "...", "last"]
    every = await process_backend.log_lines("alice", 10**9)
    assert len(every) <= TAIL_BYTES // len(line) + 2
    assert "FIRST" not in every
    assert every[0] == "x" * 99  # no partial line at the cut
    assert await process_backend.log_lines("alice", 0) == []
    assert await process_backend.log_lines("nobody") == []


async def test_destroy_forgets_but_keeps_the_dirs(
    process_backend: ProcessBackend, state: StateDir, make_spec: SpecMaker
) -> None:
    spec = make_spec()
    await process_backend.start(spec)
    await ready(state)
    await process_backend.destroy(spec)
    assert process_backend.exits.get_nowait().exit_status == 0
    assert not process_backend.is_running("alice")
    for path in (state.agent_state("alice"), state.agent_claude("alice")):
        assert path.is_dir()
    assert "standin: ready" in (await process_backend.log_lines("alice"))


async def test_a_harness_that_cannot_start_is_one_line_of_backend_error(
    state: StateDir, make_spec: SpecMaker
) -> None:
    backend = ProcessBackend(
        HiveConfig(state_dir=str(state.root), harness_command=("/no/such/harness", "{agent}"))
    )
    with pytest.raises(BackendError) as info:
        await backend.start(make_spec())
    assert str(info.value).startswith("cannot start the harness of alice (/no/such/harness alice)")
    assert "\n" not in str(info.value)
    assert not backend.is_running("alice")
    await backend.aclose()


async def test_aclose_stops_every_child(state: StateDir, make_spec: SpecMaker) -> None:
    backend = ProcessBackend(standin_cfg(state, "{agent}"))
    await backend.start(make_spec("alice"))
    await backend.start(make_spec("bob"))
    await ready(state, agent="alice")
    await ready(state, agent="bob")
    pids = [backend.pid("alice"), backend.pid("bob")]
    await backend.aclose()
    assert all(pid is not None and gone(pid) for pid in pids)
    exits = {backend.exits.get_nowait().agent for _ in range(2)}
    assert exits == {"alice", "bob"}
    await asyncio.sleep(0)  # sleep-ok: one loop turn, so nothing is left pending
