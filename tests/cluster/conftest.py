"""Hives on the 3-node cluster: c0re running on it, clients with the seed list."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from nats.js import errors as js_errors

from hyperhive.bus import subjects
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig
from hyperhive.core.lifecycle.fake import FakeBackend
from tests.clusters import LocalCluster
from tests.core.conftest import LiveHive, running_c0re


@contextlib.asynccontextmanager
async def hive_stream(cluster: LocalCluster, cfg: HiveConfig) -> AsyncIterator[None]:
    """The hive's R3 stream for the block, deleted after (storage is reserved per stream)."""
    admin = await cluster.admin()
    try:
        await ensure_stream(admin.jetstream(), cfg.hive, cfg.stream)
        await cluster.wait_current(cfg.hive)
        yield
    finally:
        cluster.heal()
        await cluster.wait_ready()
        await cluster.wait_placeable()
        with contextlib.suppress(js_errors.NotFoundError):
            await admin.jetstream(timeout=30).delete_stream(subjects.stream_name(cfg.hive))
        await admin.close()


@contextlib.asynccontextmanager
async def c0re_on(cluster: LocalCluster, hive: str, tmp: Path) -> AsyncIterator[LiveHive]:
    """c0re of `hive` on the cluster (agents run nowhere: the fake backend), its own
    state dir, the cluster's users; the operator is the hive's own."""
    cfg = await cluster.config(hive, tmp / hive)
    async with hive_stream(cluster, cfg):
        server = next(iter(cluster.nodes.values()))
        async with running_c0re(cfg, server, FakeBackend()) as live:
            yield live
