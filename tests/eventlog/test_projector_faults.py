"""The projector against hostile events and broken disks: it logs, waits and goes on.

Regression tests for the faults a probe found: one malformed event took the whole
hive down (D1), a deleted durable stopped projection for good (D2), a full disk
made the projector exit (D3).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client

from hyperhive.bus import subjects
from hyperhive.config import HiveConfig
from hyperhive.eventlog.projector import project, run_projector
from hyperhive.eventlog.store import EventLog
from hyperhive.events import MessageSent, encode_event
from tests.helpers import (
    db_position,
    publish_many,
    publish_raw,
    running,
    stream_last_seq,
    turn_events,
    turn_started,
    wait_until,
)

pytestmark = pytest.mark.nats

OVERFLOW_TS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


def rows(path: Path, hive: str) -> list[tuple[int, str | None, str | None]]:
    log = EventLog(path, hive, readonly=True)
    try:
        return [(r.seq, r.kind, r.error) for r in log.rows()]
    finally:
        log.close()


def event_json(hive: str, agent: str, **changes: object) -> bytes:
    data = msgspec.json.decode(encode_event(turn_started(hive, agent)))
    data.update(changes)
    return msgspec.json.encode(data)


async def test_events_that_crashed_the_hive_are_rows_with_an_error_and_projection_goes_on(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    # Published here as admin; an agent may publish the same on its own turn subjects
    # (tests/bus/test_permissions.py), which is how it took the hive down.
    js = nc.jetstream()
    subject = subjects.event_subject(cfg.hive, "alice", "turn.started")
    for ts in OVERFLOW_TS:
        await publish_raw(js, cfg.hive, subject, event_json(cfg.hive, "alice", ts=ts))
    nested = b'{"kind":"turn.started","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    await publish_raw(js, cfg.hive, subject, nested)
    without_id = msgspec.json.decode(event_json(cfg.hive, "alice"))
    del without_id["id"]
    await publish_raw(js, cfg.hive, subject, msgspec.json.encode(without_id))
    good = turn_events(cfg.hive, 3, agents=["alice"])
    await publish_many(js, good)
    last = await stream_last_seq(js, cfg.hive)
    path = tmp_path / "events.sqlite"

    async with running(project(cfg, EventLog(path, cfg.hive))) as task:
        await wait_until(
            lambda: task.done() or db_position(path) >= last, what="the log to catch up"
        )
        assert not task.done(), "the projector stopped"

    got = rows(path, cfg.hive)
    assert [seq for seq, _, _ in got] == list(range(1, last + 1))
    bad = [(seq, err) for seq, _, err in got[:4]]
    assert all(err for _, err in bad), bad
    assert "out of range" in (bad[0][1] or "")
    assert "nested too deeply" in (bad[2][1] or "")
    assert "`id`" in (bad[3][1] or "")
    assert [kind for _, kind, err in got[4:] if err is None] == ["turn.started"] * 3


async def test_a_deleted_durable_is_recreated_from_the_logs_position(
    cfg: HiveConfig, nc: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    js = nc.jetstream()
    await publish_many(js, turn_events(cfg.hive, 10))
    path = tmp_path / "events.sqlite"
    caplog.set_level(logging.WARNING, logger="hyperhive.bus")
    async with running(project(cfg, EventLog(path, cfg.hive))) as task:
        await wait_until(lambda: db_position(path) >= 10, what="the first ten projected")
        await js.delete_consumer(subjects.stream_name(cfg.hive), subjects.PROJECTOR_DURABLE)
        later = turn_events(cfg.hive, 10)
        await publish_many(js, later)
        last = await stream_last_seq(js, cfg.hive)
        await wait_until(
            lambda: task.done() or db_position(path) >= last,
            what="events published after the durable was deleted to be projected",
        )
        assert not task.done()
    assert any("vanished" in r.getMessage() for r in caplog.records)
    assert [seq for seq, _, err in rows(path, cfg.hive) if err is None] == list(range(1, last + 1))


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs for the event log (root only: mounting needs it)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (the CI runs as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_a_full_disk_is_waited_out_and_nothing_is_lost(
    cfg: HiveConfig, nc: Client, tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    js = nc.jetstream()
    path = tiny_disk / "events.sqlite"
    caplog.set_level(logging.WARNING, logger="hyperhive.projector")
    body = "x" * 60_000
    big = [
        MessageSent(
            hive=cfg.hive,
            agent="alice",
            source="c0re",
            msg_id=f"m{i}",
            from_="alice",
            to="bob",
            body=body,
        )
        for i in range(20)
    ]
    async with running(run_projector(cfg, path)) as task:
        await publish_many(js, big, window=4)
        await wait_until(
            lambda: (
                task.done()
                or any("cannot write the event log" in r.getMessage() for r in caplog.records)
            ),
            what="the projector to report the full disk",
        )
        assert not task.done(), "the projector exited on a full disk"
        remount = ["mount", "-o", "remount,size=64m", str(tiny_disk)]
        await asyncio.to_thread(subprocess.run, remount, check=True)
        last = await stream_last_seq(js, cfg.hive)
        await wait_until(
            lambda: task.done() or db_position(path) >= last,
            timeout=30,
            what="the log to catch up once there is room",
        )
        assert not task.done()
    ids = {r[0] for r in rows(path, cfg.hive)}
    assert ids == set(range(1, last + 1))
