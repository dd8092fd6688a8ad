"""Every hive one dashboard serves, on one NATS connection as the operator.

    hub = Hub(cfg, parts)
    await hub.run()                          # connect, then each hive's view, forever
    result = await hub.command("default", verbs.Approve(approval_id=...))

`cfg.hive` names the hive; `*` serves every hive on the server (a hive switcher
on the page), found again as new streams appear. Each view is loaded and
followed on its own, and starts again (with a resync for its browsers) after
any failure; the connection's state is told to the browsers as a banner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import msgspec
from nats.aio.client import Client

from hyperhive.backoff import Backoff
from hyperhive.bus import subjects
from hyperhive.bus.connect import open_nats
from hyperhive.bus.rpc import command as rpc_command
from hyperhive.bus.rpc import request as rpc_request
from hyperhive.bus.tail import list_hive_streams
from hyperhive.commands import Command, CommandRefused, decode_reply
from hyperhive.config import HiveConfig
from hyperhive.errors import HyperhiveError, NotConnected
from hyperhive.names import ALL_HIVES, OPERATOR, ROLE_OPERATOR
from hyperhive.service import EXPECTED, cancel_and_wait, stop_if_cancelled
from hyperhive.statedir import StateDir
from hyperhive.web.hub import HiveView, log_hive
from hyperhive.web.render import Parts

log = logging.getLogger("hyperhive.web")

COMMAND_TIMEOUT = 30.0  # a spawn or a rebuild waits for the backend
HARNESS_TIMEOUT = 5.0
WATCH_EVERY = 0.25  # how often the connection's state is looked at
DISCOVER_EVERY = 5.0  # how often `*` looks for new hives


class UnknownHive(HyperhiveError):
    """A hive this dashboard does not serve."""

    http_status = 404


class Hub:
    def __init__(self, cfg: HiveConfig, parts: Parts) -> None:
        self.cfg = cfg
        self.parts = parts
        self.state = StateDir.at(cfg.state_dir)
        self.all_hives = cfg.hive == ALL_HIVES
        self.views: dict[str, HiveView] = {}
        self.nc: Client | None = None
        self.connected = False
        self.ready = asyncio.Event()  # connected once, views made
        self._tasks: dict[str, asyncio.Task[None]] = {}
        if not self.all_hives:
            self._add(cfg.hive)

    # ------------------------------------------------------------ hives

    @property
    def hives(self) -> list[str]:
        return sorted(self.views)

    @property
    def default_hive(self) -> str:
        if not self.all_hives:
            return self.cfg.hive
        return self.hives[0] if self.views else ""

    def view(self, hive: str) -> HiveView:
        found = self.views.get(hive)
        if found is None:
            raise UnknownHive(f"this dashboard does not serve hive {hive[:40]!r}")
        return found

    def local(self, hive: str) -> bool:
        """True if `hive`'s state dir is this dashboard's (its agents' dirs are here)."""
        if not self.all_hives:
            return hive == self.cfg.hive
        return hive == log_hive(self.state.events_db)

    def _add(self, hive: str) -> HiveView:
        log_path: Path | None = self.state.events_db
        view = HiveView(hive, self.parts, self.cfg.default_model, log_path)
        self.views[hive] = view
        if self.nc is not None:
            self._start(view)
        return view

    def _start(self, view: HiveView) -> None:
        assert self.nc is not None
        nc = self.nc
        self._tasks[view.hive] = asyncio.create_task(
            self._keep_following(view, nc), name=f"dashboard-{view.hive}"
        )

    async def _keep_following(self, view: HiveView, nc: Client) -> None:
        backoff = Backoff(first=0.2, cap=5.0)
        while True:
            try:
                await view.run(nc)
            except EXPECTED as exc:
                stop_if_cancelled(exc)
                delay = backoff.next_delay()
                log.warning("dashboard: hive %s: %s; again in %.1fs", view.hive, exc, delay)
                view.set_problem(str(exc))
            except Exception as exc:
                stop_if_cancelled(exc)
                delay = backoff.next_delay()
                log.exception("dashboard: hive %s failed; again in %.1fs", view.hive, delay)
                view.set_problem("reading the hive failed: the dashboard's log says why")
            else:
                delay = backoff.next_delay()
            view.loaded.clear()
            await asyncio.sleep(delay)

    # ------------------------------------------------------------ running

    async def run(self) -> None:
        """Connect (waiting for NATS as long as it takes), then serve every view, forever."""
        async with open_nats(self.cfg, ROLE_OPERATOR, "hyperhive-dashboard", wait=True) as nc:
            self.nc = nc
            for view in self.views.values():
                self._start(view)
            self.ready.set()
            watchers = [asyncio.create_task(self._watch_connection(nc))]
            if self.all_hives:
                watchers.append(asyncio.create_task(self._discover(nc)))
            try:
                await asyncio.gather(*watchers)
            finally:
                await cancel_and_wait([*watchers, *self._tasks.values()])
                self._tasks.clear()
                self.nc = None
                for view in self.views.values():
                    view.close_listeners()

    async def _watch_connection(self, nc: Client) -> None:
        while True:
            up = bool(nc.is_connected)
            if up != self.connected:
                self.connected = up
                for view in self.views.values():
                    view.set_connected(up)
            await asyncio.sleep(WATCH_EVERY)

    async def _discover(self, nc: Client) -> None:
        while True:
            with contextlib.suppress(*EXPECTED):
                for hs in await list_hive_streams(nc):
                    if hs.hive not in self.views:
                        log.info("dashboard: found hive %s", hs.hive)
                        self._add(hs.hive)
            await asyncio.sleep(DISCOVER_EVERY)

    # ------------------------------------------------------------ commands

    def _client(self) -> Client:
        if self.nc is None or not self.nc.is_connected:
            raise NotConnected("the dashboard is not connected to NATS right now: try again")
        return self.nc

    async def command(self, hive: str, cmd: Command) -> dict[str, Any]:
        """One c0re command as the operator: its result, or `CommandRefused` with c0re's reason."""
        self.view(hive)
        return await rpc_command(self._client(), hive, OPERATOR, cmd, timeout=COMMAND_TIMEOUT)

    async def harness(self, hive: str, agent: str, verb: str) -> dict[str, Any]:
        """One harness command (`clear`, `compact`) to a running agent."""
        self.view(hive)
        subject = subjects.harness_command_subject(hive, agent, verb)
        try:
            data = await rpc_request(self._client(), subject, b"{}", timeout=HARNESS_TIMEOUT)
        except NotConnected:
            raise CommandRefused(f"{agent}'s harness does not answer: is it running?") from None
        try:
            return decode_reply(data)
        except msgspec.DecodeError:
            raise CommandRefused(f"{agent}'s harness sent an unreadable reply") from None

    async def aclose(self) -> None:
        for view in self.views.values():
            view.close_listeners()
