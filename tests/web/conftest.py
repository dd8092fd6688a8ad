"""A real hive with its dashboard: embedded nats-server, c0re, stand-in agents as processes,
and `run_dashboard` on a free loopback port; plus a signed-in HTTP client and, for the
`browser` tests, Debian's headless Chromium driven by playwright.

Chromium: `/usr/bin/chromium` (or `HYPERHIVE_CHROMIUM`). Missing, CI (`CI=true`)
installs Debian's package and fails if that fails; elsewhere the browser tests skip
with the command that installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from hyperhive import events as ev
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.publish import publish_event
from hyperhive.bus.server import EmbeddedServer
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig
from hyperhive.names import ROLE_ADMIN
from hyperhive.statedir import StateDir
from hyperhive.web import tokens
from hyperhive.web.hives import Hub
from hyperhive.web.service import run_dashboard
from tests.core.conftest import LiveHive, hive_config, live_hive
from tests.harness.conftest import claude_bin, fake_api  # the real CLI and the fake API
from tests.helpers import stop_task, wait_until

__all__ = ["claude_bin", "fake_api"]

CHROMIUM = os.environ.get("HYPERHIVE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]


@dataclass
class Dash:
    """A running dashboard on a live hive."""

    live: LiveHive
    hub: Hub
    url: str  # http://127.0.0.1:<port>/
    token: str

    @property
    def hive(self) -> str:
        return self.live.cfg.hive

    def at(self, path: str) -> str:
        return self.url.rstrip("/") + path

    async def caught_up(self, timeout: float = 10.0) -> int:
        """Wait until the dashboard's view has folded everything c0re has; its position."""
        view = self.hub.view(self.hive)
        target = self.live.core.state.position
        await wait_until(
            lambda: view.loaded.is_set() and view.position >= target,
            timeout=timeout,
            what=f"the dashboard to reach seq {target} (at {view.position})",
        )
        return view.position


@contextlib.asynccontextmanager
async def dashboard_on(cfg: HiveConfig) -> AsyncIterator[tuple[Hub, str, str]]:
    """`run_dashboard` for `cfg` on a free loopback port: (hub, url, a fresh token)."""
    cfg = msgspec.structs.replace(cfg, dashboard_port=0, dashboard_address="127.0.0.1")
    token = tokens.mint(StateDir.at(cfg.state_dir).ensure(), sign_out=True)
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[tuple[Hub, str]] = loop.create_future()

    def on_ready(hub: Hub, url: str) -> None:
        if not ready.done():
            ready.set_result((hub, url))

    task = asyncio.create_task(run_dashboard(cfg, on_ready=on_ready))
    try:
        async with asyncio.timeout(30):
            waiting: list[asyncio.Future[Any]] = [ready, task]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        hub, url = ready.result()
        yield hub, url, token
    finally:
        await stop_task(task, timeout=15)


@contextlib.asynccontextmanager
async def dashboard_for(live: LiveHive) -> AsyncIterator[Dash]:
    """The dashboard of a live hive, caught up with its c0re."""
    async with dashboard_on(live.cfg) as (hub, url, token):
        dash = Dash(live, hub, url, token)
        await dash.caught_up(timeout=30)
        yield dash


async def agents_waiting(live: LiveHive, agents: tuple[str, ...], timeout: float = 30.0) -> None:
    """Wait until each of `agents` is in `recv` with nothing left in its inbox.

    Each harness starts by taking c0re's kick (recv.waiting, recv.delivered,
    recv.waiting): until then the hive still publishes events of its own.
    """

    def quiet() -> bool:
        state = live.core.state
        return all(
            (a := state.agents.get(name)) is not None and a.waiting and not state.inbox.get(name)
            for name in agents
        )

    await wait_until(quiet, timeout=timeout, what=f"{', '.join(agents)} to wait in recv")


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Dash]:
    """The dashboard of hive `web`, whose agents alice and bob have started and wait."""
    agents = ("alice", "bob")
    async with live_hive(tmp_path / "state", "web", agents=agents) as live:
        await agents_waiting(live, agents)
        async with dashboard_for(live) as d:
            yield d


# ---------------------------------------------------------------- HTTP


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    """Sign in as a browser does: the login form (and its CSRF cookie), then the token."""
    page = await client.get("/login")
    assert page.status_code == 200, page.text
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert found, "the login page has no CSRF field"
    answer = await client.post(
        "/login", data={"token": token, "next": "/", "_csrf_token": found.group(1)}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/"


def csrf_of(client: httpx.AsyncClient) -> str:
    token = client.cookies.get("hyperhive_csrf")
    assert token, "no CSRF cookie yet: GET a page first"
    return str(token)


@pytest.fixture
async def client(dash: Dash) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in client (session and CSRF cookies), as a same-origin browser would be."""
    async with httpx.AsyncClient(base_url=dash.url, timeout=30) as c:
        await sign_in(c, dash.token)
        c.headers["x-csrf-token"] = csrf_of(c)
        yield c


async def post_json(client: httpx.AsyncClient, path: str, body: Any = None) -> httpx.Response:
    return await client.post(path, json=body if body is not None else {})


# ---------------------------------------------------------------- the browser


def _install_chromium() -> str | None:
    """Install Debian's chromium; None on success, else what went wrong."""
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", CHROMIUM_INSTALL],
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"CI: `{CHROMIUM_INSTALL}` could not run: {exc}"
    if proc.returncode != 0:
        return (
            f"CI: `{CHROMIUM_INSTALL}` failed ({proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # In CI, installing Debian's chromium (~150 MB) must not count against the first
    # browser test's timeout: do it here, once, when any selected test needs it.
    wanted = any(item.get_closest_marker("browser") for item in items)
    if wanted and os.environ.get("CI") == "true" and not Path(CHROMIUM).exists():
        failure = _install_chromium()
        if failure is not None:
            pytest.exit(failure, returncode=1)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium: found, installed under CI, or the test is skipped (saying how)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") != "true":
            pytest.skip(
                f"chromium not found at {CHROMIUM}: `{CHROMIUM_INSTALL}` "
                "(CI installs it; HYPERHIVE_CHROMIUM points elsewhere)"
            )
        failure = _install_chromium()
        if failure is not None:
            pytest.fail(failure)
        if not Path(CHROMIUM).exists():
            found = shutil.which("chromium")
            pytest.fail(f"CI: chromium installed but not at {CHROMIUM} (on PATH: {found})")
    return CHROMIUM


@contextlib.asynccontextmanager
async def dashboard_before_its_hive(state: Path) -> AsyncIterator[tuple[HiveConfig, Hub, str, str]]:
    """A dashboard for hive `web` on a server where nothing was published yet, once its first
    load has failed: (cfg, hub, url, token)."""
    cfg = hive_config(state, "web")
    server = EmbeddedServer(state, "web")
    server.start()
    try:
        async with dashboard_on(cfg) as (hub, url, token):
            view = hub.view("web")
            await wait_until(lambda: view.problem is not None, 30, what="the first load to fail")
            yield cfg, hub, url, token
    finally:
        server.stop()


async def publish_first_agent(cfg: HiveConfig, agent: str = "alice") -> None:
    """Create the hive's stream and spawn `agent` in it, as c0re's first start does."""
    admin = await connect(resolve_endpoint(cfg, ROLE_ADMIN), "test-admin")
    try:
        js = admin.jetstream()
        await ensure_stream(js, cfg.hive, cfg.stream)
        spawned = ev.AgentSpawned(
            hive=cfg.hive, agent=agent, source="c0re", backend="process", port=8100
        )
        await publish_event(js, spawned)
    finally:
        await admin.close()
