"""c0re restarts lose nothing: deadlines fire on time, the state tables equal a replay."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.server import EmbeddedServer
from hyperhive.commands import verbs as v
from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.core.projection import PROJECTIONS, read_state
from hyperhive.core.state import fold
from hyperhive.eventlog.projector import run_projector
from tests.core.conftest import LiveHive, hive_config, running_c0re
from tests.helpers import BIN, db_position, running, state_env, wait_until

pytestmark = pytest.mark.nats


async def stream_events(live: LiveHive) -> list[tuple[int, ev.AnyEvent]]:
    js = live.admin.jetstream()
    stream = subjects.stream_name(live.cfg.hive)
    last = (await js.stream_info(stream)).state.last_seq
    out = []
    for seq in range(1, last + 1):
        msg = await js.get_msg(stream, seq)
        assert msg.data is not None
        out.append((seq, ev.decode_event(msg.data)))
    return out


async def test_a_question_expires_on_time_across_a_c0re_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = hive_config(state, "restarts", agents=("alice",))
    server = EmbeddedServer(state, cfg.hive)
    server.start()
    try:
        async with running_c0re(cfg, server, FakeBackend()) as live:
            asked = await live.agent_says("alice", v.AskOperator(question="q", ttl_seconds=2))
        # c0re is down now; the deadline passes while it is.
        expires = datetime.fromisoformat(asked["expires_at"])
        async with running_c0re(cfg, server, FakeBackend()) as live:
            q = asked["question_id"]
            await wait_until(
                lambda: live.core.state.questions[q].status == "expired",
                timeout=10,
                what="the question to expire",
            )
            expired = [e for _, e in await stream_events(live) if isinstance(e, ev.QuestionExpired)]
            assert [e.question_id for e in expired] == [q]
            lateness = (expired[0].ts - expires).total_seconds()
            assert 0 <= lateness < 5, lateness
    finally:
        server.stop()


async def test_a_question_due_while_c0re_runs_expires_within_its_second(
    live_fake: LiveHive,
) -> None:
    live = live_fake
    await live.op(v.Spawn(name="alice"))
    asked = await live.agent_says("alice", v.AskOperator(question="q", ttl_seconds=2))
    q = asked["question_id"]
    await wait_until(
        lambda: live.core.state.questions[q].status == "expired", timeout=10, what="expiry"
    )
    (expired,) = [e for _, e in await stream_events(live) if isinstance(e, ev.QuestionExpired)]
    lateness = (expired.ts - datetime.fromisoformat(asked["expires_at"])).total_seconds()
    assert 0 <= lateness < 1.0, lateness
    messages = [e for _, e in await stream_events(live) if isinstance(e, ev.MessageSent)]
    assert any(m.to == "alice" and m.ref == q and "[expired]" in m.body for m in messages)


async def test_the_projectors_state_tables_equal_a_fold_from_sequence_one(
    live_fake: LiveHive,
) -> None:
    live = live_fake
    await live.op(v.Spawn(name="alice"))
    await live.op(v.Spawn(name="bob"))
    await live.agent_says("alice", v.Send(to="bob", body="hi"))
    await live.agent_says("alice", v.AskOperator(question="q", options=["a", "b"]))
    aid = (await live.agent_says("manager", v.RequestSpawn(name="carol")))["approval_id"]
    await live.op(v.Approve(approval_id=aid))
    await live.op(v.Pause(name="bob"))
    await live.op(v.Destroy(name="alice"))
    path = live.state_dir / "events.sqlite"
    events = await stream_events(live)
    async with running(run_projector(live.cfg, path, projections=PROJECTIONS)):
        await wait_until(lambda: db_position(path) >= events[-1][0], what="the projector")
        state = await asyncio.to_thread(read_state, path, live.cfg.hive)
    replayed = fold(live.cfg.hive, events)
    assert state.position >= replayed.position
    assert msgspec.structs.replace(state, position=0) == msgspec.structs.replace(
        replayed, position=0
    )
    assert set(state.agents) == {"manager", "bob", "carol"}
    assert set(state.kept) == {"alice"}


async def test_c0re_restarting_reads_the_tables_and_only_the_stream_after_them(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    cfg = hive_config(state_dir, "tables", agents=())
    server = EmbeddedServer(state_dir, cfg.hive)
    server.start()
    path = state_dir / "events.sqlite"
    try:
        async with running_c0re(cfg, server, FakeBackend()) as live:
            await live.op(v.Spawn(name="alice"))
            last = (await stream_events(live))[-1][0]
        async with running(run_projector(cfg, path, projections=PROJECTIONS)):
            await wait_until(lambda: db_position(path) >= last, what="the projector")
        tables = await asyncio.to_thread(read_state, path, cfg.hive)
        assert tables.position >= last
        async with running_c0re(cfg, server, FakeBackend()) as live:
            assert live.core.state.agents.keys() == tables.agents.keys()
            assert live.core.state.position >= tables.position
    finally:
        server.stop()


async def test_hive_events_tail_tells_the_whole_story(live: LiveHive) -> None:
    aid = (await live.agent_says("manager", v.RequestSpawn(name="carol")))["approval_id"]
    await live.op(v.Approve(approval_id=aid))
    await live.op(v.Send(to="alice", body="ask:1:quick?"))
    await wait_until(
        lambda: any(q.status == "expired" for q in live.core.state.questions.values()),
        what="alice's question to expire",
    )
    await live.op(v.Send(to="bob", body="crash:7"))
    await wait_until(lambda: live.core.state.agents["bob"].state == "crashed", what="bob's crash")
    out = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "hive-events"), "tail", "-n", "1000", "--hive", live.cfg.hive],
        capture_output=True,
        text=True,
        env=state_env(live.state_dir),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for kind in (
        "approval.requested",
        "approval.approved",
        "agent.spawned",
        "agent.started",
        "agent.kicked",
        "message.sent",
        "recv.delivered",
        "question.asked",
        "question.expired",
        "agent.crashed",
    ):
        assert f" {kind} " in text, f"{kind} is missing from tail's story"


async def test_c0re_starts_from_the_stream_when_the_log_is_unusable(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "events.sqlite").write_bytes(b"not a database, or one being created")
    cfg = hive_config(state_dir, "garbled", agents=())
    server = EmbeddedServer(state_dir, cfg.hive)
    server.start()
    try:
        async with running_c0re(cfg, server, FakeBackend()) as live:
            rows = (await live.op(v.ListAgents()))["agents"]
            assert [r["name"] for r in rows] == ["manager"]
    finally:
        server.stop()
