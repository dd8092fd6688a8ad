"""`hive-events tail`, in-process: exactly the last N, filters, starts, formats, many hives."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client

from hyperhive.bus import subjects
from hyperhive.bus.publish import publish_event
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig
from hyperhive.events import Event, HiveStarted, encode_event
from hyperhive.timefmt import format_ts
from tests.cli.test_hive_events_helpers import (  # noqa: F401 - drop_streams is a fixture
    agent_started,
    cli,
    drop_streams,
    failed,
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


async def test_tail_prints_exactly_the_last_ten_by_default(cfg: HiveConfig, nc: Client) -> None:
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(25)])
    rows = ok_json(await cli(cfg, "tail", "-o", "json"))
    assert turn_ids(rows) == [f"t{i}" for i in range(15, 25)]


async def test_tail_n_prints_exactly_the_last_n_of_one_agent(cfg: HiveConfig, nc: Client) -> None:
    events: list[Event] = [started(cfg.hive, ("alice", "bob")[i % 2], i) for i in range(40)]
    await publish(nc.jetstream(), events)
    rows = ok_json(await cli(cfg, "tail", "-n", "7", "--agent", "bob", "-o", "json"))
    assert turn_ids(rows) == [f"t{i}" for i in range(27, 40, 2)]
    assert {r["agent"] for r in rows} == {"bob"}


async def test_tail_finds_rare_matches_far_back_when_the_kind_glob_runs_client_side(
    cfg: HiveConfig, nc: Client
) -> None:
    # `turn.fin*` can't be a NATS subject filter: every window is read and matched
    # here, and the three matches sit behind 700 non-matching events.
    early = [finished(cfg.hive, n=i) for i in range(3)]
    await publish(nc.jetstream(), [*early, *(started(cfg.hive, n=i) for i in range(700))])
    rows = ok_json(await cli(cfg, "tail", "-n", "3", "--kind", "turn.fin*", "-o", "json"))
    assert turn_ids(rows) == ["t0", "t1", "t2"]
    rows = ok_json(await cli(cfg, "tail", "-n", "2", "--kind", "turn.fin*", "-o", "json"))
    assert turn_ids(rows) == ["t1", "t2"]
    rows = ok_json(await cli(cfg, "tail", "-n", "50", "--kind", "turn.fin*", "-o", "json"))
    assert turn_ids(rows) == ["t0", "t1", "t2"], "the stream's start ends the search"


async def test_kind_glob_selects_a_family_and_repeats_add_up(cfg: HiveConfig, nc: Client) -> None:
    h = cfg.hive
    await publish(
        nc.jetstream(),
        [
            agent_started(h),
            started(h, n=1),
            message(h, "alice", "bob"),
            finished(h, n=1),
            failed(h, n=2),
            HiveStarted(hive=h, source="c0re", service="c0re", version="1"),
        ],
    )
    rows = ok_json(await cli(cfg, "tail", "--kind", "turn.*", "-o", "json"))
    assert [r["kind"] for r in rows] == ["turn.started", "turn.finished", "turn.failed"]
    rows = ok_json(
        await cli(cfg, "tail", "--kind", "agent.*", "--kind", "turn.failed", "-o", "json")
    )
    assert [r["kind"] for r in rows] == ["agent.started", "turn.failed"]
    rows = ok_json(await cli(cfg, "tail", "--kind", "message.sent", "-o", "json"))
    assert [r["kind"] for r in rows] == ["message.sent"]
    rows = ok_json(await cli(cfg, "tail", "--agent", "_", "-o", "json"))
    assert [r["kind"] for r in rows] == ["hive.started"]


async def test_repeated_agent_flags_select_each_of_them(cfg: HiveConfig, nc: Client) -> None:
    names = ["alice", "bob", "carol"]
    await publish(nc.jetstream(), [started(cfg.hive, names[i % 3], i) for i in range(9)])
    rows = ok_json(await cli(cfg, "tail", "--agent", "alice", "--agent", "carol", "-o", "json"))
    assert turn_ids(rows) == ["t0", "t2", "t3", "t5", "t6", "t8"]


async def test_a_message_shows_for_its_sender_and_its_recipient(
    cfg: HiveConfig, nc: Client
) -> None:
    h = cfg.hive
    await publish(nc.jetstream(), [message(h, "alice", "bob", n=1), started(h, "carol", 2)])
    for agent in ("alice", "bob"):
        rows = ok_json(await cli(cfg, "tail", "--agent", agent, "-o", "json"))
        assert [(r["kind"], r["from"], r["to"]) for r in rows] == [("message.sent", "alice", "bob")]
    rows = ok_json(await cli(cfg, "tail", "--agent", "carol", "-o", "json"))
    assert [r["kind"] for r in rows] == ["turn.started"]


async def test_since_a_duration_prints_everything_from_then_not_only_ten(
    cfg: HiveConfig, nc: Client
) -> None:
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(15)])
    rows = ok_json(await cli(cfg, "tail", "--since", "10m", "-o", "json"))
    assert turn_ids(rows) == [f"t{i}" for i in range(15)]
    rows = ok_json(await cli(cfg, "tail", "--since", "10m", "-n", "4", "-o", "json"))
    assert turn_ids(rows) == ["t11", "t12", "t13", "t14"], "an explicit -n keeps the last N"


async def test_since_a_timestamp_starts_at_that_time(cfg: HiveConfig, nc: Client) -> None:
    js = nc.jetstream()
    await publish(js, [started(cfg.hive, n=i) for i in range(5)])
    cut = datetime.now(UTC)
    await publish(js, [started(cfg.hive, n=i) for i in range(5, 8)])
    rows = ok_json(await cli(cfg, "tail", "--since", cut.isoformat(), "-o", "json"))
    assert turn_ids(rows) == ["t5", "t6", "t7"]


async def test_from_seq_prints_from_that_sequence(cfg: HiveConfig, nc: Client) -> None:
    seqs = await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(15)])
    rows = ok_json(await cli(cfg, "tail", "--from-seq", str(seqs[5]), "-o", "json"))
    assert [r["seq"] for r in rows] == seqs[5:]
    rows = ok_json(await cli(cfg, "tail", "--from-seq", str(seqs[5]), "-n", "3", "-o", "json"))
    assert [r["seq"] for r in rows] == seqs[12:]
    rows = ok_json(
        await cli(
            cfg, "tail", "--from-seq", str(seqs[5]), "-n", "30", "--agent", "alice", "-o", "json"
        )
    )
    assert [r["seq"] for r in rows] == seqs[5:], "-n larger than what is there: all of it"


def test_since_and_from_seq_together_is_a_usage_error(cfg: HiveConfig) -> None:
    result = run_cli(cfg, "tail", "--since", "10m", "--from-seq", "3")
    assert result.exit_code == 2
    assert "give one" in result.stderr


async def test_json_lines_are_ndjson_with_stable_wire_names(cfg: HiveConfig, nc: Client) -> None:
    h = cfg.hive
    events: list[Event] = [message(h, "alice", "bob", "hello\nworld"), finished(h, n=3)]
    seqs = await publish(nc.jetstream(), events)
    result = await cli(cfg, "tail", "-o", "json")
    lines = ok_lines(result)
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    msg, fin = rows
    common = {"kind", "id", "ts", "hive", "agent", "source", "v", "seq", "subject"}
    assert common <= set(msg)
    assert common <= set(fin)
    assert {"from", "to", "body", "msg_id"} <= set(msg)
    assert "from_" not in msg
    assert msg["body"] == "hello\nworld"
    assert (msg["seq"], msg["subject"]) == (seqs[0], subjects.inbox_subject(h, "bob"))
    assert (fin["seq"], fin["subject"]) == (
        seqs[1],
        subjects.event_subject(h, "alice", "turn.finished"),
    )
    assert fin["usage"]["input_tokens"] == 0
    assert [r["id"] for r in rows] == [e.id for e in events]
    assert datetime.fromisoformat(fin["ts"].replace("Z", "+00:00")) == events[1].ts


async def test_text_lines_show_time_agent_kind_and_key_fields(cfg: HiveConfig, nc: Client) -> None:
    h = cfg.hive
    fin = finished(h, "alice", 7)
    hive_wide = HiveStarted(hive=h, source="c0re", service="c0re", version="0.1")
    long_body = "word " * 100
    await publish(nc.jetstream(), [fin, hive_wide, message(h, "alice", "bob", long_body)])
    lines = ok_lines(await cli(cfg, "tail"))
    assert len(lines) == 3
    assert lines[0].startswith(format_ts(fin.ts) + "  alice ")
    assert "turn.finished" in lines[0]
    assert "turn_id=t7" in lines[0]
    assert "duration_ms=70" in lines[0]
    assert h not in lines[0], "one hive: no hive column"
    assert lines[1].split()[1:4] == ["_", "hive.started", "service=c0re"]
    assert "from=alice to=bob body=" in lines[2]
    assert len(lines[2]) < 200, "long strings are shortened"
    assert "…" in lines[2]


async def test_control_characters_in_events_never_reach_the_terminal(
    cfg: HiveConfig, nc: Client
) -> None:
    await publish(nc.jetstream(), [message(cfg.hive, "alice", "bob", "\x1b[2J\x1b]0;pwned\x07ok")])
    (line,) = ok_lines(await cli(cfg, "tail"))
    assert "\x1b" not in line
    assert "\x07" not in line
    assert "\\x1b[2J" in line


async def test_count_stops_after_n_events_of_the_backlog(cfg: HiveConfig, nc: Client) -> None:
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(10)])
    rows = ok_json(await cli(cfg, "tail", "--count", "4", "-o", "json"))
    assert turn_ids(rows) == ["t0", "t1", "t2", "t3"]
    rows = ok_json(await cli(cfg, "tail", "-n", "3", "--count", "10", "-o", "json"))
    assert turn_ids(rows) == ["t7", "t8", "t9"]


async def test_n_zero_prints_nothing_and_exits(cfg: HiveConfig, nc: Client) -> None:
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(3)])
    assert ok_lines(await cli(cfg, "tail", "-n", "0")) == []


async def test_all_hives_are_read_and_merged_by_time(cfg: HiveConfig, nc: Client) -> None:
    js = nc.jetstream()
    other = cfg.hive + "-b"
    await ensure_stream(js, other, cfg.stream)
    # Agent names no other test uses, so other hives on the server don't match.
    a, b = "x" + cfg.hive, "y" + cfg.hive
    events: list[Event] = []
    for i in range(6):
        events.append(started(cfg.hive, a, i) if i % 2 == 0 else started(other, b, i))
    for e in events:
        await publish_event(js, e)
    rows = ok_json(await cli(cfg, "tail", "--hive", "*", "--agent", a, "--agent", b, "-o", "json"))
    assert [(r["hive"], r["turn_id"]) for r in rows] == [
        (e.hive, f"t{i}") for i, e in enumerate(events)
    ]
    rows = ok_json(
        await cli(cfg, "tail", "--hive", "*", "--agent", a, "--agent", b, "-n", "3", "-o", "json")
    )
    assert turn_ids(rows) == ["t3", "t4", "t5"]
    lines = ok_lines(await cli(cfg, "tail", "--hive", "*", "--agent", b))
    assert len(lines) == 3
    assert all(line.split()[1:3] == [other, b] for line in lines), "the hive is the second column"


async def test_a_malformed_message_is_shown_and_reading_goes_on(
    cfg: HiveConfig, nc: Client
) -> None:
    h, js = cfg.hive, nc.jetstream()
    await publish(js, [started(h, "bob", 1)])
    bad = await publish_raw(js, h, f"hive.{h}.evt.bob.turn.started", b"\xff not json {")
    # A valid event on the wrong subject is as malformed as bad bytes.
    liar = await publish_raw(
        js, h, f"hive.{h}.evt.carol.turn.started", encode_event(started(h, "bob", 9))
    )
    await publish(js, [started(h, "bob", 2)])
    lines = ok_lines(await cli(cfg, "tail"))
    assert len(lines) == 4
    assert "turn_id=t1" in lines[0]
    assert "turn_id=t2" in lines[3]
    assert "! malformed" in lines[1]
    assert f"seq={bad}" in lines[1]
    assert "reason=" in lines[1]
    assert "! malformed" in lines[2]
    assert f"seq={liar}" in lines[2]
    rows = ok_json(await cli(cfg, "tail", "-o", "json"))
    assert rows[1]["seq"] == bad
    assert rows[1]["error"]
    assert rows[1]["agent"] == "bob"
    rows = ok_json(await cli(cfg, "tail", "--agent", "carol", "-o", "json"))
    assert [r["seq"] for r in rows] == [liar], "a malformed message is filtered by its subject"


async def test_an_event_on_a_subject_that_contradicts_it_is_malformed(
    cfg: HiveConfig, nc: Client
) -> None:
    h, js = cfg.hive, nc.jetstream()
    seq = await publish_raw(
        js, h, f"hive.{h}.evt.carol.turn.started", encode_event(started(h, "bob"))
    )
    (row,) = ok_json(await cli(cfg, "tail", "-o", "json"))
    assert row["seq"] == seq
    assert "agent" in row["error"]


async def test_an_unknown_kind_is_shown_with_its_data(cfg: HiveConfig, nc: Client) -> None:
    subject, data = unknown_kind(cfg.hive)
    await publish_raw(nc.jetstream(), cfg.hive, subject, data)
    (line,) = ok_lines(await cli(cfg, "tail"))
    assert "bob" in line
    assert "future.thing (unknown)" in line
    assert "ultraviolet" in line
    (row,) = ok_json(await cli(cfg, "tail", "-o", "json"))
    assert (row["kind"], row["colour"], row["raw_reason"]) == (
        "future.thing",
        "ultraviolet",
        "unknown kind",
    )
    assert ok_json(await cli(cfg, "tail", "--kind", "future.*", "-o", "json")) == [row]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--agent", "../x"], "invalid agent name"),
        (["--agent", "Alice"], "invalid agent name"),
        (["--hive", "a>b"], "invalid hive name"),
        (["--hive", "../etc"], "invalid hive name"),
        (["--kind", "turn started"], "invalid kind pattern"),
        (["--since", "yesterday-ish"], "invalid time"),
    ],
)
def test_hostile_or_bad_input_is_refused_with_one_line(
    cfg: HiveConfig, args: list[str], words: str
) -> None:
    result = run_cli(cfg, "tail", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert words in line


def test_no_server_exits_1_saying_how_to_start_one(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hyperhive.cli.hive_events import main

    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(HYPERHIVE_STATE_DIR=str(tmp_path / "state"), HYPERHIVE_CONFIG=os.devnull)
    result = CliRunner().invoke(main, ["tail"], env=env)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "hyperhive up" in line
    assert "--nats" in line


def test_a_hive_without_a_stream_is_refused_naming_it(cfg: HiveConfig) -> None:
    result = run_cli(cfg, "tail")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert cfg.hive in line
    assert subjects.stream_name(cfg.hive) in line
