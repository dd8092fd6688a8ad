"""The cluster section (`--only cluster`): hyperhive on a 3-node cluster, R3, beside one server.

Two deployments in one run, each in a fresh temp state dir: one embedded
`nats-server`, and a local cluster of three `hyperhive nats --cluster` nodes
(tests/clusters.py's `LocalCluster`, on loopback) whose hive streams have three
replicas. On each, the same measurements:

* publish, pipelined: N events into a scratch hive's stream (`publish_event`'s
  message, window 1000), the backlog the projector then reads;
* projector sustained: `project()` through a `ProcessSink` over that backlog,
  as `bench/ours.py` measures it for the bus section (best of `repeats`);
* send -> recv: c0re in a child process (its hive's stream R1 or R3), alice
  `send`s to bob at 100 msg/s while bob waits in `recv(wait=180)`, exactly as
  the c0re section measures it (`core.send_recv`).

Then, on the cluster only, the failover: with c0re and `run_projector` running
and a publisher putting an event into the hive's stream every 5 ms, the node
leading the hive's stream is killed (SIGKILL) `kills` times; after each kill it
is started again and the stream is let catch up before the next. Per kill:

* the gap: from the projector's last commit before the kill to its commit of
  the first event whose publish began after the kill (the time during which
  nothing new reached the event log);
* c0re's slowest command: the operator sends `send` commands one after
  another the whole time; the longest round trip of those begun within a
  second of the kill or during the gap.

The failover log is checked afterwards: every stream message in it once.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from nats.aio.client import Client

from bench import core, ours
from bench.common import Rate, make_event, make_events, percentile
from bench.table import Row, fmt_rate, render
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.publish import publish_event
from hyperhive.bus.server import EmbeddedServer
from hyperhive.bus.stream import ensure_stream
from hyperhive.commands import verbs as v
from hyperhive.config import HiveConfig, StreamConfig
from hyperhive.eventlog.projector import run_projector
from hyperhive.service import cancel_and_wait
from tests.clusters import LocalCluster

HIVE = core.HIVE  # c0re's hive (core's clients speak to it)
FILL_HIVE = "bench-fill"  # the projector's backlog
PUBLISH_GAP = 0.005  # the failover publisher: one event every 5 ms
ONE, R3 = "one server", "3 nodes, R3"
T = TypeVar("T")


def say(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ClusterPlan:
    events: int
    send_seconds: float
    kills: int
    repeats: int


def cluster_plan(quick: bool, events: int | None) -> ClusterPlan:
    return ClusterPlan(
        events=events if events is not None else (5_000 if quick else 80_000),
        send_seconds=2.0 if quick else 10.0,
        kills=3 if quick else 10,
        repeats=1 if quick else 2,
    )


@dataclass
class ClusterResults:
    rates: dict[tuple[str, str], Rate] = field(default_factory=dict)  # (deployment, what)
    ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # sorted samples
    lost: dict[str, int] = field(default_factory=dict)
    gaps_ms: list[float] = field(default_factory=list)
    c0re_ms: list[float] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def rate(self, dep: str, key: str) -> float:
        r = self.rates.get((dep, key))
        return r.per_s if r else 0.0


def limits(replicas: int) -> StreamConfig:
    return StreamConfig(max_bytes=512 * 1024 * 1024, replicas=replicas)


def hive_config(state: Path, hive: str, replicas: int) -> HiveConfig:
    """A hive on the deployment of `state` (its running server or nodes), R1 or R3."""
    return HiveConfig(hive=hive, state_dir=str(state), stream=limits(replicas))


# ------------------------------------------------------------------ the run


async def run(tmp: Path, p: ClusterPlan) -> ClusterResults:
    res = ClusterResults()
    start = time.perf_counter()
    res.notes["load_before"] = _load()
    single = EmbeddedServer(tmp / "single", HIVE)
    cluster = LocalCluster(tmp / "cluster")
    try:
        single.start()
        say(f"one nats-server at {single.url}")
        cluster.start()
        await cluster.wait_ready()
        await cluster.wait_placeable()
        auth.write_auth_conf(cluster.state, HIVE)  # the hive's operator, on every node
        await cluster.wait_users(auth.OPERATOR, HIVE)
        say(f"3-node cluster at {cluster.seed}")
        for dep, state, replicas in ((ONE, single.state_dir, 1), (R3, cluster.state, 3)):
            await backlog(dep, state, replicas, p, res, tmp)
        for dep, state, replicas in ((ONE, single.state_dir, 1), (R3, cluster.state, 3)):
            await with_c0re(dep, state, replicas, p, res, cluster if replicas == 3 else None)
    finally:
        cluster.stop()
        single.stop()
    res.seconds = time.perf_counter() - start
    res.notes["load_after"] = _load()
    return res


def _load() -> str:
    """The 1-minute load average: other jobs on the machine show up in the figures."""
    return f"{os.getloadavg()[0]:.1f}"


async def backlog(
    dep: str, state: Path, replicas: int, p: ClusterPlan, res: ClusterResults, tmp: Path
) -> None:
    """Publish rate (pipelined) and the projector over the backlog it leaves."""
    cfg = hive_config(state, FILL_HIVE, replicas)
    nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "bench-cluster")
    try:
        await ensure_stream(nc.jetstream(), FILL_HIVE, cfg.stream)
        rate = await ours.publish_pipelined(nc, make_events(p.events, FILL_HIVE))
        res.rates[(dep, "publish")] = rate
        say(f"{dep}: publish pipelined {fmt_rate(rate.per_s)}")
        last = (await nc.jetstream().stream_info(subjects.stream_name(FILL_HIVE))).state.last_seq
        best: Rate | None = None
        for i in range(p.repeats):
            got = await ours.projector(cfg, tmp / f"proj-{replicas}-{i}.sqlite", last)
            best = got if best is None or got.per_s > best.per_s else best
        assert best is not None
        res.rates[(dep, "projector")] = best
        say(f"{dep}: projector {fmt_rate(best.per_s)} ({best.note})")
        await nc.jetstream().delete_stream(subjects.stream_name(FILL_HIVE))
    finally:
        await nc.close()


async def with_c0re(
    dep: str,
    state: Path,
    replicas: int,
    p: ClusterPlan,
    res: ClusterResults,
    cluster: LocalCluster | None,
) -> None:
    """c0re in a child process: send -> recv, and (on the cluster) the failover."""
    cfg = core.c0re_config(str(state), HIVE, replicas)
    clients = await core.open_clients(cfg)
    target = functools.partial(core.c0re_child, hive=HIVE, replicas=replicas)
    started = await core.start_child(
        target, state, f"c0re-{replicas}", lambda: clients.op(v.ListAgents())
    )
    try:
        await core.add_agents(clients, (core.SENDER, core.RECEIVER))
        plan = core.core_plan(quick=True, log_events=None)
        plan = core.CorePlan(**{**plan.__dict__, "send_seconds": p.send_seconds})
        lat, lost = await core.send_recv(clients, plan)
        res.ms[(dep, "send_recv")] = lat
        res.lost[dep] = lost
        say(
            f"{dep}: send -> recv p50 {percentile(lat, 50):.2f} ms, "
            f"p99 {percentile(lat, 99):.2f} ms, {lost} lost"
        )
        if cluster is not None:
            await failover(cluster, cfg, clients, p, res)
    finally:
        await started.child.stop()
        await clients.close()


# ------------------------------------------------------------------ failover


@dataclass
class Watch:
    """What the failover measurement records as it goes."""

    commits: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, log position)
    published: list[tuple[float, int]] = field(default_factory=list)  # (publish began, seq)
    commands: list[tuple[float, float]] = field(default_factory=list)  # (began, seconds)

    def on_batch(self, _written: int, position: int) -> None:
        self.commits.append((time.monotonic(), position))

    def flowing(self) -> bool | None:
        return bool(self.commits and self.commands) or None

    def first_published_after(self, t0: float) -> int | None:
        """The stream sequence of the first event whose publish began after `t0`."""
        return next((seq for t, seq in self.published if t > t0), None)

    def command_after(self, t0: float) -> bool | None:
        return any(t > t0 for t, _ in self.commands) or None

    def slowest_during(self, t0: float, t1: float) -> float:
        """The longest command under way at some moment between `t0` and `t1`."""
        return max((d for t, d in self.commands if t <= t1 and t + d >= t0), default=0.0)

    def committed(self, seq: int) -> float | None:
        """When the projector committed `seq`, if it has."""
        return next((t for t, pos in self.commits if pos >= seq), None)


async def failover(
    cluster: LocalCluster,
    cfg: HiveConfig,
    clients: core.Clients,
    p: ClusterPlan,
    res: ClusterResults,
) -> None:
    log_path = Path(cfg.state_dir) / "failover.sqlite"
    w = Watch()
    nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "bench-failover", wait=True)
    tasks = [
        asyncio.create_task(run_projector(cfg, path=log_path, on_batch=w.on_batch)),
        asyncio.create_task(_publish(nc, w)),
        asyncio.create_task(_commands(clients, w)),
    ]
    try:
        for k in range(p.kills):
            await _until(w.flowing, "traffic")
            leader = await cluster.stream_leader(HIVE)
            before = w.commits[-1][0]
            killed = time.monotonic()
            cluster.kill(leader)
            # The first event whose publish began after the kill, once it is stored...
            first_seq = await _until(
                functools.partial(w.first_published_after, killed), "a publish"
            )
            # ... and its commit in the event log.
            projected = await _until(functools.partial(w.committed, first_seq), "its projection")
            res.gaps_ms.append((projected - before) * 1000)
            # Every command that was under way at some point of the gap has ended
            # once one begun after it has.
            await _until(functools.partial(w.command_after, projected), "a command after")
            res.c0re_ms.append(w.slowest_during(killed, projected) * 1000)
            say(
                f"kill {k + 1}/{p.kills} ({leader}): gap {res.gaps_ms[-1]:.0f} ms, "
                f"c0re's slowest command {res.c0re_ms[-1]:.0f} ms"
            )
            cluster.restart(leader)
            await cluster.wait_ready()
            await cluster.wait_current(HIVE, timeout=120)
            # The hive's stream and its durable consumers (the projector's) caught up
            # on the restarted node: killing the next one earlier would leave a group
            # of three with one current member, and no leader until a node is back.
            await cluster.wait_all_current(HIVE, timeout=120)
    finally:
        await cancel_and_wait(tasks)
        last = (await nc.jetstream(timeout=30).stream_info(subjects.stream_name(HIVE))).state
        await nc.close()
    res.notes["failover_log"] = _check_log(log_path, int(last.last_seq))
    res.notes["published"] = str(len(w.published))


async def _publish(nc: Client, w: Watch) -> None:
    """One event every PUBLISH_GAP seconds, each retried through a failover until acked."""
    js = nc.jetstream()
    while True:
        began = time.monotonic()
        published = await publish_event(js, make_event(HIVE, "worker-1"), retry_for=60)
        w.published.append((began, published.seq))
        await asyncio.sleep(max(0.0, began + PUBLISH_GAP - time.monotonic()))


async def _commands(clients: core.Clients, w: Watch) -> None:
    """The operator's `send`, one after another, each timed."""
    i = 0
    while True:
        began = time.monotonic()
        await clients.op(v.Send(to=core.RECEIVER, body=f"probe {i}"), timeout=60)
        w.commands.append((began, time.monotonic() - began))
        i += 1
        await asyncio.sleep(0.02)


async def _until(cond: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll `cond` every 5 ms until it gives something; what it gave."""
    deadline = time.monotonic() + timeout
    while (got := cond()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"failover: no {what} within {timeout:.0f}s")
        await asyncio.sleep(0.005)
    return got


def _check_log(path: Path, last_seq: int) -> str:
    """Every stream message in the failover log once (or what is wrong)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows, ids, bad = conn.execute(
            "SELECT count(*), count(DISTINCT id), count(error) FROM events"
        ).fetchone()
    finally:
        conn.close()
    ok = rows == ids and bad == 0 and rows <= last_seq
    return f"{rows} rows, {ids} distinct ids, {bad} with errors: {'ok' if ok else 'WRONG'}"


# ------------------------------------------------------------------ report


def _ms(values: list[float]) -> str:
    return f"{percentile(values, 50):.2f} / {percentile(values, 99):.2f} ms"


def _ratio(ours_: float, base: float, rate: bool) -> str:
    if ours_ <= 0 or base <= 0:
        return "-"
    return f"{100 * ours_ / base:.0f}%" if rate else f"{ours_ / base:.1f}x"


def report(p: ClusterPlan, r: ClusterResults) -> str:
    header = Row("metric", ONE, R3, "R3 vs one")
    lat = {dep: r.ms.get((dep, "send_recv"), []) for dep in (ONE, R3)}
    gaps, slow = sorted(r.gaps_ms), sorted(r.c0re_ms)
    rows: list[Row | str] = [
        f"throughput ({p.events:,} events of ~300 bytes; projector best of {p.repeats})",
        Row(
            "publish, pipelined (window 1000)",
            fmt_rate(r.rate(ONE, "publish")),
            fmt_rate(r.rate(R3, "publish")),
            _ratio(r.rate(R3, "publish"), r.rate(ONE, "publish"), True),
        ),
        Row(
            "projector sustained (project())",
            fmt_rate(r.rate(ONE, "projector")),
            fmt_rate(r.rate(R3, "projector")),
            _ratio(r.rate(R3, "projector"), r.rate(ONE, "projector"), True),
        ),
        f"send -> recv (100 msg/s for {p.send_seconds:.0f}s; alice `send`, bob in recv(wait=180))",
        Row(
            "send -> recv p50 / p99",
            _ms(lat[ONE]),
            _ms(lat[R3]),
            _ratio(percentile(lat[R3], 99), percentile(lat[ONE], 99), False),
        ),
        Row(
            "  max, lost",
            f"{max(lat[ONE], default=0):.2f} ms, {r.lost.get(ONE, 0)} lost",
            f"{max(lat[R3], default=0):.2f} ms, {r.lost.get(R3, 0)} lost",
            "",
        ),
        f"failover on the cluster: kill -9 of the hive stream's leader, {len(gaps)} kills "
        f"(events every {PUBLISH_GAP * 1000:.0f} ms)",
        Row("gap p50 / p99 / max", "", _gap(gaps), ""),
        Row("c0re's slowest command p50 / p99 / max", "", _gap(slow), ""),
    ]
    return (
        f"cluster: one server beside a 3-node cluster (R3), {r.seconds:.0f}s\n\n"
        f"{render(rows, header)}\n\n"
        f"gap: the projector's last commit before the kill -> its commit of the first event\n"
        f"published after it. c0re: the longest `send` round trip under way during that time.\n"
        f"failover log: {r.notes.get('failover_log', '-')} "
        f"({r.notes.get('published', '?')} events published during the kills)\n"
        f"load average (1 min) before / after the section: {r.notes.get('load_before')} / "
        f"{r.notes.get('load_after')} on {os.cpu_count()} cores\n"
    )


def _gap(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return f"{p50 / 1000:.2f} / {p99 / 1000:.2f} / {values[-1] / 1000:.2f} s"
