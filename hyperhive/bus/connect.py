"""Connecting to NATS: find the server and the credentials, reconnect forever.

Resolution: `nats_url` from config/env/flag wins; otherwise the state dir's
embedded server (`<state>/nats/server.json`). Credentials: `nats_credentials`,
else `<state>/nats/credentials/<role>.json` when it exists, else whatever the URL
carries. A dropped connection is retried forever with capped exponential backoff;
every disconnect and reconnect is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from hyperhive.backoff import Backoff
from hyperhive.bus import auth
from hyperhive.bus.server import read_server_info
from hyperhive.config import HiveConfig
from hyperhive.errors import NotConnected
from hyperhive.statedir import StateDir

log = logging.getLogger("hyperhive.bus")

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and as whom."""

    url: str
    credentials: auth.Credentials | None
    role: str

    def describe(self) -> str:
        who = f" as {self.credentials.user}" if self.credentials else ""
        return f"{self.url}{who}"


def resolve_endpoint(cfg: HiveConfig, role: str) -> Endpoint:
    """The URL and credentials a command with `role` should use."""
    state = StateDir.at(cfg.state_dir).root
    url = cfg.nats_url or read_server_info(state).url
    creds: auth.Credentials | None = None
    if cfg.nats_credentials:
        creds = auth.read_credentials(Path(cfg.nats_credentials))
    else:
        path = auth.credentials_path(state, role)
        if path.exists():
            creds = auth.read_credentials(path)
    return Endpoint(url=url, credentials=creds, role=role)


def _reconnect_picker(backoff: Backoff) -> Any:
    """nats-py's reconnect hook: the next server, and how long to wait before trying it."""

    def pick(servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
        return servers[0] if servers else None, backoff.next_delay()

    return pick


async def connect(endpoint: Endpoint, name: str, wait: bool = False) -> Client:
    """Connect; with `wait`, keep trying until the server answers (services do this)."""
    reconnects = Backoff(BACKOFF_FIRST, BACKOFF_MAX)
    pick = _reconnect_picker(reconnects)

    client: list[Client] = []

    async def on_disconnect() -> None:
        if not client or client[0].is_closed or client[0].is_draining:
            return  # a failed first attempt, or our own close: not news
        log.warning("disconnected from NATS %s", endpoint.url)

    async def on_reconnect() -> None:
        reconnects.reset()
        log.warning("reconnected to NATS %s", endpoint.url)

    failures: list[BaseException] = []

    async def on_error(exc: Exception) -> None:
        if not client:  # a failed first-connect attempt: the loop below reports it
            failures.append(exc)
            return
        log.warning("NATS: %s", exc)

    kwargs: dict[str, Any] = {}
    if endpoint.credentials:
        kwargs.update(user=endpoint.credentials.user, password=endpoint.credentials.password)
    retries = Backoff(BACKOFF_FIRST, BACKOFF_MAX, jitter=False)
    while True:
        failures.clear()
        nc = Client()
        try:
            await nc.connect(
                servers=[endpoint.url],
                name=name,
                inbox_prefix=auth.inbox_prefix(endpoint.role) if endpoint.credentials else "_INBOX",
                # nats-py would retry a first connect forever by itself: one attempt
                # per call here (two for an unreachable socket), this loop decides.
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_to_server_handler=pick,
                connect_timeout=2,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                error_cb=on_error,
                **kwargs,
            )
            # Connected: from now on nats-py reconnects by itself, forever.
            nc.options.update(allow_reconnect=True, max_reconnect_attempts=-1)
            client.append(nc)
            return nc
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            with contextlib.suppress(Exception):
                await nc.close()  # nats-py leaves a refused attempt's socket open
            reason = _reason(_cause(exc, failures))
            if not wait:
                raise NotConnected(
                    f"cannot connect to NATS at {endpoint.describe()}: {reason}"
                ) from exc
            # A service keeps trying, refused credentials included: a new agent's
            # user reaches the server a moment after its credentials file does.
            refused = "authorization" in reason.lower()
            delay = retries.next_delay()
            log.log(
                logging.ERROR if refused else logging.WARNING,
                "NATS at %s %s (%s); retrying in %.1fs",
                endpoint.describe(),
                "refused our credentials" if refused else "not reachable",
                reason,
                delay,
            )
            await asyncio.sleep(delay)


def _cause(exc: BaseException, failures: list[BaseException]) -> BaseException:
    """What a failed first connect was really about (nats-py reports it to error_cb)."""
    for failure in (exc, *failures):
        if "authorization" in str(failure).lower():
            return failure
    if isinstance(exc, nats.errors.NoServersError) and failures:
        return failures[-1]
    return exc


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


@asynccontextmanager
async def open_nats(
    cfg: HiveConfig, role: str, name: str, wait: bool = False
) -> AsyncIterator[Client]:
    """A connected client for the duration of the block, drained on the way out."""
    nc = await connect(resolve_endpoint(cfg, role), name, wait=wait)
    try:
        yield nc
    finally:
        # Not drain(): it waits for every subscription's in-flight deliveries, which
        # makes a cancelled consumer slow to stop. Publishes are awaited (acked) by
        # their callers and unacked deliveries come back, so flush and close is enough.
        if nc.is_connected:
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                await nc.flush(timeout=1)
        # Shielded: a second cancel must not leave the socket open.
        await asyncio.shield(nc.close())


START_HINT = "start one with `hyperhive up` (or `hyperhive nats`), or pass --nats URL"
CREDENTIALS_HINT = (
    "check the operator credentials (<state-dir>/nats/credentials/operator.json, "
    "or nats_credentials in hive.toml)"
)


@asynccontextmanager
async def open_reader(cfg: HiveConfig, purpose: str) -> AsyncIterator[Client]:
    """An operator connection for a reader; a refusal says what to do about it."""
    try:
        async with open_nats(cfg, auth.OPERATOR, f"hyperhive-{purpose}") as nc:
            yield nc
    except NotConnected as exc:
        text = str(exc)
        if "authorization" in text.lower():
            text += f"; {CREDENTIALS_HINT}"
        elif "hyperhive up" not in text:
            text += f"; {START_HINT}"
        raise NotConnected(text) from None
