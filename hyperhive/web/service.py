"""`hyperhive dashboard`: the operator dashboard as a service.

    await run_dashboard(cfg, on_listening=print)

Binds first (SO_REUSEADDR, retrying while the port is taken: `listen`), so the
page answers even while NATS is away (it says so in a banner), then connects
as the operator and follows every hive it serves. uvicorn serves the app on
that socket; its own signal handling is off (the caller's service runtime
stops everything on SIGINT/SIGTERM), and open live streams are ended on the
way out so a stop never waits on a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from hyperhive.config import HiveConfig
from hyperhive.errors import ServerError
from hyperhive.service import cancel_and_wait
from hyperhive.statedir import StateDir
from hyperhive.web import render, tokens
from hyperhive.web.app import create_app
from hyperhive.web.hives import Hub
from hyperhive.web.listen import bind_listener, url_of
from hyperhive.web.login import LoginFlows

log = logging.getLogger("hyperhive.web")

GRACEFUL = 2.0  # seconds open requests get to finish when the dashboard stops


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the service runtime owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_dashboard(
    cfg: HiveConfig,
    on_listening: Callable[[str], Any] | None = None,
    on_ready: Callable[[Hub, str], Any] | None = None,
) -> None:
    """Serve the dashboard until cancelled; `on_listening(url)` once it accepts connections."""
    state = StateDir.at(cfg.state_dir).ensure()
    await asyncio.to_thread(tokens.session_key, state)
    sock = await bind_listener(cfg.dashboard_address, cfg.dashboard_port)
    try:
        await _serve(cfg, state, sock, on_listening, on_ready)
    finally:
        sock.close()


async def _serve(
    cfg: HiveConfig,
    state: StateDir,
    sock: socket.socket,
    on_listening: Callable[[str], Any] | None,
    on_ready: Callable[[Hub, str], Any] | None,
) -> None:
    url = url_of(sock)
    hub = Hub(cfg, render.Parts(render.environment()))
    logins = LoginFlows(state, cfg.claude)
    app = create_app(cfg, hub, logins)
    server = _Server(
        uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=int(GRACEFUL),
            ws="none",
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="dashboard-http")
    following = asyncio.create_task(hub.run(), name="dashboard-hub")
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise ServerError(f"the dashboard did not start on {url}")
            await asyncio.sleep(0.01)
        log.info("dashboard: listening on %s", url)
        if on_listening is not None:
            on_listening(url)
        if on_ready is not None:
            on_ready(hub, url)
        done, _ = await asyncio.wait([serving, following], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a failure of either is the service's
        raise ServerError("the dashboard's web server stopped on its own")
    finally:
        await hub.aclose()  # live streams end now: nothing waits on a browser
        await logins.aclose()
        server.should_exit = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(GRACEFUL + 3):
                await asyncio.shield(serving)
        await cancel_and_wait([serving, following])
