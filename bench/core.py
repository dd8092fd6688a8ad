"""c0re's figures: command round trips, send -> recv, a restart on a long log, question expiry.

c0re runs in a child process of its own (`run_c0re` with a `FakeBackend`: agents that run
nowhere), on the bench's nats-server and state dir, so the agent users it writes are the ones
the server loads. Clients connect with their own credentials, as hivectl and the harnesses
do: the operator, and agents `alice` and `bob`. The walls are measured in the same run on the
same server: a bare responder in a child process of its own (request/reply, and one that
`js.publish`es before it replies), a raw pull consumer, a bare asyncio timer.

The restart figure needs a long log: the stream is filled with small events (pipelined, as a
bulk importer would publish), the projector (`run_projector(..., projections=PROJECTIONS)`)
catches the log and c0re's state tables up, and c0re is started fresh in a new process,
timed from just before `run_c0re` to the first answered command. It is measured at N/10 and
at N events, to show it does not grow with the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api as js_api

from bench import ours, raw
from bench.common import Rate, percentile, timed
from bench.table import Row, Target, fmt_rate, render, render_targets
from hyperhive import events as ev
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.consume import StartAt, read_ordered
from hyperhive.bus.inbox import recv
from hyperhive.bus.rpc import command
from hyperhive.commands import Command, encode_command
from hyperhive.commands import verbs as v
from hyperhive.config import HiveConfig, StreamConfig
from hyperhive.core import projection, service
from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.core.projection import NAME as STATE_PROJECTION
from hyperhive.core.projection import PROJECTIONS
from hyperhive.core.service import C0re, run_c0re
from hyperhive.core.state import HiveState
from hyperhive.errors import NotConnected
from hyperhive.eventlog.projector import run_projector
from hyperhive.events.catalogue.turn import StepKind
from hyperhive.ids import new_id
from hyperhive.names import OPERATOR, ROLE_OPERATOR, agent_role
from hyperhive.service import cancel_and_wait
from hyperhive.statedir import StateDir

HIVE = "bench-c0re"
SENDER, RECEIVER = "alice", "bob"
ECHO_PLAIN = "benchecho.plain"  # reply at once (body: how many bytes to reply with)
ECHO_PUBLISH = "benchecho.publish"  # js.publish the body, then reply
RAW_INBOX = f"{raw.RAW_SUBJECT}.inbox"
RAW_INBOX_DURABLE = "bench-inbox"
SEND_RATE = 100.0
QUESTION_GAP = 0.04  # seconds between two questions of the staggered batch
LONE_TTL = 3  # seconds: one question alone, nothing else happening in the hive
TARGET_LOG = 1_000_000
WORKERS = 10  # agents of the filled log (known to the state, never spawned)
FILL_CHUNK = 20_000
START_TIMEOUT = 120.0
PROFILE_ENV = "BENCH_C0RE_PROFILE"
STEPS: tuple[StepKind, ...] = ("tool_use", "tool_result", "text")


def say(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ plan and results


@dataclass(frozen=True)
class CorePlan:
    rtt_samples: int  # per command, in rounds interleaved with the walls
    rtt_rounds: int
    send_seconds: float
    questions: int
    log_events: int  # N: the log c0re restarts on (and N/10)
    restarts: int  # c0re starts per log size (the median is reported)


def core_plan(quick: bool, log_events: int | None) -> CorePlan:
    n = log_events if log_events is not None else (50_000 if quick else TARGET_LOG)
    return CorePlan(
        rtt_samples=300 if quick else 2000,
        rtt_rounds=3 if quick else 10,
        send_seconds=2.0 if quick else 10.0,
        questions=20 if quick else 50,
        log_events=n,
        restarts=1 if quick else 3,
    )


@dataclass
class CoreResults:
    ms: dict[str, list[float]] = field(default_factory=dict)  # sorted samples, milliseconds
    values: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    seconds: float = 0.0

    def p(self, key: str, pct: float) -> float:
        return percentile(self.ms.get(key, []), pct)


def c0re_config(state_dir: str, hive: str = HIVE, replicas: int = 1) -> HiveConfig:
    return HiveConfig(hive=hive, state_dir=state_dir, stream=StreamConfig(replicas=replicas))


# ------------------------------------------------------------------ child processes


def _stop_on_message(conn: Connection) -> asyncio.Event:
    """An event set when the parent writes to (or closes) the pipe."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(conn.fileno(), stop.set)
    return stop


def _time_phases(phases: dict[str, float]) -> None:
    """Time c0re's start-up phases in this (child) process by wrapping them; nothing else changes."""
    load, ensure = C0re.load, C0re.ensure_hive

    def read_state(path: Path, hive: str) -> HiveState:
        t = time.monotonic()
        state = projection.read_state(path, hive)
        phases["tables"] = time.monotonic() - t
        phases["tables_position"] = state.position
        return state

    async def timed_load(self: C0re) -> None:
        t = time.monotonic()
        await load(self)
        phases["load"] = time.monotonic() - t
        phases["position"] = self.state.position

    async def timed_ensure(self: C0re) -> None:
        t = time.monotonic()
        await ensure(self)
        phases["ensure_hive"] = time.monotonic() - t

    vars(service)["read_state"] = read_state  # the name C0re.load calls
    C0re.load = timed_load  # type: ignore[method-assign]
    C0re.ensure_hive = timed_ensure  # type: ignore[method-assign]


def c0re_child(state_dir: str, conn: Connection, hive: str = HIVE, replicas: int = 1) -> None:
    """A child process: `run_c0re` (of `hive`) with a `FakeBackend` until the parent says stop.

    With BENCH_C0RE_PROFILE=<prefix> set, each c0re child runs under cProfile and
    writes its stats to <prefix>.<pid> (read them with `python -m pstats`).
    """
    logging.basicConfig(level=logging.WARNING, format="  .. [c0re] %(levelname)s %(message)s")
    profile = os.environ.get(PROFILE_ENV)
    if not profile:
        asyncio.run(_c0re_main(state_dir, conn, hive, replicas))
        return
    import cProfile

    with cProfile.Profile() as prof:
        asyncio.run(_c0re_main(state_dir, conn, hive, replicas))
    prof.dump_stats(f"{profile}.{os.getpid()}")


async def _c0re_main(state_dir: str, conn: Connection, hive: str, replicas: int = 1) -> None:
    cfg = c0re_config(state_dir, hive, replicas)
    phases: dict[str, float] = {}
    _time_phases(phases)
    stop = _stop_on_message(conn)

    def on_ready(_core: C0re) -> None:
        conn.send(("ready", time.monotonic(), dict(phases)))

    conn.send(("start", time.monotonic()))
    task = asyncio.create_task(run_c0re(cfg, backend=FakeBackend(), on_ready=on_ready))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        conn.send(("failed", repr(task.exception())))
        return
    await cancel_and_wait([task, stopper])
    conn.send(("stopped", time.monotonic()))


def echo_child(state_dir: str, conn: Connection) -> None:
    """A child process: the bare responders the command round trips are compared with."""
    asyncio.run(_echo_main(state_dir, conn))


async def _echo_main(state_dir: str, conn: Connection) -> None:
    stop = _stop_on_message(conn)
    conn.send(("start", time.monotonic()))
    nc = await connect(resolve_endpoint(c0re_config(state_dir), auth.ADMIN), "bench-echo")
    js = nc.jetstream()

    async def plain(msg: Msg) -> None:
        await msg.respond(b"x" * int(msg.data or b"0"))

    async def publish(msg: Msg) -> None:
        await js.publish(RAW_INBOX, msg.data)
        await msg.respond(b"ok")

    await nc.subscribe(ECHO_PLAIN, cb=plain)
    await nc.subscribe(ECHO_PUBLISH, cb=publish)
    await nc.flush()
    conn.send(("ready", time.monotonic(), {}))
    await stop.wait()
    await nc.close()
    conn.send(("stopped", time.monotonic()))


class Child:
    """A spawned child process and the pipe it reports on: ("start", t), ("ready", t, phases)."""

    def __init__(self, target: Callable[[str, Connection], None], state: Path, name: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, theirs = ctx.Pipe()
        self.name = name
        self.proc = ctx.Process(target=target, args=(str(state), theirs), name=name, daemon=True)
        self.spawned = time.monotonic()
        self.proc.start()
        theirs.close()

    async def expect(self, what: str, timeout: float = START_TIMEOUT) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        if not self.conn.poll():
            readable = asyncio.Event()
            loop.add_reader(self.conn.fileno(), readable.set)
            try:
                async with asyncio.timeout(timeout):
                    await readable.wait()
            finally:
                loop.remove_reader(self.conn.fileno())
        try:
            got: tuple[Any, ...] = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"{self.name} exited (status {self.proc.exitcode})") from None
        if got[0] != what:
            raise RuntimeError(f"{self.name}: expected {what!r}, got {got!r}")
        return got

    async def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            await self.expect("stopped", 30)
        await asyncio.to_thread(self.proc.join, 10)
        if self.proc.is_alive():
            self.proc.terminate()
            await asyncio.to_thread(self.proc.join, 10)
        self.conn.close()


async def first_answer(ask: Callable[[], Awaitable[object]]) -> float:
    """Ask until somebody answers (no responders: ask again 1 ms later); when it did."""
    while True:
        try:
            await ask()
            return time.monotonic()
        except (NotConnected, nats.errors.NoRespondersError):
            await asyncio.sleep(0.001)


@dataclass
class Started:
    child: Child
    start_to_answer: float  # just before run_c0re (or connect) -> first answer, seconds
    spawn_to_answer: float  # process spawn (interpreter, imports) -> first answer
    phases: dict[str, float]


async def start_child(
    target: Callable[[str, Connection], None],
    state: Path,
    name: str,
    ask: Callable[[], Awaitable[object]],
) -> Started:
    """Spawn a child and time its first answer to `ask`, which is asked from the spawn on."""
    child = Child(target, state, name)
    asking = asyncio.create_task(first_answer(ask))
    ready: asyncio.Task[tuple[Any, ...]] | None = None
    try:
        _, t_start = await child.expect("start")
        ready = asyncio.create_task(child.expect("ready"))  # or the child's failure
        finished, _ = await asyncio.wait(
            [asking, ready], timeout=START_TIMEOUT, return_when=asyncio.FIRST_EXCEPTION
        )
        for t in finished:
            t.result()  # raises what went wrong
        if len(finished) < 2:
            raise TimeoutError(f"{name} did not answer within {START_TIMEOUT:.0f}s")
    except BaseException:
        await cancel_and_wait([asking] if ready is None else [asking, ready])
        await child.stop()
        raise
    _, _, phases = ready.result()
    return Started(child, asking.result() - t_start, asking.result() - child.spawned, phases)


# ------------------------------------------------------------------ the hive's clients


@dataclass
class Clients:
    cfg: HiveConfig
    operator: Client
    admin: Client
    agents: dict[str, Client]

    async def op(self, cmd: Command, timeout: float = 30.0) -> dict[str, Any]:
        return await command(self.operator, HIVE, OPERATOR, cmd, timeout=timeout)

    async def says(self, agent: str, cmd: Command, timeout: float = 30.0) -> dict[str, Any]:
        return await command(self.agents[agent], HIVE, agent, cmd, timeout=timeout)

    async def close(self) -> None:
        for nc in (self.operator, self.admin, *self.agents.values()):
            with contextlib.suppress(Exception):
                await nc.close()


async def open_clients(cfg: HiveConfig) -> Clients:
    operator = await connect(resolve_endpoint(cfg, ROLE_OPERATOR), "bench-operator", wait=True)
    admin = await connect(resolve_endpoint(cfg, auth.ADMIN), "bench-c0re-admin", wait=True)
    return Clients(cfg, operator, admin, {})


async def add_agents(clients: Clients, names: tuple[str, ...]) -> None:
    """Spawn agents through c0re; each connects with the credentials c0re wrote for it."""
    for name in names:
        await clients.op(v.Spawn(name=name))
        endpoint = resolve_endpoint(clients.cfg, agent_role(name))
        # The server loads the new user a moment after c0re wrote it: keep trying.
        clients.agents[name] = await connect(endpoint, f"bench-{name}", wait=True)


# ------------------------------------------------------------------ 1. round trips


async def round_trips(
    jobs: dict[str, Callable[[], Awaitable[object]]], samples: int, rounds: int
) -> dict[str, list[float]]:
    """Each job `samples` times, sequentially, in `rounds` interleaved rounds; sorted ms."""
    out: dict[str, list[float]] = {k: [] for k in jobs}
    for ask in jobs.values():  # warm up: connections, caches, subscriptions
        for _ in range(50):
            await ask()
    per = max(1, samples // rounds)
    for _ in range(rounds):
        for key, ask in jobs.items():
            got = out[key]
            for _ in range(per):
                t = time.perf_counter()
                await ask()
                got.append((time.perf_counter() - t) * 1000)
    return {k: sorted(s) for k, s in out.items()}


async def command_round_trips(c: Clients, echo: Client, p: CorePlan) -> dict[str, list[float]]:
    sample = await c.operator.request(
        subjects.command_subject(HIVE, OPERATOR, "agents"), encode_command(v.ListAgents()), 10
    )
    size = str(len(sample.data)).encode()  # the raw responder replies with as many bytes
    event = ev.encode_event(
        ev.AgentStatusSet(hive=HIVE, agent=SENDER, source="c0re", status_text="x")
    )
    event = b"x" * len(event)  # what the raw responder publishes: as big as set_status's event
    counter = iter(range(10**9))

    async def agents() -> object:
        return await c.op(v.ListAgents())

    async def self_() -> object:
        return await c.says(SENDER, v.GetSelf())

    async def status() -> object:
        return await c.says(SENDER, v.SetStatus(text=f"reviewing item {next(counter)}"))

    async def plain() -> object:
        return await echo.request(ECHO_PLAIN, size, timeout=10)

    async def publish() -> object:
        return await echo.request(ECHO_PUBLISH, event, timeout=10)

    return await round_trips(
        {
            "rtt_agents": agents,
            "rtt_self": self_,
            "rtt_status": status,
            "rtt_raw": plain,
            "rtt_raw_pub": publish,
        },
        p.rtt_samples,
        p.rtt_rounds,
    )


# ------------------------------------------------------------------ 2. send -> recv


async def paced(count: int, rate: float, send: Callable[[int], Awaitable[None]]) -> None:
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i)


def _latencies(sent: dict[int, float], got: dict[int, float]) -> tuple[list[float], int]:
    lat = sorted((got[i] - t0) * 1000 for i, t0 in sent.items() if i in got)
    return lat, len(sent) - len(lat)


async def send_recv(c: Clients, p: CorePlan, announce: bool = True) -> tuple[list[float], int]:
    """alice `send`s to bob via c0re at 100/s; bob sits in `recv(wait=180)` with his credentials.

    Latency: just before alice's `send` command -> bob's `recv` returning with it (after
    its ack and, with `announce` as a harness runs it, its `recv.delivered`), matched by body.
    """
    bob = c.agents[RECEIVER]
    while await recv(bob, HIVE, RECEIVER, wait=0, announce=False):
        pass  # the start kick
    count = int(SEND_RATE * p.send_seconds)
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    all_in = asyncio.Event()

    async def receive() -> None:
        while True:
            r = await recv(bob, HIVE, RECEIVER, wait=180, announce=announce)
            now = time.perf_counter()
            if r is not None and r.message is not None and r.message.body.startswith("m "):
                got[int(r.message.body[2:])] = now
                if len(got) >= count:
                    all_in.set()

    async def send(i: int) -> None:
        sent[i] = time.perf_counter()
        await c.says(SENDER, v.Send(to=RECEIVER, body=f"m {i}"))

    receiver = asyncio.create_task(receive())
    try:
        if announce:
            await _wait_waiting(c)
        else:
            await asyncio.sleep(0.2)  # its pull request is waiting at the server
        await paced(count, SEND_RATE, send)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 5)
    finally:
        await cancel_and_wait([receiver])
    return _latencies(sent, got)


async def _wait_waiting(c: Clients) -> None:
    """Until bob's recv is waiting (c0re has folded his `recv.waiting`)."""
    for _ in range(500):
        rows = (await c.op(v.ListAgents()))["agents"]
        if any(r["name"] == RECEIVER and r["turn_state"] == "waiting" for r in rows):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("bob's recv never showed as waiting")


async def raw_send_recv(nc: Client, echo: Client, p: CorePlan) -> tuple[list[float], int]:
    """The wall: request -> a bare responder js.publishes -> a waiting pull (batch 1) -> ack.

    The same shape as send -> recv (an inbox-like durable, explicit ack, one message
    in flight), with nothing of ours in the way.
    """
    js = nc.jetstream()
    await raw.purge_raw_stream(nc)
    await js.add_consumer(
        raw.RAW_STREAM,
        js_api.ConsumerConfig(
            name=RAW_INBOX_DURABLE,
            durable_name=RAW_INBOX_DURABLE,
            filter_subject=RAW_INBOX,
            deliver_policy=js_api.DeliverPolicy.ALL,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=300.0,
            max_ack_pending=1,
        ),
    )
    count = int(SEND_RATE * p.send_seconds)
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    all_in = asyncio.Event()
    inbox = nc.new_inbox()
    pull = subjects.js_msg_next(raw.RAW_STREAM, RAW_INBOX_DURABLE)
    request = b'{"batch": 1, "expires": 180000000000}'
    arrived: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        if msg.reply and subjects.is_js_ack(msg.reply):
            arrived.put_nowait(msg)

    async def receive() -> None:
        while True:
            await nc.publish(pull, request, reply=inbox)
            msg = await arrived.get()
            await msg.ack_sync()
            got[int(msg.data)] = time.perf_counter()
            if len(got) >= count:
                all_in.set()

    async def send(i: int) -> None:
        sent[i] = time.perf_counter()
        await echo.request(ECHO_PUBLISH, str(i).encode().ljust(300), timeout=10)  # ~an event

    sub = await nc.subscribe(inbox, cb=on_msg)
    receiver = asyncio.create_task(receive())
    try:
        await nc.flush()
        await paced(count, SEND_RATE, send)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 5)
    finally:
        await cancel_and_wait([receiver])
        await sub.unsubscribe()
        await js.delete_consumer(raw.RAW_STREAM, RAW_INBOX_DURABLE)
        await raw.purge_raw_stream(nc)
    return _latencies(sent, got)


# ------------------------------------------------------------------ 4. question expiry


async def question_expiry(
    c: Clients, count: int, ttl: Callable[[int], int], gap: float
) -> tuple[list[float], list[float]]:
    """alice asks `count` questions, one every `gap` seconds, with ttl `ttl(i)`; nobody answers.

    Lateness of each: its `question.expired` event's `ts` - its `expires_at` (both c0re's
    clock); and when a reader of the stream had the event - `expires_at` (the same host's
    clock). Sorted ms.
    """
    stream = subjects.stream_name(HIVE)
    filt = [subjects.event_subject(HIVE, SENDER, "question.expired")]
    seen: dict[str, tuple[datetime, datetime]] = {}
    all_in = asyncio.Event()
    wanted: set[str] = set()

    async def follow() -> None:
        async for msg in read_ordered(c.admin, stream, filt, StartAt(new_only=True), follow=True):
            now = datetime.now(UTC)
            e = ev.decode_event(msg.data)
            if isinstance(e, ev.QuestionExpired):
                seen[e.question_id] = (e.ts, now)
                if wanted and wanted <= seen.keys():
                    all_in.set()

    reader = asyncio.create_task(follow())
    expires: dict[str, datetime] = {}
    try:
        for i in range(count):
            asked = await c.says(
                SENDER, v.AskOperator(question=f"deploy build {i}?", ttl_seconds=ttl(i))
            )
            expires[asked["question_id"]] = datetime.fromisoformat(asked["expires_at"])
            await asyncio.sleep(gap)
        wanted.update(expires)
        if wanted <= seen.keys():
            all_in.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 10)
    finally:
        await cancel_and_wait([reader])
    got = [(seen[q], at) for q, at in expires.items() if q in seen]
    by_ts = sorted((ts - at).total_seconds() * 1000 for (ts, _), at in got)
    by_reader = sorted((now - at).total_seconds() * 1000 for (_, now), at in got)
    return by_ts, by_reader


async def timer_lateness(count: int, ttl: Callable[[int], int], gap: float) -> list[float]:
    """The wall: bare asyncio timers, staggered and as long as the questions' TTLs (ms late)."""
    loop = asyncio.get_running_loop()

    async def one(i: int) -> float:
        await asyncio.sleep(i * gap)
        deadline = loop.time() + ttl(i)
        await asyncio.sleep(deadline - loop.time())
        return (loop.time() - deadline) * 1000

    return sorted(await asyncio.gather(*(one(i) for i in range(count))))


def _staggered(i: int) -> int:
    return 1 + i % 2


# ------------------------------------------------------------------ 3. a long log, a restart


class WorkerLog:
    """Small events of a busy hive, in order: turns, their steps, messages between agents.

    Cycles of 8 events per worker agent (turn.started, three turn.steps, turn.finished,
    agent.status_set, message.sent to the next worker, its recv.delivered), so the
    state stays small however long the log is. The workers are spawned and started
    by the first events of all; they are known to the state, never run.
    """

    def __init__(self, hive: str = HIVE, workers: int = WORKERS) -> None:
        self.hive = hive
        self.workers = workers
        self.i = 0
        self.turn = ""
        self.msg = ""

    def take(self, count: int) -> list[ev.Event]:
        out: list[ev.Event] = []
        src = ev.SOURCE_HARNESS
        if self.i == 0:
            for w in range(self.workers):
                name = f"w{w}"
                out.append(
                    ev.AgentSpawned(hive=self.hive, agent=name, source=ev.SOURCE_C0RE, model="m")
                )
                out.append(ev.AgentStarted(hive=self.hive, agent=name, source=ev.SOURCE_C0RE))
        while len(out) < count:
            cycle, step = divmod(self.i, 8)
            agent = f"w{cycle % self.workers}"
            peer = f"w{(cycle + 1) % self.workers}"
            e: ev.Event
            if step == 0:
                self.turn = new_id()
                e = ev.TurnStarted(
                    hive=self.hive,
                    agent=agent,
                    source=src,
                    turn_id=self.turn,
                    model="m",
                    trigger="message",
                )
            elif step in (1, 2, 3):
                kind: StepKind = STEPS[step - 1]
                e = ev.TurnStep(
                    hive=self.hive,
                    agent=agent,
                    source=src,
                    turn_id=self.turn,
                    step=kind,
                    excerpt="ls /state",
                )
            elif step == 4:
                e = ev.TurnFinished(
                    hive=self.hive, agent=agent, source=src, turn_id=self.turn, duration_ms=900
                )
            elif step == 5:
                e = ev.AgentStatusSet(
                    hive=self.hive, agent=agent, source=src, status_text=f"turn {cycle}"
                )
            elif step == 6:
                self.msg = new_id()
                e = ev.MessageSent(
                    hive=self.hive,
                    agent=agent,
                    source=src,
                    msg_id=self.msg,
                    from_=agent,
                    to=peer,
                    body="next",
                )
            else:
                e = ev.RecvDelivered(hive=self.hive, agent=peer, source=src, message_ids=[self.msg])
            out.append(e)
            self.i += 1
        return out


async def fill_log(nc: Client, log: WorkerLog, count: int) -> Rate:
    """Publish `count` worker events (pipelined, `publish_event`'s message), in chunks."""
    total = 0.0
    done = 0
    while done < count:
        n = min(FILL_CHUNK, count - done)
        with timed() as t:
            await ours.publish_pipelined(nc, log.take(n))
        total += t.seconds
        done += n
    return Rate(count, total, "built and published, window 1000")


def db_position(path: Path, projection: str = STATE_PROJECTION) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        row = conn.execute("SELECT seq FROM positions WHERE projection=?", (projection,)).fetchone()
    except sqlite3.Error:
        return 0
    finally:
        conn.close()
    return int(row[0]) if row else 0


async def project_log(cfg: HiveConfig, nc: Client) -> Rate:
    """`run_projector` with c0re's state tables until the log has the whole stream."""
    path = StateDir.at(cfg.state_dir).events_db
    last = (await nc.jetstream().stream_info(subjects.stream_name(cfg.hive))).state.last_seq
    before = await asyncio.to_thread(db_position, path) if path.exists() else 0
    with timed() as t:
        task = asyncio.create_task(run_projector(cfg, path, projections=PROJECTIONS))
        try:
            while await asyncio.to_thread(db_position, path) < last:
                if task.done():
                    task.result()
                    raise RuntimeError("the projector stopped")
                await asyncio.sleep(0.05)
        finally:
            await cancel_and_wait([task])
    return Rate(last - before, t.seconds, f"{before} -> {last}")


def _files_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / 1e6


async def restarts(
    state: Path, c: Clients, times: int, res: CoreResults, key: str, events: int
) -> None:
    """Start c0re `times` times on the log as it is; the median of each figure is kept."""
    samples: list[Started] = []
    for _ in range(times):
        started = await start_child(
            c0re_child, state, "bench-c0re", lambda: c.op(v.ListAgents(), timeout=60)
        )
        await started.child.stop()
        samples.append(started)
    res.ms[key] = sorted(s.start_to_answer * 1000 for s in samples)
    res.ms[f"{key}_spawn"] = sorted(s.spawn_to_answer * 1000 for s in samples)
    for phase in ("tables", "load", "ensure_hive"):
        res.values[f"{key}_{phase}"] = statistics.median(
            s.phases.get(phase, float("nan")) * 1000 for s in samples
        )
    res.values[f"{key}_events"] = events
    res.values[f"{key}_tail"] = statistics.median(
        s.phases.get("position", 0) - s.phases.get("tables_position", 0) for s in samples
    )
    say(
        f"c0re restart on {events:,} events: "
        + ", ".join(f"{s.start_to_answer * 1000:.0f} ms" for s in samples)
        + f" (load {res.values[f'{key}_load']:.0f} ms, tables {res.values[f'{key}_tables']:.0f} ms,"
        f" ensure_hive {res.values[f'{key}_ensure_hive']:.0f} ms)"
    )


async def restart_without_tables(state: Path, c: Clients, res: CoreResults) -> None:
    """c0re with the tables moved aside: it folds the whole stream (what the tables save)."""
    db = StateDir.at(state).events_db
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    aside = [f.with_name(f.name + ".aside") for f in files]
    for f, a in zip(files, aside, strict=True):
        if f.exists():
            f.rename(a)
    try:
        started = await start_child(
            c0re_child, state, "bench-c0re", lambda: c.op(v.ListAgents(), timeout=120)
        )
        await started.child.stop()
    finally:
        for f, a in zip(files, aside, strict=True):
            if a.exists():
                a.rename(f)
    res.ms["restart_notables"] = [started.start_to_answer * 1000]
    res.values["restart_notables_events"] = started.phases.get("position", 0)
    say(
        f"c0re restart without tables: {started.start_to_answer:.2f}s, "
        f"folded {started.phases.get('position', 0):,.0f} events from the stream"
    )


# ------------------------------------------------------------------ the section


async def run(state: Path, p: CorePlan) -> CoreResults:
    """Every c0re figure, on the server of `state` (which c0re's state dir must be)."""
    res = CoreResults()
    cfg = c0re_config(str(state))
    t0 = time.perf_counter()
    clocks = (time.time(), time.monotonic())
    clients = await open_clients(cfg)
    echo_nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "bench-echo-client")
    echo: Started | None = None
    core: Started | None = None
    try:
        echo = await start_child(
            echo_child, state, "bench-echo", lambda: echo_nc.request(ECHO_PLAIN, b"0", timeout=10)
        )
        res.ms["echo_start"] = [echo.start_to_answer * 1000]
        res.ms["echo_spawn"] = [echo.spawn_to_answer * 1000]
        say("c0re: starting it in a child process (FakeBackend) on the bench's server")
        core = await start_child(
            c0re_child, state, "bench-c0re", lambda: clients.op(v.ListAgents(), timeout=60)
        )
        await add_agents(clients, (SENDER, RECEIVER))

        say(f"c0re: command round trips, {p.rtt_samples} each, interleaved with the walls")
        res.ms.update(await command_round_trips(clients, echo_nc, p))
        for k in ("rtt_agents", "rtt_self", "rtt_status", "rtt_raw", "rtt_raw_pub"):
            say(f"  {k}: p50 {res.p(k, 50):.2f} ms, p99 {res.p(k, 99):.2f} ms")

        say(f"c0re: send -> recv at {SEND_RATE:.0f} msg/s for {p.send_seconds:.0f}s, and the wall")
        res.ms["send_recv"], lost = await send_recv(clients, p)
        res.values["send_lost"] = lost
        res.ms["raw_send_recv"], raw_lost = await raw_send_recv(clients.admin, echo_nc, p)
        res.values["raw_lost"] = raw_lost
        res.ms["send_recv_quiet"], quiet_lost = await send_recv(clients, p, announce=False)
        res.values["quiet_lost"] = quiet_lost
        for k in ("send_recv", "raw_send_recv", "send_recv_quiet"):
            say(f"  {k}: p50 {res.p(k, 50):.2f} ms, p99 {res.p(k, 99):.2f} ms")

        say(f"c0re: {p.questions} questions with ttl 1-2 s, expiring unanswered")
        res.ms["expiry"], res.ms["expiry_seen"] = await question_expiry(
            clients, p.questions, _staggered, QUESTION_GAP
        )
        res.values["expiry_missing"] = p.questions - len(res.ms["expiry"])
        res.ms["timer"] = await timer_lateness(p.questions, _staggered, QUESTION_GAP)
        say(f"  expiry: p50 {res.p('expiry', 50):.1f} ms, p99 {res.p('expiry', 99):.1f} ms")
        say(f"c0re: one question alone in a quiet hive, ttl {LONE_TTL} s")
        res.ms["expiry_lone"], _ = await question_expiry(clients, 1, lambda _i: LONE_TTL, 0.0)
        res.ms["timer_lone"] = await timer_lateness(1, lambda _i: LONE_TTL, 0.0)
        say(f"  lone question: {res.p('expiry_lone', 50):.1f} ms late")
        await core.child.stop()
        core = None

        await echo.child.stop()
        echo = None
        starts = []
        for _ in range(p.restarts):  # the restart wall: a bare responder's start
            e = await start_child(
                echo_child,
                state,
                "bench-echo",
                lambda: echo_nc.request(ECHO_PLAIN, b"0", timeout=10),
            )
            await e.child.stop()
            starts.append(e)
        res.ms["echo_start"] = sorted(s.start_to_answer * 1000 for s in starts)
        res.ms["echo_spawn"] = sorted(s.spawn_to_answer * 1000 for s in starts)

        await _long_log(state, cfg, clients, p, res)
    finally:
        for child in (core, echo):
            if child is not None:
                await child.child.stop()
        await echo_nc.close()
        await clients.close()
    res.seconds = time.perf_counter() - t0
    # c0re's deadlines are wall-clock times, its timers run on the monotonic clock: when
    # the wall clock is being slewed, a long wait ends late (or early) by the difference.
    res.values["clock_ppm"] = ((time.time() - clocks[0]) / (time.monotonic() - clocks[1]) - 1) * 1e6
    return res


async def _long_log(
    state: Path, cfg: HiveConfig, c: Clients, p: CorePlan, res: CoreResults
) -> None:
    js = c.admin.jetstream()
    stream = subjects.stream_name(HIVE)
    small = p.log_events // 10
    have = (await js.stream_info(stream)).state.last_seq
    log = WorkerLog()
    for key, n in (("restart_small", small), ("restart_big", p.log_events)):
        need = max(0, n - have)
        say(f"c0re: filling the log to {n:,} events ({need:,} more)")
        fill = await fill_log(c.admin, log, need)
        res.rates[f"fill_{key}"] = fill
        say(f"  published {need:,} events at {fmt_rate(fill.per_s)}")
        proj = await project_log(cfg, c.admin)
        res.rates[f"proj_{key}"] = proj
        say(f"  projector (+ state tables) caught up {proj.count:,} at {fmt_rate(proj.per_s)}")
        info = (await js.stream_info(stream)).state
        have = info.last_seq
        db = StateDir.at(state).events_db
        res.notes[f"{key}_sizes"] = (
            f"stream {info.bytes / 1e6:.0f} MB, log {_files_mb(db, db.with_name(db.name + '-wal')):.0f} MB"
        )
        await restarts(state, c, p.restarts, res, key, have)
        if key == "restart_small":
            await restart_without_tables(state, c, res)
        have = (await js.stream_info(stream)).state.last_seq


# ------------------------------------------------------------------ the report


def _ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def _pp(r: CoreResults, key: str) -> str:
    return f"{_ms(r.p(key, 50))} / {_ms(r.p(key, 99))} ms"


def _times(ours: float, wall: float) -> str:
    if not ours > 0 or not wall > 0:
        return "-"
    return f"{ours / wall:.1f}x"


def _med(r: CoreResults, key: str) -> float:
    s = r.ms.get(key, [])
    return statistics.median(s) if s else float("nan")


def _span(r: CoreResults, key: str) -> str:
    s = r.ms.get(key, [])
    if len(s) < 2:
        return f"{_ms(_med(r, key))} ms"
    return f"{_ms(_med(r, key))} ms ({_ms(s[0])}-{_ms(s[-1])})"


def report(p: CorePlan, r: CoreResults) -> str:
    n_big = int(r.values.get("restart_big_events", 0))
    n_small = int(r.values.get("restart_small_events", 0))
    lost, raw_lost = int(r.values.get("send_lost", 0)), int(r.values.get("raw_lost", 0))
    count = len(r.ms.get("send_recv", [])) + lost
    rows: list[Row | str] = [
        f"command round trip p50 / p99 ({p.rtt_samples} sequential each, clients on NATS)",
        Row(
            "operator `agents` (read-only)",
            _pp(r, "rtt_agents"),
            f"{_pp(r, 'rtt_raw')} request/reply",
            _times(r.p("rtt_agents", 50), r.p("rtt_raw", 50)),
        ),
        Row(
            "agent `self` (read-only)",
            _pp(r, "rtt_self"),
            f"{_pp(r, 'rtt_raw')} request/reply",
            _times(r.p("rtt_self", 50), r.p("rtt_raw", 50)),
        ),
        Row(
            "agent `set_status` (publish+read-back)",
            _pp(r, "rtt_status"),
            f"{_pp(r, 'rtt_raw_pub')} request+js.publish",
            _times(r.p("rtt_status", 50), r.p("rtt_raw_pub", 50)),
        ),
        f"send -> recv delivered ({SEND_RATE:.0f} msg/s for {p.send_seconds:.0f}s; alice `send`, bob in recv(wait=180))",
        Row(
            "send -> recv p50 / p99",
            _pp(r, "send_recv"),
            f"{_pp(r, 'raw_send_recv')} req+publish->pull+ack",
            _times(r.p("send_recv", 50), r.p("raw_send_recv", 50)),
        ),
        Row(
            "  max, lost",
            f"{_ms(r.p('send_recv', 100))} ms, {lost} lost",
            f"{_ms(r.p('raw_send_recv', 100))} ms, {raw_lost} lost",
            "",
        ),
        Row(
            "  recv(announce=False): no recv.* events",
            _pp(r, "send_recv_quiet"),
            f"{int(r.values.get('quiet_lost', 0))} lost",
            _times(r.p("send_recv_quiet", 50), r.p("raw_send_recv", 50)),
        ),
        f"c0re restart -> first command answered (median of {p.restarts}; state tables + stream tail)",
        Row(
            f"restart, {n_big:,} events in the log",
            _span(r, "restart_big"),
            f"{_ms(_med(r, 'echo_start'))} ms bare responder start",
            _times(_med(r, "restart_big"), _med(r, "echo_start")),
        ),
        Row(
            f"restart, {n_small:,} events in the log",
            _span(r, "restart_small"),
            f"{_ms(_med(r, 'echo_start'))} ms bare responder start",
            _times(_med(r, "restart_small"), _med(r, "echo_start")),
        ),
        Row(
            "  of which tables / load / ensure_hive",
            f"{_ms(r.values.get('restart_big_tables', 0))} / "
            f"{_ms(r.values.get('restart_big_load', 0))} / "
            f"{_ms(r.values.get('restart_big_ensure_hive', 0))} ms",
            f"(at {n_big:,}; tail {r.values.get('restart_big_tail', 0):.0f} events)",
            "",
        ),
        Row(
            "  from process spawn (+ interpreter, imports)",
            f"{_ms(_med(r, 'restart_big_spawn'))} ms",
            f"{_ms(_med(r, 'echo_spawn'))} ms bare responder",
            "",
        ),
        Row(
            f"  no tables: fold {r.values.get('restart_notables_events', 0):,.0f} from the stream",
            f"{_ms(_med(r, 'restart_notables'))} ms",
            "",
            "",
        ),
        Row(
            "  log built: publish (pipelined)",
            fmt_rate(_rate(r, "fill")),
            "",
            "",
        ),
        Row(
            "  log built: projector + state tables",
            fmt_rate(_rate(r, "proj")),
            "",
            "",
        ),
        f"question expiry ({p.questions} questions, ttl 1-2 s, one every "
        f"{QUESTION_GAP * 1000:.0f} ms; nobody answers)",
        Row(
            "lateness p50 / p99 (event ts - expires_at)",
            _pp(r, "expiry"),
            f"{_pp(r, 'timer')} asyncio timers",
            "",
        ),
        Row("  seen by a stream reader p50 / p99", _pp(r, "expiry_seen"), "", ""),
        Row(
            f"  one question alone, quiet hive, ttl {LONE_TTL} s",
            f"{_ms(_med(r, 'expiry_lone'))} ms",
            f"{_ms(_med(r, 'timer_lone'))} ms asyncio timer",
            "",
        ),
    ]
    restart = _med(r, "restart_big")
    small = _med(r, "restart_small")
    missing = int(r.values.get("expiry_missing", 0))
    targets = [
        Target(
            f"send -> recv p99 at {SEND_RATE:.0f} msg/s",
            f"{_ms(r.p('send_recv', 99))} ms, {lost} of {count} lost",
            "<= 5 ms, 0 lost",
            r.p("send_recv", 99) <= 5 and lost == 0,
        ),
        Target(
            f"c0re restart -> first command, {n_big:,} events",
            f"{_ms(restart)} ms ({_ms(small)} ms at {n_small:,})",
            "<= 1 s",
            restart <= 1000,
        ),
        Target(
            "question expiry lateness p99",
            f"{_ms(r.p('expiry', 99))} ms, {missing} never expired",
            "<= 100 ms",
            r.p("expiry", 99) <= 100 and missing == 0,
        ),
    ]
    scale = ""
    if p.log_events < TARGET_LOG:
        scale = (
            f"\nthe log holds {p.log_events:,} events, not the target's {TARGET_LOG:,}"
            " (--quick or --log-events): the restart figure is for this N only\n"
        )
    sizes = r.notes.get("restart_big_sizes", "")
    ppm = r.values.get("clock_ppm", 0.0)
    clock = (
        f"wall clock vs monotonic clock during the section: {ppm:+,.0f} ppm (c0re's deadlines are\n"
        "wall-clock times, its timers monotonic: a wait nothing interrupts ends off by that much)"
    )
    return (
        f"c0re bench: hive {HIVE}, c0re in its own process (FakeBackend), "
        f"{r.seconds:.0f}s\n\n{render(rows)}\n\n"
        f"the log at {n_big:,} events: {sizes}\n{clock}\n{scale}\n{render_targets(targets)}\n"
    )


def _rate(r: CoreResults, prefix: str) -> float:
    rates = [x for k, x in r.rates.items() if k.startswith(prefix + "_") and x.count > 0]
    count = sum(x.count for x in rates)
    secs = sum(x.seconds for x in rates)
    return count / secs if secs > 0 else 0.0
