"""`hive-events replay / export / verify / stats`: the sqlite event log, rebuilt and checked."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import api as js_api

from hyperhive.bus import subjects
from hyperhive.bus.consume import PullConsumer
from hyperhive.config import HiveConfig
from hyperhive.eventlog.projector import DURABLE, eventlog_path
from hyperhive.eventlog.store import GENESIS, EventLog, chain_hash
from hyperhive.events import Event, HiveStarted
from tests.cli.test_hive_events_helpers import (  # noqa: F401 - drop_streams is a fixture
    cli,
    drop_streams,
    finished,
    message,
    ok_json,
    ok_lines,
    publish,
    publish_raw,
    run_cli,
    started,
    turn_ids,
    unknown_kind,
)

pytestmark = [pytest.mark.nats, pytest.mark.usefixtures("drop_streams")]


async def publish_mixture(cfg: HiveConfig, nc: Client) -> list[int]:
    """3 turn.started + 2 turn.finished of alice, a message bob->alice, a hive-wide
    event, an unknown kind and a malformed message: 9 stream messages."""
    h, js = cfg.hive, nc.jetstream()
    events: list[Event] = [started(h, "alice", i) for i in range(3)]
    events += [finished(h, "alice", i) for i in range(2)]
    events += [
        message(h, "bob", "alice", "hello"),
        HiveStarted(hive=h, source="c0re", service="c0re", version="1"),
    ]
    seqs = await publish(js, events)
    subject, data = unknown_kind(h)
    seqs.append(await publish_raw(js, h, subject, data))
    seqs.append(await publish_raw(js, h, f"hive.{h}.evt.bob.turn.started", b"{broken"))
    return seqs


def dump(path: Path, hive: str) -> str:
    log = EventLog(path, hive, readonly=True)
    try:
        return "\n".join(log.dump())
    finally:
        log.close()


def replay_ok(cfg: HiveConfig, path: Path) -> str:
    (line,) = ok_lines(run_cli(cfg, "replay", "--output", str(path)))
    return line


# ---------------------------------------------------------------- replay


async def test_replaying_twice_into_fresh_files_gives_identical_tables(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    await publish_mixture(cfg, nc)
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    first = await cli(cfg, "replay", "--output", str(a))
    assert first.exit_code == 0, first.stderr
    assert "replayed 9 events (seq 1..9)" in first.stdout
    assert "1 kept with an error" in first.stdout
    assert (await cli(cfg, "replay", "--output", str(b))).exit_code == 0
    assert dump(a, cfg.hive) == dump(b, cfg.hive)
    assert "hash" in dump(a, cfg.hive)


async def test_replay_resumes_from_the_logs_position_and_is_idempotent(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    h, js = cfg.hive, nc.jetstream()
    await publish(js, [started(h, n=i) for i in range(10)])
    path, fresh = tmp_path / "log.sqlite", tmp_path / "fresh.sqlite"
    assert "replayed 10 events (seq 1..10)" in await _replay(cfg, path)
    await publish(js, [started(h, n=i) for i in range(10, 15)])
    assert "replayed 5 events (seq 11..15)" in await _replay(cfg, path)
    again = await _replay(cfg, path)
    assert "replayed 0 events (nothing new)" in again
    assert "position 15 of 15" in again
    await _replay(cfg, fresh)
    assert dump(path, h) == dump(fresh, h)


async def _replay(cfg: HiveConfig, path: Path) -> str:
    result = await cli(cfg, "replay", "--output", str(path))
    assert result.exit_code == 0, result.stderr
    return result.stdout


async def test_replay_writes_the_state_dirs_event_log_by_default(
    cfg: HiveConfig, nc: Client
) -> None:
    await publish(nc.jetstream(), [started(cfg.hive)])
    result = await cli(cfg, "replay")
    assert result.exit_code == 0, result.stderr
    log = EventLog(eventlog_path(cfg), cfg.hive, readonly=True)
    try:
        assert (log.count(), log.position()) == (1, 1)
    finally:
        log.close()


def test_replay_refuses_all_hives(cfg: HiveConfig, tmp_path: Path) -> None:
    result = run_cli(cfg, "replay", "--hive", "*", "--output", str(tmp_path / "x.sqlite"))
    assert result.exit_code == 1
    assert "one hive at a time" in result.stderr


async def test_replay_refuses_a_log_of_another_hive(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    path = tmp_path / "log.sqlite"
    EventLog(path, "someone-else").close()
    await publish(nc.jetstream(), [started(cfg.hive)])
    result = await cli(cfg, "replay", "--output", str(path))
    assert result.exit_code == 1
    assert "someone-else" in result.stderr


# ---------------------------------------------------------------- export


async def test_export_writes_every_row_including_malformed_ones(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    seqs = await publish_mixture(cfg, nc)
    path = tmp_path / "log.sqlite"
    await _replay(cfg, path)
    rows = ok_json(await cli(cfg, "export", "--log", str(path)))
    assert [r["seq"] for r in rows] == seqs
    bad = rows[-1]
    assert bad["error"]
    assert bad["raw"] == "{broken"
    assert bad["subject"] == f"hive.{cfg.hive}.evt.bob.turn.started"
    assert rows[7]["kind"] == "future.thing"
    assert rows[5]["from"] == "bob"
    assert all("error" not in r for r in rows[:-1])


async def test_export_filters_like_tail(cfg: HiveConfig, nc: Client, tmp_path: Path) -> None:
    seqs = await publish_mixture(cfg, nc)
    path = tmp_path / "log.sqlite"
    await _replay(cfg, path)
    log = ["--log", str(path)]
    rows = ok_json(await cli(cfg, "export", *log, "--kind", "turn.*"))
    assert [r["seq"] for r in rows] == [*seqs[:5], seqs[8]], "malformed: judged by its subject"
    rows = ok_json(await cli(cfg, "export", *log, "--kind", "turn.fin*"))
    assert turn_ids(rows) == ["t0", "t1"]
    rows = ok_json(await cli(cfg, "export", *log, "--agent", "alice", "--kind", "message.*"))
    assert [(r["from"], r["to"]) for r in rows] == [("bob", "alice")]
    rows = ok_json(await cli(cfg, "export", *log, "--agent", "_"))
    assert [r["kind"] for r in rows] == ["hive.started"]
    rows = ok_json(await cli(cfg, "export", *log, "--from-seq", str(seqs[6])))
    assert [r["seq"] for r in rows] == seqs[6:]


async def test_export_since_starts_at_the_first_event_stamped_then(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    js = nc.jetstream()
    await publish(js, [started(cfg.hive, n=i) for i in range(3)])
    cut = datetime.now(UTC)
    await publish(js, [started(cfg.hive, n=i) for i in range(3, 5)])
    path = tmp_path / "log.sqlite"
    await _replay(cfg, path)
    rows = ok_json(await cli(cfg, "export", "--log", str(path), "--since", cut.isoformat()))
    assert turn_ids(rows) == ["t3", "t4"]
    assert ok_lines(await cli(cfg, "export", "--log", str(path), "--since", "0s")) == []


async def test_export_to_a_file_matches_stdout(cfg: HiveConfig, nc: Client, tmp_path: Path) -> None:
    await publish_mixture(cfg, nc)
    path, out = tmp_path / "log.sqlite", tmp_path / "out.ndjson"
    await _replay(cfg, path)
    to_stdout = await cli(cfg, "export", "--log", str(path))
    to_file = await cli(cfg, "export", "--log", str(path), "--output", str(out))
    assert to_file.exit_code == 0, to_file.stderr
    assert out.read_text(encoding="utf-8") == to_stdout.stdout
    assert "exported 9 events" in to_file.stderr
    assert all(json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())


def test_export_without_a_log_says_how_to_make_one(cfg: HiveConfig, tmp_path: Path) -> None:
    result = run_cli(cfg, "export", "--log", str(tmp_path / "nothing.sqlite"))
    assert result.exit_code == 1
    assert "hive-events replay" in result.stderr


# ---------------------------------------------------------------- verify


async def replayed_log(cfg: HiveConfig, nc: Client, tmp_path: Path, n: int = 6) -> Path:
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(n)])
    path = tmp_path / "log.sqlite"
    await _replay(cfg, path)
    return path


def tamper(path: Path, *sql: tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            for statement, args in sql:
                conn.execute(statement, args)
    finally:
        conn.close()


async def verify(cfg: HiveConfig, path: Path, *extra: str) -> tuple[int, str, str]:
    result = await cli(cfg, "verify", "--log", str(path), *extra)
    return result.exit_code, result.stdout, result.stderr


async def test_verify_passes_on_a_good_log(cfg: HiveConfig, nc: Client, tmp_path: Path) -> None:
    path = await replayed_log(cfg, nc, tmp_path)
    code, out, err = await verify(cfg, path)
    assert (code, err) == (0, "")
    assert "ok: 6 rows (seq 1..6), hash chain intact; 6 agree with the stream" in out
    code, out, _ = await verify(cfg, path, "--no-stream")
    assert code == 0
    assert "stream" not in out


async def test_verify_names_the_seq_of_an_edited_row(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    path = await replayed_log(cfg, nc, tmp_path)
    raw = sqlite3.connect(path).execute("SELECT raw FROM events WHERE seq=3").fetchone()[0]
    tamper(path, ("UPDATE events SET raw=? WHERE seq=3", (bytes(raw).replace(b"t2", b"t9"),)))
    code, out, err = await verify(cfg, path, "--no-stream")
    assert (code, out) == (1, "")
    assert err.startswith("error: seq 3: ")
    assert len(err.splitlines()) == 1


async def test_verify_names_the_seq_of_an_edited_column(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    path = await replayed_log(cfg, nc, tmp_path)
    tamper(path, ("UPDATE events SET agent='mallory' WHERE seq=4", ()))
    code, _, err = await verify(cfg, path)
    assert code == 1
    assert err.startswith("error: seq 4: ")


async def test_verify_names_the_seq_of_a_deleted_row(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    path = await replayed_log(cfg, nc, tmp_path)
    tamper(path, ("DELETE FROM events WHERE seq=3", ()))
    code, _, err = await verify(cfg, path, "--no-stream")
    assert code == 1
    assert err.startswith("error: seq 3: ")
    assert "missing" in err


async def test_verify_names_the_seq_of_a_deleted_last_row(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    path = await replayed_log(cfg, nc, tmp_path)
    tamper(path, ("DELETE FROM events WHERE seq=6", ()))
    code, _, err = await verify(cfg, path, "--no-stream")
    assert code == 1
    assert err.startswith("error: seq 6: ")


async def test_verify_names_the_seq_of_two_swapped_rows(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    path = await replayed_log(cfg, nc, tmp_path)
    cols = "id, ts, hive, agent, kind, subject, raw, error, hash"
    conn = sqlite3.connect(path)
    r3 = conn.execute(f"SELECT {cols} FROM events WHERE seq=3").fetchone()
    r4 = conn.execute(f"SELECT {cols} FROM events WHERE seq=4").fetchone()
    conn.close()
    tamper(
        path,
        ("DELETE FROM events WHERE seq IN (3, 4)", ()),
        (f"INSERT INTO events (seq, {cols}) VALUES (3, ?, ?, ?, ?, ?, ?, ?, ?, ?)", r4),
        (f"INSERT INTO events (seq, {cols}) VALUES (4, ?, ?, ?, ?, ?, ?, ?, ?, ?)", r3),
    )
    code, _, err = await verify(cfg, path, "--no-stream")
    assert code == 1
    assert err.startswith("error: seq 3: ")


async def test_verify_catches_a_rewritten_chain_by_comparing_with_the_stream(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    path = await replayed_log(cfg, nc, tmp_path)
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT seq, subject, raw FROM events ORDER BY seq").fetchall()
    conn.close()
    # An attacker who rewrites row 2 and recomputes every hash after it.
    prev, updates = GENESIS, []
    for seq, subject, raw in rows:
        data = bytes(raw).replace(b'"t1"', b'"tX"') if seq == 2 else bytes(raw)
        prev = chain_hash(prev, seq, subject, data)
        updates.append(("UPDATE events SET raw=?, hash=? WHERE seq=?", (data, prev, seq)))
    tamper(path, *updates)
    code, _, _ = await verify(cfg, path, "--no-stream")
    assert code == 0, "the chain alone is consistent again"
    code, _, err = await verify(cfg, path)
    assert code == 1
    assert err.startswith("error: seq 2: ")
    assert "stream" in err


def test_verify_without_a_log_says_how_to_make_one(cfg: HiveConfig, tmp_path: Path) -> None:
    result = run_cli(cfg, "verify", "--log", str(tmp_path / "nothing.sqlite"), "--no-stream")
    assert result.exit_code == 1
    assert "hive-events replay" in result.stderr


# ---------------------------------------------------------------- stats


async def test_stats_counts_match_what_was_published(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    await publish_mixture(cfg, nc)
    path = tmp_path / "log.sqlite"
    await _replay(cfg, path)
    (s,) = ok_json(await cli(cfg, "stats", "--log", str(path), "-o", "json"))
    log = s["log"]
    assert log["by_kind"] == {
        "future.thing": 1,
        "hive.started": 1,
        "message.sent": 1,
        "turn.finished": 2,
        "turn.started": 3,
    }
    assert log["by_agent"] == {"_": 1, "alice": 5, "bob": 2}
    assert (log["rows"], log["malformed"], log["position"]) == (9, 1, 9)
    assert log["first_ts"] <= log["last_ts"]
    assert s["stream"]["messages"] == 9
    assert (s["stream"]["first_seq"], s["stream"]["last_seq"]) == (1, 9)
    assert s["lag"] == 0
    assert s["projector"] is None
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(2)])
    (s,) = ok_json(await cli(cfg, "stats", "--log", str(path), "-o", "json"))
    assert s["lag"] == 2


async def test_stats_reports_the_projector_consumers_backlog(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(4)])
    stream = subjects.stream_name(cfg.hive)
    await PullConsumer(nc, stream, DURABLE, ack_policy=js_api.AckPolicy.ALL).ensure()
    (s,) = ok_json(await cli(cfg, "stats", "-o", "json"))
    assert s["projector"] == {"name": DURABLE, "num_pending": 4, "num_ack_pending": 0}
    assert s["log"] is None
    assert s["lag"] is None
    text = "\n".join(ok_lines(await cli(cfg, "stats")))
    assert f"projector   {DURABLE}: 4 pending" in text
    assert "event log   none yet" in text


async def test_stats_text_lists_counts_per_kind_and_agent(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    await publish_mixture(cfg, nc)
    path = tmp_path / "log.sqlite"
    await _replay(cfg, path)
    lines = ok_lines(await cli(cfg, "stats", "--log", str(path)))
    assert f"stream      {subjects.stream_name(cfg.hive)}: 9 messages" in "\n".join(lines)
    assert lines.index("by kind") < lines.index("  turn.started   3")
    assert "  alice  5" in lines
    assert "lag         0 (stream last seq - log position)" in lines
