"""The live stream over HTTP: one update per event with the stream sequence as its id, and a
reconnecting browser (`Last-Event-ID`) gets exactly what it missed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyperhive.commands import verbs as v
from tests.web.conftest import Dash, dashboard_before_its_hive, publish_first_agent, sign_in

pytestmark = pytest.mark.nats


@dataclass
class Sse:
    event: str
    id: str | None
    data: Any


async def events_of(response: httpx.Response) -> AsyncIterator[Sse]:
    event, ident, data = "message", None, list[str]()
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Sse(event, ident, json.loads("\n".join(data)))
            event, ident, data = "message", None, list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "id":
                ident = value
            elif field == "data":
                data.append(value)


async def take(
    client: httpx.AsyncClient,
    n: int | None,
    kind: str = "update",
    through: int | None = None,
    **kw: Any,
) -> list[Sse]:
    """The events of kind `kind` of one stream connection: the first `n`, or (with
    `through`) up to and including the one whose id is `through`."""
    got: list[Sse] = []
    async with client.stream("GET", "/api/h/web/stream", **kw) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for e in events_of(r):
            if e.event == kind:
                got.append(e)
                if len(got) == n or (through is not None and int(e.id or 0) >= through):
                    break
    return got


async def statuses(dash: Dash, n: int) -> list[int]:
    """Set alice's status `n` times; the stream sequences of those events."""
    seqs = []
    for i in range(n):
        await dash.live.agent_says("alice", v.SetStatus(text=f"status {i}"))
        seqs.append(dash.live.core.state.position)
    await dash.caught_up()
    return seqs


async def test_every_event_is_one_update_with_its_sequence_as_id(
    client: httpx.AsyncClient, dash: Dash
) -> None:
    start = await dash.caught_up()
    seqs = await statuses(dash, 3)
    # c0re may still be carrying out effects of the fixture's commands (an agent's
    # start): every event after `start` is an update, the three statuses among them.
    updates = await take(client, None, through=seqs[-1], params={"since": start})
    assert [int(u.id or 0) for u in updates] == list(range(start + 1, seqs[-1] + 1))
    assert [u.data["seq"] for u in updates] == [int(u.id or 0) for u in updates]
    status_updates = [u for u in updates if u.data["kind"] == "agent.status_set"]
    assert [u.data["seq"] for u in status_updates] == seqs
    last = updates[-1].data
    targets = {(op[0], op[1]) for op in last["ops"]}
    assert ("morph", "agent-alice") in targets
    assert ("prepend", "feed") in targets
    row = next(op[2] for op in last["ops"] if op[1] == "agent-alice")
    assert "status 2" in row


async def test_last_event_id_resumes_right_after_it_without_duplicates(
    client: httpx.AsyncClient, dash: Dash
) -> None:
    seqs = await statuses(dash, 5)
    resumed = await take(
        client, 3, params={"since": 0}, headers={"last-event-id": str(seqs[1])}
    )  # the header wins over `since`
    assert [u.data["seq"] for u in resumed] == seqs[2:]


async def test_a_browser_too_far_behind_or_from_elsewhere_is_told_to_resync(
    client: httpx.AsyncClient, dash: Dash
) -> None:
    seqs = await statuses(dash, 2)
    view = dash.hub.view("web")
    view.ring.clear()  # as after more updates than the ring keeps
    (resync,) = await take(client, 1, "resync", headers={"last-event-id": str(seqs[0] - 1)})
    assert resync.data == {"seq": view.position}
    (ahead,) = await take(client, 1, "resync", params={"since": view.position + 1000})
    assert ahead.data["seq"] == view.position
    snap = (await client.get("/ui/h/web/snapshot")).json()
    assert snap["seq"] == view.position
    assert {op[1] for op in snap["ops"]} >= {"agents", "questions", "approvals", "operator-inbox"}


async def test_the_stream_says_whether_the_dashboard_is_connected(
    client: httpx.AsyncClient,
) -> None:
    (status,) = await take(client, 1, "status")
    assert status.data["connected"] is True
    assert "banner-nats" in status.data["html"]
    assert "hidden" in status.data["html"]


async def test_a_hive_with_no_stream_yet_shows_why_at_once_and_goes_live_when_it_has_one(
    tmp_path: Path,
) -> None:
    """A dashboard started before anything was published: the page does not wait on the
    hive, it says why it is empty; an open stream is told when the hive appears."""
    async with (
        dashboard_before_its_hive(tmp_path / "state") as (cfg, _, url, token),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        await sign_in(client, token)
        page = await client.get("/h/web")
        assert page.status_code == 200
        assert "cannot be read yet" in page.text
        assert "HIVE_WEB" in page.text

        async with client.stream("GET", "/api/h/web/stream") as r:
            seen = aiter(events_of(r))
            status = await anext(seen)
            assert status.event == "status"
            assert "cannot be read yet" in status.data["hive_html"]

            await publish_first_agent(cfg)
            # the banner goes, then the browser is told to take a fresh snapshot
            rest = [await anext(seen), await anext(seen)]
            assert [e.event for e in rest] == ["status", "resync"]
            assert "hidden" in rest[0].data["hive_html"]
            assert rest[1].data == {"seq": 1}

        snap = (await client.get("/ui/h/web/snapshot")).json()
        ops = {op[1]: op[2] for op in snap["ops"]}
        assert "alice" in ops["agents"]
        assert "cannot be read yet" not in ops["banner-hive"]
