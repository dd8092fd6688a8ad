"""The projector: every event into sqlite exactly once, whatever dies and whenever.

Exactly once means: the log's rows are stream sequences 1..N without a hole, every
published event id is there once, the hash chain verifies and the log agrees with
the stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerInfo

from hyperhive.bus import subjects
from hyperhive.bus.server import EmbeddedServer
from hyperhive.config import HiveConfig
from hyperhive.eventlog.projector import eventlog_path, project, run_projector
from hyperhive.eventlog.store import EventLog, StreamMessage
from hyperhive.eventlog.verify import VerifyReport, verify_chain, verify_stream
from hyperhive.events import Event, encode_event
from tests.conftest import cfg_env
from tests.helpers import (
    db_position,
    publish_many,
    publish_raw,
    publish_until_stored,
    running,
    stop_task,
    stream_last_seq,
    turn_events,
    wait_until,
)

pytestmark = pytest.mark.nats


async def _caught_up(
    path: Path, seq: int, task: asyncio.Task[None] | None = None, timeout: float = 15
) -> None:
    def done() -> bool:
        if task is not None and task.done():
            raise AssertionError(
                f"the projector stopped: {task.exception() if not task.cancelled() else 'cancelled'}"
            )
        return db_position(path) >= seq

    await wait_until(
        done, timeout, what=lambda: f"the log to reach seq {seq} (at {db_position(path)})"
    )


ANNOUNCEMENTS = frozenset({"hive.started", "hive.stopped"})  # services announce themselves


async def _assert_exactly_once(nc: Client, path: Path, hive: str, published: list[Event]) -> None:
    log = EventLog(path, hive, readonly=True)
    try:
        rows = list(log.rows())
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), "the log has holes"
        errors = [(r.seq, r.error) for r in rows if r.error]
        assert not errors, errors[:5]
        ids = [r.id for r in rows]
        assert len(ids) == len(set(ids)), "an event id is in the log twice"
        wanted = {e.id for e in published}
        assert not wanted - set(ids), (
            f"{len(wanted - set(ids))} published events are missing from the log"
        )
        others = [
            (r.seq, r.kind) for r in rows if r.id not in wanted and r.kind not in ANNOUNCEMENTS
        ]
        assert not others, f"rows nobody published: {others[:5]}"
        assert log.position() == len(rows)
        report = VerifyReport()
        verify_chain(log, report)
        await verify_stream(nc, log, report)
        assert report.ok, report.problems
        assert report.stream_checked == len(rows)
    finally:
        log.close()


@pytest.fixture
def log_path(cfg: HiveConfig) -> Path:
    return eventlog_path(cfg)


@pytest.fixture
async def eventlog(cfg: HiveConfig, log_path: Path) -> AsyncIterator[EventLog]:
    log = TrackedLog(log_path, cfg.hive)
    yield log
    log.close()


async def test_projector_keeps_up_with_the_stream(
    cfg: HiveConfig, nc: Client, eventlog: EventLog, log_path: Path
) -> None:
    js = nc.jetstream()
    events = turn_events(cfg.hive, 300)
    async with running(project(cfg, eventlog)) as task:
        await publish_many(js, events[:200])
        await _caught_up(log_path, await stream_last_seq(js, cfg.hive), task)
        await publish_many(js, events[200:])
        await _caught_up(log_path, await stream_last_seq(js, cfg.hive), task)

    await _assert_exactly_once(nc, log_path, cfg.hive, events)


async def test_projector_catches_up_after_downtime(
    cfg: HiveConfig, nc: Client, eventlog: EventLog, log_path: Path
) -> None:
    js = nc.jetstream()
    before, during, after = (
        turn_events(cfg.hive, 100),
        turn_events(cfg.hive, 400),
        turn_events(cfg.hive, 50),
    )
    async with running(project(cfg, eventlog)) as task:
        await publish_many(js, before)
        await _caught_up(log_path, 100, task)

    await publish_many(js, during)  # the projector is down

    async with running(project(cfg, eventlog)) as task:
        await _caught_up(log_path, 500, task)
        await publish_many(js, after)
        await _caught_up(log_path, 550, task)

    await _assert_exactly_once(nc, log_path, cfg.hive, before + during + after)


async def test_a_malformed_message_is_recorded_and_does_not_stop_the_projector(
    cfg: HiveConfig, nc: Client, eventlog: EventLog, log_path: Path
) -> None:
    js = nc.jetstream()
    hive = cfg.hive
    [first, last] = turn_events(hive, 2)
    async with running(project(cfg, eventlog)) as task:
        await publish_many(js, [first])
        await publish_raw(
            js, hive, subjects.event_subject(hive, "alice", "turn.started"), b"\x00garbage"
        )
        await publish_raw(
            js, hive, f"hive.{hive}.evt.nokind", encode_event(turn_events(hive, 1)[0])
        )
        await publish_many(js, [last])
        await _caught_up(log_path, 4, task)

    rows = {r.seq: r for r in eventlog.rows()}
    assert (rows[1].id, rows[1].error) == (first.id, None)
    assert "not an event envelope" in (rows[2].error or "")
    assert rows[2].raw == b"\x00garbage"
    assert "not a hyperhive event subject" in (rows[3].error or "")
    assert (rows[4].id, rows[4].error) == (last.id, None)


class TrackedLog(EventLog):
    """An event log that knows whether an append is still running in some thread.

    A cancelled `project()` leaves its `asyncio.to_thread(append)` running: the
    connection may only be closed once that write is over.
    """

    def __init__(self, path: Path, hive: str) -> None:
        super().__init__(path, hive)
        self._busy = 0
        self._idle = threading.Condition()

    def append(self, msgs: list[StreamMessage], first_available: int | None = None) -> int:
        with self._idle:
            self._busy += 1
        try:
            return super().append(msgs, first_available)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def close(self) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._busy == 0, timeout=30):
                raise AssertionError("an append was still running 30s after its projector stopped")
        super().close()


class GatedLog(TrackedLog):
    """An event log whose first append waits at the gate: the test decides when it dies."""

    def __init__(self, path: Path, hive: str) -> None:
        super().__init__(path, hive)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_before_commit = False
        self.finished = threading.Event()
        self.gated = True
        self.batch_end = 0

    def append(self, msgs: list[StreamMessage], first_available: int | None = None) -> int:
        if not self.gated:
            return super().append(msgs, first_available)
        self.gated = False
        self.batch_end = msgs[-1].seq
        self.entered.set()
        self.release.wait(10)
        try:
            if self.fail_before_commit:
                raise RuntimeError("the process died before the commit")
            return super().append(msgs, first_available)
        finally:
            self.finished.set()


@pytest.mark.parametrize("dies", ["before-commit", "after-commit"])
async def test_projector_cancelled_mid_batch_resumes_exactly_once(
    cfg: HiveConfig, nc: Client, log_path: Path, dies: str
) -> None:
    js = nc.jetstream()
    events = turn_events(cfg.hive, 2500)
    await publish_many(js, events[:1500])
    first_run = GatedLog(log_path, cfg.hive)
    first_run.fail_before_commit = dies == "before-commit"
    try:
        task = asyncio.ensure_future(project(cfg, first_run))
        await wait_until(first_run.entered.is_set, what="the projector to be writing a batch")
        task.cancel()  # while its batch is being written and not yet acked
        await asyncio.sleep(0)  # sleep-ok: a yield, not a wait: the task takes the cancel first
        first_run.release.set()  # now the interrupted write ends, or fails
        await stop_task(task, cancel=False)  # cancelled once, as a stop signal does
        assert first_run.finished.is_set()
        check = EventLog(log_path, cfg.hive, readonly=True)
        written, gaps = check.position(), check.gaps()
        check.close()
        assert gaps == {}, f"the log skipped over the interrupted batch 1..{first_run.batch_end}"
        if dies == "before-commit":
            assert written == 0
        else:  # the batch was committed (later ones queued behind it may be too), never acked
            assert written >= first_run.batch_end

        await publish_many(js, events[1500:])
        second_run = TrackedLog(log_path, cfg.hive)
        try:
            async with running(project(cfg, second_run)) as task:
                await _caught_up(log_path, len(events), task)
        finally:
            second_run.close()
    finally:
        first_run.release.set()
        first_run.close()

    await _assert_exactly_once(nc, log_path, cfg.hive, events)


async def test_a_failed_write_is_never_skipped_by_the_next_batch(
    cfg: HiveConfig, nc: Client, log_path: Path
) -> None:
    js = nc.jetstream()
    events = turn_events(cfg.hive, 1500)
    await publish_many(js, events)
    failing = GatedLog(log_path, cfg.hive)
    failing.fail_before_commit = True  # e.g. "database is locked", a full disk
    try:
        task = asyncio.ensure_future(project(cfg, failing))
        await wait_until(failing.entered.is_set, what="the projector to be writing a batch")

        async def first_pull_delivered() -> bool:
            info: ConsumerInfo = await js.consumer_info(
                subjects.stream_name(cfg.hive), "projector-events"
            )
            assert info.delivered is not None
            return info.delivered.stream_seq >= 1000

        await wait_until(first_pull_delivered, what="the projector to have more batches in hand")
        for _ in range(50):  # yields, not a wait: let it queue those batches behind the held one
            await asyncio.sleep(0)  # sleep-ok: a yield, not a wait
        failing.release.set()  # the held write fails now
        with pytest.raises(RuntimeError, match="died before the commit"):
            await asyncio.wait_for(task, 10)
    finally:
        failing.release.set()
        failing.close()

    log = EventLog(log_path, cfg.hive, readonly=True)
    try:
        skipped_to = log.position()
        gaps = log.gaps()
    finally:
        log.close()
    assert (skipped_to, gaps) == (0, {}), (
        f"after the write of 1..{failing.batch_end} failed, the log moved on to {skipped_to} "
        f"and recorded {gaps}: those events are lost for good"
    )


async def test_projector_cancelled_again_and_again_resumes_exactly_once(
    cfg: HiveConfig, nc: Client, log_path: Path
) -> None:
    js = nc.jetstream()
    events = turn_events(cfg.hive, 4000)
    await publish_many(js, events)
    logs: list[TrackedLog] = []
    try:
        for _ in range(3):
            log = TrackedLog(log_path, cfg.hive)  # one per run: a cancelled run may still write
            logs.append(log)
            start = db_position(log_path)
            async with running(project(cfg, log)) as task:

                def progressed(t: asyncio.Task[Any] = task, s: int = start) -> bool:
                    return db_position(log_path) > s or t.done()

                await wait_until(progressed, interval=0.002)
            # cancelled wherever it was: fetching, writing, or acking
        final = TrackedLog(log_path, cfg.hive)
        logs.append(final)
        async with running(project(cfg, final)) as task:
            await _caught_up(log_path, len(events), task)
    finally:
        for log in logs:
            log.close()

    await _assert_exactly_once(nc, log_path, cfg.hive, events)


async def test_a_projector_cancelled_mid_stream_stops_promptly(
    cfg: HiveConfig, nc: Client, log_path: Path
) -> None:
    await publish_many(nc.jetstream(), turn_events(cfg.hive, 6000), window=256)
    logs: list[EventLog] = []
    try:
        for cycle in range(5):
            start = db_position(log_path)
            logs.append(
                TrackedLog(log_path, cfg.hive)
            )  # one per run: a cancelled run may still write
            task = asyncio.ensure_future(project(cfg, logs[-1]))

            def progressed(t: asyncio.Task[None] = task, s: int = start) -> bool:
                return db_position(log_path) > s or t.done()

            await wait_until(progressed, interval=0.002)
            seq = db_position(log_path)
            try:
                await stop_task(task, timeout=2.0)  # a cancel is not lost: it ends at once
            except AssertionError as exc:
                raise AssertionError(
                    f"cycle {cycle}, cancelled with the log at seq {seq}: {exc}; "
                    f"the log is now at seq {db_position(log_path)}"
                ) from None
    finally:
        for log in logs:
            log.close()


async def test_projector_loses_nothing_when_the_server_is_killed_mid_burst(
    server: EmbeddedServer, cfg: HiveConfig, nc: Client, log_path: Path
) -> None:
    js = nc.jetstream()
    events = turn_events(cfg.hive, 5000)
    queue: asyncio.Queue[Event] = asyncio.Queue()
    for e in events:
        queue.put_nowait(e)
    stored = 0

    async def publisher() -> None:
        nonlocal stored
        while not queue.empty():
            await publish_until_stored(js, queue.get_nowait())
            stored += 1

    async with running(run_projector(cfg, log_path)) as projector:
        publishers = [asyncio.ensure_future(publisher()) for _ in range(8)]
        try:
            await wait_until(
                lambda: stored >= len(events) // 3, what="a third of the burst to be stored"
            )
            await wait_until(
                lambda: db_position(log_path) > 0, what="the projector to be projecting"
            )
            server.kill()
            server.start()  # on this thread: the server dies with the thread that forked it
            await asyncio.wait_for(asyncio.gather(*publishers), 30)
        finally:
            for p in publishers:
                p.cancel()
        await _caught_up(log_path, await stream_last_seq(js, cfg.hive), projector, timeout=12)

    await _assert_exactly_once(nc, log_path, cfg.hive, events)


def _start_projector(cfg: HiveConfig, stderr: Path) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).parent / "hyperhive"
    env = cfg_env(cfg) | {"HYPERHIVE_LOG_LEVEL": "info"}
    with open(stderr, "ab") as err:
        return subprocess.Popen(
            [str(script), "projector"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def test_projector_process_killed_mid_backlog_resumes_exactly_once(
    cfg: HiveConfig, nc: Client, log_path: Path, tmp_path: Path
) -> None:
    js = nc.jetstream()
    events = turn_events(cfg.hive, 6000)
    await publish_many(js, events, window=256)
    stderr = tmp_path / "projector.stderr"
    kills: list[int] = []
    proc = None
    try:
        for _ in range(2):
            before = db_position(log_path)
            proc = _start_projector(cfg, stderr)

            def wrote_or_exited(p: subprocess.Popen[bytes] = proc, b: int = before) -> bool:
                return db_position(log_path) > b or p.poll() is not None

            await wait_until(
                wrote_or_exited,
                timeout=20,
                interval=0.002,
                what="the projector process to write a batch",
            )
            assert proc.poll() is None, f"projector exited {proc.returncode}:\n{_tail(stderr)}"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills.append(db_position(log_path))
        assert kills[0] < len(events), "killed too late to be mid-backlog"

        proc = _start_projector(cfg, stderr)
        try:
            await _caught_up(log_path, len(events), timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_tail(stderr)}") from None
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0, _tail(stderr)
    finally:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    await _assert_exactly_once(nc, log_path, cfg.hive, events)
