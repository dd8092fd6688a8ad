"""The dashboard on the 3-node cluster: its live stream goes on across a node's kill -9
with nothing lost and nothing shown twice, and one dashboard serves two hives."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from hyperhive import events as ev
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.publish import publish_event
from hyperhive.commands import verbs as v
from hyperhive.config import HiveConfig
from tests.cluster.conftest import c0re_on
from tests.clusters import LocalCluster
from tests.helpers import wait_until
from tests.web.conftest import dashboard_for, dashboard_on, sign_in
from tests.web.test_sse import events_of

pytestmark = [pytest.mark.nats, pytest.mark.cluster, pytest.mark.timeout(300)]

BURST = 400


async def stream_consumers(cluster: LocalCluster, hive: str) -> dict[str, str]:
    """Every consumer of the hive's stream, and the node it lives on."""
    admin = await cluster.admin()
    try:
        found = await admin.jetstream().consumers_info(subjects.stream_name(hive))
        return {str(c.name): str(c.cluster.leader) for c in found if c.cluster and c.cluster.leader}
    finally:
        await admin.close()


async def test_the_dashboards_live_stream_goes_on_across_a_node_kill(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    async with c0re_on(cluster, "dash", tmp_path) as live:
        before = await stream_consumers(cluster, "dash")
        async with dashboard_for(live) as dash:
            view = dash.hub.view("dash")

            async def its_consumer() -> tuple[str, str] | None:
                now = await stream_consumers(cluster, "dash")
                new = [(n, where) for n, where in now.items() if n not in before]
                return new[0] if len(new) == 1 else None

            _name, node = await wait_until(its_consumer, what="the dashboard's own consumer")
            got: list[int] = []
            async with httpx.AsyncClient(base_url=dash.url, timeout=120) as client:
                await sign_in(client, dash.token)

                async def browser() -> None:  # a browser's live stream, as it sees it
                    since = view.position
                    async with client.stream("GET", f"/api/h/dash/stream?since={since}") as r:
                        async for e in events_of(r):
                            if e.event == "update":
                                got.append(int(e.data["seq"]))

                reader = asyncio.create_task(browser())
                admin = await connect(resolve_endpoint(live.cfg, auth.ADMIN), "burst", wait=True)
                acked: dict[str, int] = {}
                try:
                    for i in range(BURST):
                        if i == BURST // 4:
                            cluster.kill(node)  # the node the dashboard's consumer is on
                        e = ev.AgentStatusSet(
                            hive="dash", agent="manager", source="harness", status_text=f"s{i}"
                        )
                        acked[e.id] = (await publish_event(admin.jetstream(), e, retry_for=30)).seq
                    last = max(acked.values())
                    await wait_until(lambda: view.position >= last, timeout=60, what="the view")
                    await wait_until(lambda: got and got[-1] >= last, timeout=30, what="the SSE")
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
                    await admin.close()
    ring = [u.seq for u in view.ring if u.event == "update"]
    assert ring == sorted(set(ring)), "an update was shown twice or out of order"
    assert set(acked.values()) <= set(ring), "an acknowledged event never reached the page"
    assert got == sorted(set(got))  # the browser saw each once, in order
    assert set(acked.values()) <= set(got)


async def test_one_dashboard_serves_two_hives_with_a_switcher(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    async with c0re_on(cluster, "hive-a", tmp_path) as a, c0re_on(cluster, "hive-b", tmp_path) as b:
        await a.agent_says("manager", v.SetStatus(text="the manager of a"))
        await b.op(v.Spawn(name="bob"))
        cfg = HiveConfig(
            hive="*",
            nats_url=cluster.seed,
            nats_state_dir=str(cluster.state),
            state_dir=str(tmp_path / "dashboard"),
            dashboard_port=0,
        )
        async with dashboard_on(cfg) as (hub, url, token):
            await wait_until(
                lambda: (
                    {"hive-a", "hive-b"} <= set(hub.hives)
                    and all(hub.view(h).loaded.is_set() for h in ("hive-a", "hive-b"))
                ),
                timeout=30,
                what="both hives found and loaded",
            )
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await sign_in(client, token)
                listed = (await client.get("/api/hives")).json()["result"]
                assert {"hive-a", "hive-b"} <= set(listed["hives"])
                page_a = (await client.get("/h/hive-a")).text
                page_b = (await client.get("/h/hive-b")).text
                for page in (page_a, page_b):  # the switcher names both
                    assert 'href="/h/hive-a"' in page
                    assert 'href="/h/hive-b"' in page
                assert "the manager of a" in page_a
                assert "the manager of a" not in page_b
                assert 'id="agent-bob"' in page_b
                assert 'id="agent-bob"' not in page_a
                agents_b = (await client.get("/api/h/hive-b/agents")).json()["result"]["agents"]
                assert {r["name"] for r in agents_b} == {"manager", "bob"}
                sent = await client.post(
                    "/api/h/hive-b/send",
                    json={"to": "bob", "body": "from the switcher"},
                    headers={"x-csrf-token": client.cookies["hyperhive_csrf"]},
                )
                assert sent.status_code == 200, sent.text
                assert sent.json()["result"]["to"] == "bob"
                ids = {sent.json()["result"]["msg_id"]}
                assert ids <= set(b.core.state.inbox.get("bob", ()))
