"""`hive-events` as a real process: follow, Ctrl-C, `| head`, no server, colour on a TTY."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
from pathlib import Path

import pytest
from nats.aio.client import Client

from hyperhive.config import HiveConfig
from tests.cli.test_hive_events_helpers import (  # noqa: F401 - drop_streams is a fixture
    HIVE_EVENTS,
    drop_streams,
    publish,
    started,
)
from tests.conftest import cfg_env

DEADLINE = 15.0


async def spawn(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        HIVE_EVENTS,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def read_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
    except TimeoutError:
        proc.kill()
        raise AssertionError("no output line before the deadline") from None
    if not line:
        err = await proc.stderr.read() if proc.stderr else b""
        raise AssertionError(f"output ended early (status {await proc.wait()}): {err!r}")
    return line.decode()


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the process did not exit before the deadline") from None
    assert proc.returncode is not None
    return proc.returncode, (out or b"").decode(), (err or b"").decode()


async def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return await finish(await spawn(env, *args))


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_follow_prints_events_published_after_it_started_then_stops_at_count(
    cfg: HiveConfig, nc: Client
) -> None:
    js = nc.jetstream()
    await publish(js, [started(cfg.hive, n=i) for i in range(3)])
    proc = await spawn(cfg_env(cfg), "tail", "-n", "1", "-f", "--count", "4", "-o", "json")
    # The backlog's line means the start of following is fixed: what comes next is new.
    first = json.loads(await read_line(proc))
    assert first["turn_id"] == "t2"
    await publish(js, [started(cfg.hive, n=i) for i in range(3, 6)])
    code, out, err = await finish(proc)
    assert (code, err) == (0, "")
    assert [json.loads(line)["turn_id"] for line in out.splitlines()] == ["t3", "t4", "t5"]


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_follow_with_a_filter_skips_what_does_not_match(cfg: HiveConfig, nc: Client) -> None:
    js = nc.jetstream()
    await publish(js, [started(cfg.hive, "bob", 0)])
    proc = await spawn(cfg_env(cfg), "tail", "-f", "--agent", "bob", "--count", "3")
    assert "turn_id=t0" in await read_line(proc)
    await publish(js, [started(cfg.hive, ("alice", "bob")[i % 2], i) for i in range(1, 6)])
    code, out, _ = await finish(proc)
    assert code == 0
    got = [line.split("turn_id=")[1].split()[0] for line in out.splitlines()]
    assert got == ["t1", "t3"], "bob's only, and --count counted the backlog's line"


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_ctrl_c_exits_130_quietly(cfg: HiveConfig, nc: Client) -> None:
    await publish(nc.jetstream(), [started(cfg.hive)])
    proc = await spawn(cfg_env(cfg), "tail", "-f")
    await read_line(proc)
    proc.send_signal(signal.SIGINT)
    code, out, err = await finish(proc)
    assert (code, out, err) == (130, "", "")


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_a_closed_pipe_ends_quietly_like_head(cfg: HiveConfig, nc: Client) -> None:
    js = nc.jetstream()
    await publish(js, [started(cfg.hive, n=i) for i in range(5)])
    read_end, write_end = os.pipe()
    proc = await asyncio.create_subprocess_exec(
        HIVE_EVENTS,
        "tail",
        "-f",
        stdout=write_end,
        stderr=asyncio.subprocess.PIPE,
        env=cfg_env(cfg),
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = await asyncio.to_thread(reader.readline)  # what `head -1` does, then it exits
    assert b"turn_id=t0" in first
    # The next line written hits the closed pipe.
    await publish(js, [started(cfg.hive, n=9)])
    code, _, err = await finish(proc)
    assert (code, err) == (0, "")


async def test_no_server_exits_1_with_one_line_saying_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(HYPERHIVE_STATE_DIR=str(tmp_path / "state"), HYPERHIVE_CONFIG=os.devnull)
    code, out, err = await run(env, "tail")
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    assert "hyperhive up" in line


async def test_an_unreachable_nats_url_exits_1_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(
        HYPERHIVE_STATE_DIR=str(tmp_path / "state"),
        HYPERHIVE_CONFIG=os.devnull,
        HYPERHIVE_NATS_URL="nats://127.0.0.1:1",
    )
    code, out, err = await run(env, "tail", "-f")
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    assert line.startswith("error: cannot connect to NATS at nats://127.0.0.1:1")
    assert "hyperhive up" in line


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
@pytest.mark.parametrize(
    "args",
    [["tail", "--agent", "../x"], ["tail", "--hive", "a>b"], ["export", "--hive", "../../etc"]],
)
async def test_hostile_names_exit_1_with_one_line(cfg: HiveConfig, args: list[str]) -> None:
    code, out, err = await run(cfg_env(cfg), *args)
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    assert line.startswith("error: ")
    assert "invalid " in line


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_colour_only_on_a_terminal_and_never_with_no_color(
    cfg: HiveConfig, nc: Client
) -> None:
    await publish(nc.jetstream(), [started(cfg.hive)])
    plain = cfg_env(cfg)
    tty_env = {k: v for k, v in plain.items() if k != "NO_COLOR"}
    assert "\x1b[" in await on_a_tty(tty_env, "tail")
    assert "\x1b[" not in await on_a_tty(plain, "tail")
    code, out, _ = await run(tty_env, "tail")  # a pipe, not a terminal
    assert code == 0
    assert "turn.started" in out
    assert "\x1b[" not in out


async def on_a_tty(env: dict[str, str], *args: str) -> str:
    """Run with stdout on a pseudo-terminal; return what it printed."""
    leader, follower = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        HIVE_EVENTS, *args, stdout=follower, stderr=asyncio.subprocess.PIPE, env=env
    )
    os.close(follower)
    try:
        code = await asyncio.wait_for(proc.wait(), DEADLINE)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    assert code == 0
    return b"".join(chunks).decode()
