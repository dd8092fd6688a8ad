"""The harness's figures: a message to the turn it wakes, and what the harness adds to a turn.

The section has a nats-server of its own in a fresh state dir (a state dir holds one hive's
event log, and the harness's figures are best taken on a quiet server). c0re runs there in a child process
(`run_c0re` of hive `bench-harness` with a `FakeBackend`, as in bench/core.py); the
harnesses run in the bench process (`Harness(cfg, nc, agent, runner).run()`, as
`run_harness` runs them), each on a connection with the credentials c0re wrote for its
agent. The operator sends with its own credentials. An admin reader follows the hive's
stream and keeps, for each event, JetStream's storage timestamp and when it had it.

1. message -> turn.started: the operator `send`s one message at a time to an agent idle in
   `recv`. The latency is the storage timestamp of the agent's `turn.started` minus
   `time.time()` just before the `send` command (one clock: the host's); when the reader
   had the event (`perf_counter`) is shown too. Two agents take turns: one whose claude is
   a stand-in executable (a `/bin/sh` script that reads its stdin and prints one
   stream-json `result`) run by the real `CliRunner`, one with `ScriptedRunner` (no
   process). The wall, after each pair: a bare request/reply to a responder in a child
   process of its own.
2. With the real Claude Code CLI against the fake Anthropic API (tests/harness/
   fake_anthropic.py, offline): turn.started -> turn.finished (storage timestamps) minus
   `CliRunner.run`'s own wall time (spawn to exit, its output read), per turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.client import Client

from bench import core
from bench.common import percentile
from bench.table import Row, Target, render, render_targets
from hyperhive import events as ev
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.consume import StartAt, read_ordered
from hyperhive.bus.rpc import command
from hyperhive.bus.server import EmbeddedServer
from hyperhive.commands import Command
from hyperhive.commands import verbs as v
from hyperhive.config import HiveConfig
from hyperhive.errors import MalformedEvent
from hyperhive.harness.claude import (
    CliRunner,
    Invocation,
    LineHandler,
    Outcome,
    Runner,
    ScriptedRunner,
)
from hyperhive.harness.service import Harness
from hyperhive.names import OPERATOR, ROLE_OPERATOR, agent_role
from hyperhive.service import cancel_and_wait

T = TypeVar("T")

HIVE = "bench-harness"
STANDIN, SCRIPTED, REAL = "standin", "scripted", "real-cli"  # agent names (unique per server)
END = "end"  # turn.finished, turn.failed or turn.cancelled
INBOX = "inbox"  # a message.sent to the agent
WARMUP = 5  # messages per agent before the recorded ones
SETTLE = 0.01  # seconds between a harness back in recv and the next message
TURN_TIMEOUT = 60.0
REAL_TURN_TIMEOUT = 120.0
TARGET_MS = 20.0
REPO = Path(__file__).resolve().parent.parent
CLAUDE = REPO / ".test-tools" / "node_modules" / ".bin" / "claude"
STANDIN_RESULT = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "result": "ok",
    "session_id": "bench-standin",
    "num_turns": 1,
    "duration_ms": 0,
    "total_cost_usd": 0.0,
    "usage": {},
}


def say(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ plan and results


@dataclass(frozen=True)
class HarnessPlan:
    messages: int  # per runner, one at a time
    real_turns: int  # turns with the real CLI (after its first, the start kick's)


def harness_plan(quick: bool) -> HarnessPlan:
    return HarnessPlan(messages=100 if quick else 200, real_turns=3 if quick else 10)


@dataclass
class HarnessResults:
    ms: dict[str, list[float]] = field(default_factory=dict)  # sorted samples, milliseconds
    notes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def p(self, key: str, pct: float) -> float:
        return percentile(self.ms.get(key, []), pct)


# ------------------------------------------------------------------ c0re and the runners


def c0re_child(state_dir: str, conn: Connection) -> None:
    """A child process: c0re of the harness hive, with a `FakeBackend` (bench/core.py's)."""
    core.c0re_child(state_dir, conn, HIVE)


def write_standin(directory: Path) -> Path:
    """claude's stand-in: reads its stdin (the prompt), prints one `result` line, exits 0."""
    path = directory / "claude"
    line = json.dumps(STANDIN_RESULT)
    path.write_text(
        "#!/bin/sh\n"
        "# the bench's instant claude: shell builtins only, so one process per turn\n"
        "while IFS= read -r _line; do :; done\n"
        f"printf '%s\\n' {shlex.quote(line)}\n"
    )
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class Run:
    """One `Runner.run`: for CliRunner, spawn -> exit (its output read, the process reaped).

    Its start and end are `time.time()` readings, the clock JetStream stamps stored events
    with, so they compare with the turn's events' storage times.
    """

    began: float
    ended: float
    in_lines: float  # of which the harness's own on_line (transcript, turn.step publishes)
    lines: int  # stream-json lines handed to on_line
    outcome: Outcome


class TimedRunner:
    """A runner around another that times each `run`; `env` may rewrite the child's env."""

    def __init__(
        self, inner: Runner, env: Callable[[dict[str, str]], dict[str, str]] | None = None
    ) -> None:
        self.inner = inner
        self.env = env
        self.runs: list[Run] = []

    def cancel(self) -> bool:
        return self.inner.cancel()

    async def run(self, inv: Invocation, on_line: LineHandler) -> Outcome:
        began = time.time()  # the env rewrite below is the bench's: the runner's share
        if self.env is not None:
            inv = dataclasses.replace(inv, env=self.env(inv.env))
        in_lines = 0.0
        lines = 0

        async def timed(line: dict[str, Any]) -> None:
            nonlocal in_lines, lines
            t = time.perf_counter()
            await on_line(line)
            in_lines += time.perf_counter() - t
            lines += 1

        outcome = await self.inner.run(inv, timed)
        self.runs.append(Run(began, time.time(), in_lines, lines, outcome))
        return outcome


# ------------------------------------------------------------------ the stream, followed


@dataclass(frozen=True)
class Seen:
    event: ev.AnyEvent
    seq: int  # stream sequence
    at: float  # perf_counter when the reader had it
    stored: float  # JetStream's storage timestamp, epoch seconds


class Follower:
    """Every event of the harness hive as an admin reader has it, by (agent, kind)."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.by: dict[tuple[str, str], list[Seen]] = defaultdict(list)
        self._wake: list[asyncio.Future[None]] = []
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self.task is not None:
            await cancel_and_wait([self.task])

    async def _follow(self) -> None:
        stream = subjects.stream_name(HIVE)
        msgs = read_ordered(self.nc, stream, subjects.stream_subjects(HIVE), StartAt(), True)
        async for msg in msgs:
            at = time.perf_counter()
            try:
                event = ev.decode_event(msg.data)
            except MalformedEvent:
                continue
            meta = msg.metadata
            seen = Seen(event, int(meta.sequence.stream), at, meta.timestamp.timestamp())
            agent = event.agent or ""
            self.by[(agent, event.kind)].append(seen)
            if isinstance(event, ev.TurnFinished | ev.TurnFailed | ev.TurnCancelled):
                self.by[(agent, END)].append(seen)
            elif isinstance(event, ev.MessageSent):
                self.by[(event.to, INBOX)].append(seen)
            for f in self._wake:
                if not f.done():
                    f.set_result(None)
            self._wake.clear()

    def count(self, agent: str, kind: str) -> int:
        return len(self.by[(agent, kind)])

    def nth(self, agent: str, kind: str, n: int) -> Seen | None:
        got = self.by[(agent, kind)]
        return got[n] if len(got) > n else None

    async def until(
        self, ready: Callable[[], T | None], what: str, timeout: float = TURN_TIMEOUT
    ) -> T:
        """`ready()` once it is not None, re-checked at each event the reader gets."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (got := ready()) is None:
            if self.task is not None and self.task.done():
                self.task.result()
                raise RuntimeError("the stream reader stopped")
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"harness bench: no {what} within {timeout:.0f}s")
            fut: asyncio.Future[None] = loop.create_future()
            self._wake.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, left)
        return got

    def idle_now(self, agent: str) -> bool:
        """Every turn it began has ended, and it waits in recv again since the last one."""
        starts, ends = self.by[(agent, "turn.started")], self.by[(agent, END)]
        waits = self.by[(agent, "recv.waiting")]
        return bool(starts and len(ends) == len(starts) and waits and waits[-1].seq > ends[-1].seq)

    async def idle(self, agent: str, timeout: float = TURN_TIMEOUT) -> None:
        """Until the agent has taken its first turns (the start kick) and is idle for 0.3 s."""
        while True:
            await self.until(
                lambda: True if self.idle_now(agent) else None, f"{agent} idle", timeout
            )
            before = self.count(agent, "turn.started")
            await asyncio.sleep(0.3)
            if self.idle_now(agent) and self.count(agent, "turn.started") == before:
                return


# ------------------------------------------------------------------ one message, one turn


@dataclass(frozen=True)
class Turn:
    sent: float  # perf_counter just before the operator's send command
    sent_wall: float  # time.time() at the same moment
    message: Seen  # the message.sent c0re stored in the agent's inbox
    delivered: Seen  # the harness's recv.delivered
    started: Seen
    ended: Seen
    runs: list[Run]  # the runner's runs during the turn (one, unless it compacted)

    @property
    def hops(self) -> tuple[float, float, float]:
        """ms, all JetStream storage times: send -> message stored -> delivered -> started."""
        return (
            (self.message.stored - self.sent_wall) * 1000,
            (self.delivered.stored - self.message.stored) * 1000,
            (self.started.stored - self.delivered.stored) * 1000,
        )

    @property
    def to_started(self) -> float:
        return (self.started.at - self.sent) * 1000

    @property
    def to_stored(self) -> float:
        return (self.started.stored - self.sent_wall) * 1000

    @property
    def wall(self) -> float:
        """turn.started -> turn.finished, both as stored (ms)."""
        return (self.ended.stored - self.started.stored) * 1000

    @property
    def runner(self) -> float:
        return sum(r.ended - r.began for r in self.runs) * 1000

    @property
    def overhead(self) -> float:
        """The turn's wall outside the runner: what the harness adds."""
        return self.wall - self.runner

    @property
    def before(self) -> float:
        """turn.started stored -> the runner's start (the ack, transcript, prompts)."""
        return (self.runs[0].began - self.started.stored) * 1000

    @property
    def after(self) -> float:
        """The runner's end -> turn.finished stored (session, transcript, the publish)."""
        return (self.ended.stored - self.runs[-1].ended) * 1000

    @property
    def in_lines(self) -> float:
        return sum(r.in_lines for r in self.runs) * 1000

    @property
    def lines(self) -> int:
        return sum(r.lines for r in self.runs)


async def op(nc: Client, cmd: Command, timeout: float = 30.0) -> dict[str, Any]:
    return await command(nc, HIVE, OPERATOR, cmd, timeout=timeout)


async def one_turn(
    f: Follower, operator: Client, agent: str, runner: TimedRunner, body: str, timeout: float
) -> Turn:
    """Send one message to an idle agent; its turn, once it waits in recv again."""
    n_start, n_end = f.count(agent, "turn.started"), f.count(agent, END)
    n_wait, n_runs = f.count(agent, "recv.waiting"), len(runner.runs)
    n_in, n_delivered = f.count(agent, INBOX), f.count(agent, "recv.delivered")
    wall = time.time()
    t0 = time.perf_counter()
    await op(operator, v.Send(to=agent, body=body))
    started = await f.until(
        lambda: f.nth(agent, "turn.started", n_start), f"{agent}'s turn", timeout
    )
    ended = await f.until(lambda: f.nth(agent, END, n_end), f"{agent}'s turn end", timeout)
    await f.until(lambda: f.nth(agent, "recv.waiting", n_wait), f"{agent} back in recv", timeout)
    if isinstance(ended.event, ev.TurnFailed):
        raise RuntimeError(f"{agent}'s turn failed: {ended.event.error}")
    if not isinstance(ended.event, ev.TurnFinished):
        raise RuntimeError(f"{agent}'s turn ended as {ended.event.kind}")
    message, delivered = f.nth(agent, INBOX, n_in), f.nth(agent, "recv.delivered", n_delivered)
    if message is None or delivered is None:  # both are in the stream before turn.started
        raise RuntimeError(f"{agent}'s turn began without its message.sent or recv.delivered")
    runs = runner.runs[n_runs:]
    if not runs:
        raise RuntimeError(f"{agent}'s turn finished without running claude")
    return Turn(t0, wall, message, delivered, started, ended, runs)


@dataclass
class Agent:
    name: str
    runner: TimedRunner
    nc: Client
    task: asyncio.Task[None]


async def start_agent(cfg: HiveConfig, operator: Client, name: str, runner: TimedRunner) -> Agent:
    """Spawn through c0re, connect with the agent's credentials, run its Harness here."""
    await op(operator, v.Spawn(name=name))
    # The server loads the new user a moment after c0re wrote it: keep trying.
    nc = await connect(resolve_endpoint(cfg, agent_role(name)), f"bench-{name}", wait=True)
    task = asyncio.create_task(Harness(cfg, nc, name, runner).run())
    return Agent(name, runner, nc, task)


async def stop_agents(agents: list[Agent]) -> None:
    await cancel_and_wait([a.task for a in agents])
    for a in agents:
        with contextlib.suppress(Exception):
            await a.nc.close()


def _record(res: HarnessResults, key: str, turns: list[Turn]) -> None:
    res.ms[f"started_{key}"] = sorted(t.to_started for t in turns)
    res.ms[f"stored_{key}"] = sorted(t.to_stored for t in turns)
    res.ms[f"wall_{key}"] = sorted(t.wall for t in turns)
    res.ms[f"run_{key}"] = sorted(t.runner for t in turns)
    res.ms[f"over_{key}"] = sorted(t.overhead for t in turns)
    res.ms[f"before_{key}"] = sorted(t.before for t in turns)
    res.ms[f"after_{key}"] = sorted(t.after for t in turns)
    res.ms[f"lines_{key}"] = sorted(t.in_lines for t in turns)
    res.ms[f"nlines_{key}"] = sorted(float(t.lines) for t in turns)
    for i, hop in enumerate(("c0re", "recv", "self")):
        res.ms[f"hop_{hop}_{key}"] = sorted(t.hops[i] for t in turns)


# ------------------------------------------------------------------ 1. message -> turn.started


async def message_to_turn(
    cfg: HiveConfig,
    f: Follower,
    operator: Client,
    echo: Client,
    standin: Path,
    p: HarnessPlan,
    res: HarnessResults,
) -> None:
    spawn = TimedRunner(CliRunner(str(standin)))
    inproc = TimedRunner(ScriptedRunner())
    agents = [
        await start_agent(cfg, operator, STANDIN, spawn),
        await start_agent(cfg, operator, SCRIPTED, inproc),
    ]
    turns: dict[str, list[Turn]] = {STANDIN: [], SCRIPTED: []}
    rtt: list[float] = []
    try:
        for a in agents:
            await f.idle(a.name)
        for i in range(WARMUP + p.messages):
            for a in agents if i % 2 else agents[::-1]:  # neither always goes first
                t = await one_turn(f, operator, a.name, a.runner, f"message {i}", TURN_TIMEOUT)
                if i >= WARMUP:
                    turns[a.name].append(t)
                await asyncio.sleep(SETTLE)
            t0 = time.perf_counter()
            await echo.request(core.ECHO_PLAIN, b"0", timeout=10)
            if i >= WARMUP:
                rtt.append((time.perf_counter() - t0) * 1000)
    finally:
        await stop_agents(agents)
    _record(res, "spawn", turns[STANDIN])
    _record(res, "inproc", turns[SCRIPTED])
    res.ms["rtt_raw"] = sorted(rtt)


# ------------------------------------------------------------------ 2. the real CLI


def _claude_version(claude: Path) -> str:
    try:
        out = subprocess.run(
            [str(claude), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", os.defpath), "DISABLE_AUTOUPDATER": "1"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"? ({exc})"
    return out.stdout.strip() or f"? (exit {out.returncode}: {out.stderr.strip()[:200]})"


def install_hint() -> str:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        from tests.claude_tools import install_command
    except ImportError:  # tests/ needs the dev dependencies (pytest)
        return "npm install --prefix .test-tools @anthropic-ai/claude-code (tests/claude_tools.py)"
    return shlex.join(install_command())


async def real_cli(
    cfg: HiveConfig, f: Follower, operator: Client, tmp: Path, p: HarnessPlan, res: HarnessResults
) -> None:
    """Turns with the real CLI on the fake API; the turn wall minus claude's own wall."""
    if str(REPO) not in sys.path:  # the fake API and the offline env live with the tests
        sys.path.insert(0, str(REPO))
    from tests.claude_tools import offline_env
    from tests.harness.fake_anthropic import FakeAnthropic

    res.notes["claude_version"] = await asyncio.to_thread(_claude_version, CLAUDE)
    fake = FakeAnthropic(final_text="ok").start()  # every turn: one text answer, at once
    home = tmp / "claude-home"
    inherited = dict(os.environ)

    def offline(env: dict[str, str]) -> dict[str, str]:
        # The harness's env is this process's plus its own; the CLI gets only the
        # offline env (the fake API, no traffic out) plus what the harness added.
        added = {k: val for k, val in env.items() if inherited.get(k) != val}
        return offline_env(fake.base_url, home, added)

    # The harness hands os.environ's HYPERHIVE_* to its MCP server: no user config there.
    old_config = os.environ.get("HYPERHIVE_CONFIG")
    os.environ["HYPERHIVE_CONFIG"] = "/dev/null"
    runner = TimedRunner(CliRunner(str(CLAUDE)), env=offline)
    agents: list[Agent] = []
    turns: list[Turn] = []
    try:
        agents.append(await start_agent(cfg, operator, REAL, runner))
        await f.idle(REAL, REAL_TURN_TIMEOUT)  # the start kick's turn: the CLI's first run
        began, first = f.nth(REAL, "turn.started", 0), f.nth(REAL, END, 0)
        if began is None or first is None or not isinstance(first.event, ev.TurnFinished):
            raise RuntimeError(f"the first turn with the real CLI: {first and first.event!r}")
        res.ms["real_first"] = [(first.stored - began.stored) * 1000]
        for i in range(p.real_turns):
            turn = await one_turn(f, operator, REAL, runner, f"real message {i}", REAL_TURN_TIMEOUT)
            turns.append(turn)
            say(
                f"  real CLI turn {i + 1}/{p.real_turns}: {turn.wall:.0f} ms, of which claude "
                f"{turn.runner:.0f} ms; harness {turn.overhead:.1f} ms"
            )
    finally:
        await stop_agents(agents)
        fake.stop()
        if old_config is None:
            os.environ.pop("HYPERHIVE_CONFIG", None)
        else:
            os.environ["HYPERHIVE_CONFIG"] = old_config
    _record(res, "real", turns)
    res.notes["real_requests"] = str(len(fake.main_requests()))


# ------------------------------------------------------------------ the section


async def run(state: Path, p: HarnessPlan) -> HarnessResults:
    """Every harness figure, on a nats-server of its own in the fresh state dir `state`.

    One hive per state dir (its event log is that hive's): the harness hive does not
    share the state dir of c0re's section, and has a quiet server of its own.
    """
    server = EmbeddedServer(state, hive=HIVE)
    server.start()
    try:
        say(f"harness: nats-server of its own up at {server.url}")
        return await _run(state, p)
    finally:
        server.stop()


async def _run(state: Path, p: HarnessPlan) -> HarnessResults:
    res = HarnessResults()
    cfg = HiveConfig(hive=HIVE, state_dir=str(state))
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="hyperhive-bench-harness-"))
    operator = await connect(resolve_endpoint(cfg, ROLE_OPERATOR), "bench-h-operator", wait=True)
    admin = await connect(resolve_endpoint(cfg, auth.ADMIN), "bench-h-admin", wait=True)
    echo_nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "bench-h-echo-client")
    follower = Follower(admin)
    c0re: core.Started | None = None
    echo: core.Started | None = None
    try:
        say("harness: starting c0re (FakeBackend) and a bare responder, each in its own process")
        c0re = await core.start_child(
            c0re_child, state, "bench-harness-c0re", lambda: op(operator, v.ListAgents())
        )
        echo = await core.start_child(
            core.echo_child,
            state,
            "bench-echo",
            lambda: echo_nc.request(core.ECHO_PLAIN, b"0", timeout=10),
        )
        follower.start()
        standin = write_standin(tmp)
        say(
            f"harness: message -> turn.started, {p.messages} messages to each of two agents "
            "(stand-in claude via CliRunner; ScriptedRunner), a request/reply between them"
        )
        await message_to_turn(cfg, follower, operator, echo_nc, standin, p, res)
        for k in ("stored_spawn", "stored_inproc", "rtt_raw", "wall_spawn", "wall_inproc"):
            say(f"  {k}: p50 {res.p(k, 50):.2f} ms, p99 {res.p(k, 99):.2f} ms")
        await echo.child.stop()
        echo = None
        if not CLAUDE.exists():
            res.notes["real_skipped"] = (
                f"{CLAUDE} is not there: install Claude Code with `{install_hint()}`"
            )
            say(f"harness: skipping the real CLI: {res.notes['real_skipped']}")
        else:
            say(f"harness: {p.real_turns} turns with the real Claude Code CLI on the fake API")
            try:
                await real_cli(cfg, follower, operator, tmp, p, res)
            except Exception as exc:  # report it; the other figures stand
                res.notes["real_failed"] = f"{type(exc).__name__}: {exc}"
                say(f"harness: the real CLI figure failed: {res.notes['real_failed']}")
    finally:
        await follower.stop()
        for child in (c0re, echo):
            if child is not None:
                await child.child.stop()
        for nc in (operator, admin, echo_nc):
            with contextlib.suppress(Exception):
                await nc.close()
        shutil.rmtree(tmp, ignore_errors=True)
    res.seconds = time.perf_counter() - t0
    return res


# ------------------------------------------------------------------ the report


def _ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def _pp(r: HarnessResults, key: str) -> str:
    return f"{_ms(r.p(key, 50))} / {_ms(r.p(key, 99))} ms"


def _times(ours: float, wall: float) -> str:
    if not ours > 0 or not wall > 0:
        return "-"
    return f"{ours / wall:.1f}x"


def report(p: HarnessPlan, r: HarnessResults) -> str:
    raw = f"{_pp(r, 'rtt_raw')} request/reply"
    rows: list[Row | str] = [
        f"message -> turn.started stored, p50 / p99 ({p.messages} messages each, one at a time; "
        "operator `send`, the agent idle in recv)",
        Row(
            "CliRunner, stand-in claude (/bin/sh)",
            _pp(r, "stored_spawn"),
            raw,
            _times(r.p("stored_spawn", 50), r.p("rtt_raw", 50)),
        ),
        Row(
            "ScriptedRunner (no process)",
            _pp(r, "stored_inproc"),
            raw,
            _times(r.p("stored_inproc", 50), r.p("rtt_raw", 50)),
        ),
        Row(
            "  seen by an admin reader (CliRunner)",
            _pp(r, "started_spawn"),
            f"{_pp(r, 'started_inproc')} ScriptedRunner",
            "",
        ),
        Row("  c0re: send -> message.sent stored", _pp(r, "hop_c0re_spawn"), "", ""),
        Row("  recv: -> recv.delivered stored", _pp(r, "hop_recv_spawn"), "", ""),
        Row("  `self`, emit: -> turn.started stored", _pp(r, "hop_self_spawn"), "", ""),
        "turn.started -> turn.finished stored, p50 / p99, the same turns",
        Row(
            "CliRunner, stand-in claude",
            _pp(r, "wall_spawn"),
            f"{_pp(r, 'wall_inproc')} ScriptedRunner",
            _times(r.p("wall_spawn", 50), r.p("wall_inproc", 50)),
        ),
        Row(
            "  of which Runner.run (spawn -> exit)",
            _pp(r, "run_spawn"),
            f"{_pp(r, 'run_inproc')} ScriptedRunner",
            "",
        ),
        Row(
            "  the rest: the harness",
            _pp(r, "over_spawn"),
            f"{_pp(r, 'over_inproc')} ScriptedRunner",
            "",
        ),
        Row("    before the run (ack, transcript, prompts)", _pp(r, "before_spawn"), "", ""),
        Row("    after it (transcript, turn.finished)", _pp(r, "after_spawn"), "", ""),
    ]
    version = r.notes.get("claude_version", "?").removesuffix(" (Claude Code)")
    skipped = r.notes.get("real_skipped") or r.notes.get("real_failed")
    n_real = len(r.ms.get("wall_real", []))
    if n_real:
        rows += [
            f"real Claude Code {version} on the fake API, p50 / p99 of {n_real} turns "
            "(one text answer each, session resumed)",
            Row("turn.started -> turn.finished", _pp(r, "wall_real"), "", ""),
            Row("  claude process (CliRunner.run)", _pp(r, "run_real"), "", ""),
            Row("harness overhead per turn (the rest)", _pp(r, "over_real"), "", ""),
            Row("  before the run (ack, transcript, prompts)", _pp(r, "before_real"), "", ""),
            Row("  after it (transcript, turn.finished)", _pp(r, "after_real"), "", ""),
            Row(
                "  during the run: on_line (steps, transcript)",
                _pp(r, "lines_real"),
                f"{r.p('nlines_real', 50):.0f} lines a turn",
                "",
            ),
            Row(
                "  the first turn (the start kick)",
                f"{_ms(r.p('real_first', 50))} ms",
                "",
                "",
            ),
        ]
    p99 = r.p("stored_spawn", 99)
    targets = [
        Target(
            "message -> turn.started stored, p99 (CliRunner)",
            f"{_ms(p99)} ms (reader {_ms(r.p('started_spawn', 99))} ms; "
            f"ScriptedRunner {_ms(r.p('stored_inproc', 99))} ms)",
            f"<= {TARGET_MS:.0f} ms",
            p99 <= TARGET_MS,
        )
    ]
    extra = ""
    if skipped:
        extra = f"real CLI: not measured: {skipped}\n\n"
    return (
        f"harness bench: hive {HIVE} on a nats-server of its own, c0re in its own process "
        f"(FakeBackend), the harnesses in the bench's, {r.seconds:.0f}s\n\n{render(rows)}\n\n{extra}"
        f"{render_targets(targets)}\n"
    )
