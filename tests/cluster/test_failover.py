"""kill -9 of a node of the cluster: nothing acknowledged is lost, nothing is doubled.

Each test runs a hive on the 3-node cluster with an R3 stream, kills the node
that matters (the stream's leader, or the node a consumer lives on) with
SIGKILL, and checks what a user would see: every acknowledged event in the
event log exactly once, every command answered within its budget, a question
expiring when it should, a waiting `recv` getting the message sent meanwhile,
`hive-events tail -f` going on without a gap or a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import nats.errors
import pytest

from hyperhive import events as ev
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.inbox import recv
from hyperhive.bus.publish import publish_event
from hyperhive.bus.rpc import COMMAND_BUDGET
from hyperhive.bus.tail import follow_streams, resolve_streams
from hyperhive.commands import CommandRefused
from hyperhive.commands import verbs as v
from hyperhive.eventlog.projector import run_projector
from hyperhive.events import decode_event
from tests.cluster.conftest import c0re_on, hive_stream
from tests.clusters import LocalCluster, cluster_env
from tests.helpers import BIN, db_position, running, turn_started, wait_until

pytestmark = [pytest.mark.nats, pytest.mark.cluster, pytest.mark.timeout(300)]

BURST = 10_000
WINDOW = 200  # publishes in flight at once


async def consumer_node(cluster: LocalCluster, stream: str, prefix: str) -> tuple[str, str]:
    """(name, node) of the one consumer of `stream` whose name starts with `prefix`."""
    admin = await cluster.admin()
    try:
        names = await admin.jetstream().consumers_info(stream)
        (found,) = [c for c in names if (c.name or "").startswith(prefix)]
        assert found.cluster is not None
        assert found.cluster.leader
        return str(found.name), str(found.cluster.leader)
    finally:
        await admin.close()


# ---------------------------------------------------------------- the event log


async def test_every_acknowledged_event_is_projected_exactly_once_across_a_leader_kill(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    cfg = await cluster.config("burst", tmp_path / "burst")
    log_path = tmp_path / "burst" / "events.sqlite"
    async with hive_stream(cluster, cfg), running(run_projector(cfg), stop_timeout=30):
        nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "burst", wait=True)
        acked: list[str] = []
        failed: list[str] = []
        leader = await cluster.stream_leader(cfg.hive)
        events = [turn_started(cfg.hive, "alice", i) for i in range(BURST)]

        async def one(e: ev.Event) -> None:
            try:
                await publish_event(nc.jetstream(), e, retry_for=30)
                acked.append(e.id)
            except Exception:  # not acknowledged: it may or may not be stored
                failed.append(e.id)

        try:
            window: set[asyncio.Future[None]] = set()
            for i, e in enumerate(events):
                if i == BURST // 3:
                    cluster.kill(leader)  # mid-burst, with publishes in flight
                window.add(asyncio.ensure_future(one(e)))
                if len(window) >= WINDOW:
                    _, window = await asyncio.wait(window, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.gather(*window)
            assert leader not in cluster.running()
            assert len(acked) >= BURST - WINDOW, f"{len(failed)} publishes never acked"
            last = int(
                (
                    await nc.jetstream(timeout=10).stream_info(subjects.stream_name(cfg.hive))
                ).state.last_seq
            )
        finally:
            await nc.close()
        await wait_until(
            lambda: db_position(log_path) >= last,
            120,
            what=lambda: f"the projector at {last} (it is at {db_position(log_path)})",
        )

    conn = sqlite3.connect(log_path)
    try:
        rows = conn.execute("SELECT id, kind, error FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert [r for r in rows if r[2] is not None] == [], "rows with errors (a duplicate id?)"
    burst = [r[0] for r in rows if r[1] == "turn.started"]
    assert len(burst) == len(set(burst)), "an event is in the log twice"
    assert set(acked) <= set(burst), f"{len(set(acked) - set(burst))} acknowledged events lost"
    assert set(burst) <= {e.id for e in events}
    # What was never acknowledged may or may not have been stored; nothing else is there
    # but the projector's own hive.started.
    assert {r[1] for r in rows} <= {"turn.started", "hive.started"}


# ---------------------------------------------------------------- c0re


async def test_c0re_answers_every_command_across_a_leader_kill(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    async with c0re_on(cluster, "cmds", tmp_path) as live:
        await live.op(v.ListAgents())
        leader = await cluster.stream_leader(live.cfg.hive)
        loop = asyncio.get_running_loop()
        sent: list[str] = []
        worst = 0.0
        killed_at = 0.0
        for i in range(60):
            if i == 10:
                cluster.kill(leader)
                killed_at = loop.time()
            start = loop.time()
            body = f"message {i}"
            result = await live.op(v.Send(to="manager", body=body), timeout=COMMAND_BUDGET)
            await live.op(v.ListAgents(), timeout=COMMAND_BUDGET)
            worst = max(worst, loop.time() - start)
            sent.append(str(result["msg_id"]))
            if killed_at and loop.time() - killed_at > 15:
                break
        assert killed_at, "the loop ended before the kill"
        assert worst < COMMAND_BUDGET, f"a command took {worst:.1f}s"
        # Each message is in the stream once.
        stored = []
        js = live.admin.jetstream(timeout=10)
        last = (await js.stream_info(subjects.stream_name(live.cfg.hive))).state.last_seq
        for seq in range(1, last + 1):
            msg = await js.get_msg(subjects.stream_name(live.cfg.hive), seq)
            event = decode_event(msg.data or b"")
            if isinstance(event, ev.MessageSent) and event.body.startswith("message "):
                stored.append(event.msg_id)
        assert sorted(stored) == sorted(sent)


async def test_a_questions_ttl_fires_on_time_across_a_leader_kill(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    async with c0re_on(cluster, "ttl", tmp_path) as live:
        asked = await live.agent_says("manager", v.AskOperator(question="go?", ttl_seconds=12))
        leader = await cluster.stream_leader(live.cfg.hive)
        cluster.kill(leader)
        expires_at = datetime.fromisoformat(str(asked["expires_at"]))

        async def expired() -> list[ev.QuestionExpired]:
            """The question's expiries in the stream (none while it can't be read)."""
            found = []
            js = live.admin.jetstream(timeout=2)
            name = subjects.stream_name(live.cfg.hive)
            try:
                last = (await js.stream_info(name)).state.last_seq
                for seq in range(1, last + 1):
                    e = decode_event((await js.get_msg(name, seq)).data or b"")
                    if isinstance(e, ev.QuestionExpired) and e.question_id == asked["question_id"]:
                        found.append(e)
            except (nats.errors.Error, TimeoutError):
                return []  # the election is on
            return found

        (event,) = await wait_until(expired, 40, what="the question's expiry")
        assert event.ts >= expires_at
        late = (event.ts - expires_at).total_seconds()
        assert late < 2.0, f"the expiry was decided {late:.2f}s after expires_at"
        with pytest.raises(CommandRefused, match="already expired"):
            await live.op(v.Answer(question_id=str(asked["question_id"]), answer="yes"))
        assert len(await expired()) == 1


# ---------------------------------------------------------------- recv


async def test_a_recv_in_progress_returns_the_message_sent_during_the_failover_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    async with c0re_on(cluster, "recv", tmp_path) as live:
        hive = live.cfg.hive
        manager = await live.as_agent("manager")
        while await recv(manager, hive, "manager", wait=0, announce=False) is not None:
            pass  # the start kick
        stream = subjects.stream_name(hive)
        _, node = await consumer_node(cluster, stream, subjects.inbox_durable("manager"))
        waiting = asyncio.ensure_future(recv(manager, hive, "manager", wait=120))
        await wait_until(
            lambda: _pull_waiting(live, stream), 10, what="recv's pull request at the server"
        )
        cluster.kill(node)
        sent = await live.op(v.Send(to="manager", body="during the failover"), timeout=60)
        got = await asyncio.wait_for(waiting, 90)
        assert got is not None
        assert got.message is not None
        assert (got.message.msg_id, got.message.body) == (sent["msg_id"], "during the failover")
        assert await recv(manager, hive, "manager", wait=2, announce=False) is None
        info = await live.admin.jetstream(timeout=10).consumer_info(
            stream, subjects.inbox_durable("manager")
        )
        assert (info.num_ack_pending, info.num_redelivered, info.num_pending) == (0, 0, 0)


async def _pull_waiting(live: object, stream: str) -> bool:
    admin = live.admin  # type: ignore[attr-defined]
    info = await admin.jetstream(timeout=5).consumer_info(stream, subjects.inbox_durable("manager"))
    return bool(info.num_waiting)


# ---------------------------------------------------------------- following


async def test_a_follower_goes_on_on_another_node_without_a_gap_or_a_repeat(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """`bus.tail.follow_streams`, what `hive-events tail -f` and a dashboard follow with,
    across the death of the node its consumer lives on."""
    cfg = await cluster.config("follow", tmp_path / "follow")
    async with hive_stream(cluster, cfg):
        admin = await cluster.admin()
        reader = await connect(resolve_endpoint(cfg, auth.OPERATOR), "follower", wait=True)
        got: list[str] = []
        try:
            streams = await resolve_streams(reader, cfg.hive)

            async def follow() -> None:
                async with contextlib.aclosing(
                    follow_streams(reader, streams, EventFilter(hive=cfg.hive))
                ) as live:
                    async for rec in live:
                        assert rec.event is not None
                        got.append(rec.event.id)

            before = [turn_started(cfg.hive, "alice", i) for i in range(50)]
            after = [turn_started(cfg.hive, "alice", 100 + i) for i in range(50)]
            async with running(follow()):
                for e in before:
                    await publish_event(admin.jetstream(), e, retry_for=30)
                await wait_until(lambda: len(got) >= 50, 20, what="the first 50")
                _, node = await consumer_node(cluster, streams[0].stream, "read-")
                cluster.kill(node)
                for e in after:
                    await publish_event(admin.jetstream(), e, retry_for=30)
                await wait_until(lambda: len(got) >= 100, 60, what=lambda: f"100 ({len(got)})")
            assert got == [e.id for e in before + after]
        finally:
            await reader.close()
            await admin.close()


async def test_hive_events_tail_follows_across_a_node_kill(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    cfg = await cluster.config("tailf", tmp_path / "tailf")
    async with hive_stream(cluster, cfg):
        admin = await cluster.admin()
        first = [turn_started(cfg.hive, "alice", i) for i in range(20)]
        then = [turn_started(cfg.hive, "bob", i) for i in range(20)]
        for e in first:
            await publish_event(admin.jetstream(), e, retry_for=30)
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "hive-events"),
            *("tail", "-f", "-n", "20", "-o", "json", "--count", "40"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cluster_env(cfg),
        )
        try:
            stream = subjects.stream_name(cfg.hive)

            async def following() -> str | None:
                with contextlib.suppress(ValueError, AssertionError):
                    return (await consumer_node(cluster, stream, "read-"))[1]
                return None

            node = await wait_until(following, 30, what="tail's live consumer")
            cluster.kill(node)
            for e in then:
                await publish_event(admin.jetstream(), e, retry_for=30)
            async with asyncio.timeout(120):
                out_b, err_b = await proc.communicate()
            out, err = out_b.decode(), err_b.decode()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.communicate()
            await admin.close()
        assert proc.returncode == 0, err
        ids = [json.loads(line)["id"] for line in out.splitlines() if line.strip()]
        assert ids == [e.id for e in first + then]
