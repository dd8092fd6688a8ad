"""Two hives on one cluster: each its own stream, its own manager, its own operator.

Each hive runs its own c0re with its own state dir; both write their agents'
users into the cluster's state dir (`nats_state_dir`), so both have an agent
named `manager`. Every check below is made with the credentials the hives
really hand out: an agent or operator of hive `a` can do nothing in hive `b`,
while the server-wide operator reads both (`hive-events tail --hive '*'`).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hyperhive.bus import auth, subjects
from hyperhive.bus.inbox import recv
from hyperhive.bus.tail import list_hive_streams
from hyperhive.commands import verbs as v
from hyperhive.names import OPERATOR, agent_role
from tests.cluster.conftest import c0re_on
from tests.clusters import LocalCluster, cluster_env
from tests.helpers import BIN, connect_as, next_permission_error

pytestmark = [pytest.mark.nats, pytest.mark.cluster, pytest.mark.timeout(300)]

A, B = "hive-a", "hive-b"
MANAGER = "manager"


async def test_two_hives_each_with_a_manager_are_isolated_on_one_cluster(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    async with c0re_on(cluster, A, tmp_path) as a, c0re_on(cluster, B, tmp_path) as b:
        # Both managers exist, each with its own user, and each works in its own hive.
        users = {
            h: auth.read_credentials(auth.credentials_path(cluster.state, agent_role(MANAGER), h))
            for h in (A, B)
        }
        assert (users[A].user, users[B].user) == (f"agent-manager@{A}", f"agent-manager@{B}")
        assert await a.agent_says(MANAGER, v.SetStatus(text="in a")) == {"status_text": "in a"}
        assert await b.agent_says(MANAGER, v.SetStatus(text="in b")) == {"status_text": "in b"}
        await b.op(v.Send(to=MANAGER, body="for b's manager"))

        url = cluster.urls[0]
        for role in (agent_role(MANAGER), auth.OPERATOR):
            errors: asyncio.Queue[Exception] = asyncio.Queue()
            client = await connect_as(url, cluster.state, role, errors, hive=A)
            try:
                # c0re commands of hive b, as b's manager and as b's operator
                for caller in (MANAGER, OPERATOR):
                    subject = subjects.command_subject(B, caller, "set_status")
                    await client.publish(subject, b"{}", reply=client.new_inbox())
                    await next_permission_error(errors, subject)
                # b's events and b's inbox
                await client.subscribe(subjects.all_events_pattern(B))
                await next_permission_error(errors, subjects.all_events_pattern(B))
                stream_b = subjects.stream_name(B)
                for subject in (
                    subjects.js_api("STREAM", "INFO", stream_b),
                    subjects.js_msg_next(stream_b, subjects.inbox_durable(MANAGER)),
                    subjects.js_api("CONSUMER", "CREATE", stream_b, "peek"),
                ):
                    await client.publish(subject, b"{}", reply=client.new_inbox())
                    await next_permission_error(errors, subject)
            finally:
                await client.close()

        # b's manager still finds its message: nothing of a's reached it or took it.
        b_manager = await b.as_agent(MANAGER)
        bodies = []
        while (got := await recv(b_manager, B, MANAGER, wait=1, announce=False)) is not None:
            assert got.message is not None
            bodies.append(got.message.body)
        assert "for b's manager" in bodies

        # The server-wide operator reads both hives; a hive's operator may not list them.
        everyone = await connect_as(url, cluster.state, auth.OPERATOR)
        try:
            hives = {s.hive for s in await list_hive_streams(everyone)}
            assert {A, B} <= hives
        finally:
            await everyone.close()

        env = cluster_env(a.cfg) | {"HYPERHIVE_HIVE": "*"}
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "hive-events"),
            *("tail", "-n", "100", "-o", "json", "--kind", "agent.status_set"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        seen = {(e["hive"], e["status_text"]) for e in map(json.loads, out.decode().splitlines())}
        assert {(A, "in a"), (B, "in b")} <= seen
