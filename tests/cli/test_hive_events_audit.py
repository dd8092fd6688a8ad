"""`hive-events` as an audit tool: it shows what was stored, as stored, and never harms the log.

Regression tests for the probe's D6 (a message without `id` or `ts` read
differently each time, so `verify` cried tamper), D7 (`export --output` onto the
log it reads emptied it), D12 (`tail` skipped a message on a 4-token subject)
and D13 (`-o json` and `export` dropped fields this build does not know).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client

from hyperhive.config import HiveConfig
from hyperhive.events import encode_event
from tests.cli.test_hive_events_helpers import (  # noqa: F401 - drop_streams is a fixture
    cli,
    drop_streams,
    ok_json,
    ok_lines,
    publish_raw,
    started,
)

pytestmark = [pytest.mark.nats, pytest.mark.usefixtures("drop_streams")]


def wire(hive: str, **changes: object) -> dict[str, object]:
    data: dict[str, object] = msgspec.json.decode(encode_event(started(hive)))
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


async def replay(cfg: HiveConfig, path: Path) -> None:
    ok_lines(await cli(cfg, "replay", "--output", str(path)))


async def test_a_log_holding_events_without_id_or_ts_verifies_and_reads_the_same_twice(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    js, h = nc.jetstream(), cfg.hive
    subject = f"hive.{h}.evt.alice.turn.started"
    await publish_raw(js, h, subject, msgspec.json.encode(wire(h, id=...)))
    await publish_raw(js, h, subject, msgspec.json.encode(wire(h, ts=...)))
    await publish_raw(
        js, h, f"hive.{h}.evt.alice.future.thing", b'{"kind":"future.thing","hive":"x"}'
    )
    path = tmp_path / "log.sqlite"
    await replay(cfg, path)

    (line,) = ok_lines(await cli(cfg, "verify", "--log", str(path)))
    assert line.startswith("ok: 3 rows")
    first = ok_json(await cli(cfg, "export", "--log", str(path)))
    second = ok_json(await cli(cfg, "export", "--log", str(path)))
    assert first == second
    assert all(row.get("error") for row in first), first


async def test_export_refuses_to_write_over_the_log_it_reads(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    js, h = nc.jetstream(), cfg.hive
    await publish_raw(js, h, f"hive.{h}.evt.alice.turn.started", encode_event(started(h)))
    path = tmp_path / "log.sqlite"
    await replay(cfg, path)
    size = path.stat().st_size

    for target in (path, tmp_path / "." / "log.sqlite", Path(f"{path}-wal")):
        result = await cli(cfg, "export", "--log", str(path), "--output", str(target))
        assert result.exit_code == 1
        (err,) = result.stderr.splitlines()
        assert "is the event log being exported" in err
    assert path.stat().st_size == size
    assert ok_lines(await cli(cfg, "verify", "--log", str(path)))[0].startswith("ok: 1 rows")


async def test_export_to_a_file_is_whole_and_matches_stdout(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    js, h = nc.jetstream(), cfg.hive
    for i in range(5):
        await publish_raw(js, h, f"hive.{h}.evt.alice.turn.started", encode_event(started(h, n=i)))
    path = tmp_path / "log.sqlite"
    await replay(cfg, path)
    out = tmp_path / "out.ndjson"
    result = await cli(cfg, "export", "--log", str(path), "--output", str(out))
    assert result.exit_code == 0, result.output
    stdout = ok_json(await cli(cfg, "export", "--log", str(path)))
    assert [json.loads(line) for line in out.read_text().splitlines()] == stdout
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".out.ndjson.")]
    assert not leftovers, "a temp file was left behind"


async def test_tail_shows_a_message_on_a_four_token_subject(cfg: HiveConfig, nc: Client) -> None:
    js, h = nc.jetstream(), cfg.hive
    await publish_raw(js, h, f"hive.{h}.evt.alice.turn.started", encode_event(started(h)))
    odd = await publish_raw(js, h, f"hive.{h}.evt.alice", b'{"kind":"turn.started"}')
    rows = ok_json(await cli(cfg, "tail", "-n", "10", "-o", "json"))
    assert [r["seq"] for r in rows] == [1, odd]
    assert rows[1]["error"]
    text = ok_lines(await cli(cfg, "tail", "-n", "10"))
    assert len(text) == 2
    assert "malformed" in text[1]


@pytest.mark.parametrize("command", ["tail", "export"])
async def test_json_output_keeps_fields_this_build_does_not_know(
    cfg: HiveConfig, nc: Client, tmp_path: Path, command: str
) -> None:
    js, h = nc.jetstream(), cfg.hive
    newer = wire(h, multi=True, later_field={"nested": [1, 2]})
    await publish_raw(js, h, f"hive.{h}.evt.alice.turn.started", msgspec.json.encode(newer))
    if command == "tail":
        (row,) = ok_json(await cli(cfg, "tail", "-o", "json"))
    else:
        path = tmp_path / "log.sqlite"
        await replay(cfg, path)
        (row,) = ok_json(await cli(cfg, "export", "--log", str(path)))
    assert row["multi"] is True
    assert row["later_field"] == {"nested": [1, 2]}
    assert {k: row[k] for k in newer} == newer


def still_a_device(path: str) -> bool:
    return stat.S_ISCHR(os.stat(path).st_mode)


async def test_export_writes_through_to_a_device_instead_of_replacing_it(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    js, h = nc.jetstream(), cfg.hive
    await publish_raw(js, h, f"hive.{h}.evt.alice.turn.started", encode_event(started(h)))
    path = tmp_path / "log.sqlite"
    await replay(cfg, path)
    link = tmp_path / "to-null"
    link.symlink_to(os.devnull)
    result = await cli(cfg, "export", "--log", str(path), "--output", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert still_a_device(os.devnull)


async def test_tail_since_a_time_past_any_event_prints_nothing(cfg: HiveConfig, nc: Client) -> None:
    js, h = nc.jetstream(), cfg.hive
    await publish_raw(js, h, f"hive.{h}.evt.alice.turn.started", encode_event(started(h)))
    for since in ("2099-01-01T00:00:00Z", "2300-01-01T00:00:00Z", "9999-12-31T00:00:00Z"):
        assert ok_lines(await cli(cfg, "tail", "--since", since)) == [], since
