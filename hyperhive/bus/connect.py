"""Connecting to NATS: find the servers and the credentials, fail over, reconnect forever.

Resolution: `nats_url` from config/env/flag wins, one URL or a cluster's seed
list (URLs separated by commas); otherwise the running server(s) of the NATS
state dir (`nats_state_dir`, else the state dir): the embedded server's
`<state>/nats/server.json`, or every running node of a local cluster. Credentials:
`nats_credentials`, else the NATS state dir's file for the role (a hive's own
operator's when there is one for the command's hive), else whatever the URL
carries. A client is given the whole seed list (and learns the cluster's other
servers from it); a dropped connection tries the other servers first, then
retries forever with capped exponential backoff. Every disconnect and reconnect
is logged.
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
from hyperhive.bus.server import running_urls
from hyperhive.config import HiveConfig, nats_servers
from hyperhive.errors import NotConnected
from hyperhive.names import ALL_HIVES, is_agent_role
from hyperhive.statedir import StateDir

log = logging.getLogger("hyperhive.bus")

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class Endpoint:
    """Where to connect (one server or a seed list) and as whom."""

    servers: tuple[str, ...]
    credentials: auth.Credentials | None
    role: str
    hive: str | None = None  # the hive of a hive's own role (an agent, a hive's operator)

    @property
    def url(self) -> str:
        """The servers as a `nats_url` says them (comma-separated)."""
        return ",".join(self.servers)

    @property
    def inbox_prefix(self) -> str:
        if self.credentials is None:
            return "_INBOX"
        return auth.inbox_prefix(self.role, self.hive)

    def describe(self) -> str:
        who = f" as {self.credentials.user}" if self.credentials else ""
        return f"{self.url}{who}"


def nats_state(cfg: HiveConfig) -> StateDir:
    """The state dir whose NATS server(s) and users this command uses."""
    return StateDir.at(cfg.nats_state_dir or cfg.state_dir)


def resolve_servers(cfg: HiveConfig) -> tuple[str, ...]:
    """`nats_url`'s servers, else the NATS state dir's running ones (`NotConnected` if none)."""
    return nats_servers(cfg.nats_url) or running_urls(nats_state(cfg).root)


def resolve_endpoint(cfg: HiveConfig, role: str, every_hive: bool = False) -> Endpoint:
    """The servers and credentials a command with `role` should use.

    The operator of one hive (`cfg.hive`) is that hive's own operator when it has
    credentials; `every_hive` (or `--hive '*'`) asks for the server-wide one, which
    reads every hive (a dashboard's hive switcher).
    """
    state = nats_state(cfg).root
    servers = resolve_servers(cfg)
    hive = cfg.hive if cfg.hive != ALL_HIVES else None
    if every_hive and not is_agent_role(role):
        hive = None
    creds: auth.Credentials | None = None
    if cfg.nats_credentials:
        creds = auth.read_credentials(Path(cfg.nats_credentials))
        # A hive's own role's file names its hive; the server-wide operator's names none.
        scope = creds.hive if (creds.hive or not is_agent_role(role)) else hive
        return Endpoint(servers, creds, role, scope if role != auth.ADMIN else None)
    if is_agent_role(role):
        if hive is None:
            raise NotConnected(f"{role} acts in one hive: pass --hive NAME")
        path = auth.credentials_path(state, role, hive)
        if not path.exists():  # an agent file of an earlier version, not moved yet
            path = StateDir(state).credentials_file(role)
        return Endpoint(servers, _read_if_there(path), role, hive)
    if role == auth.OPERATOR and hive is not None:
        own = auth.credentials_path(state, role, hive)
        if own.exists():  # the hive's own operator: that hive, nothing else
            return Endpoint(servers, auth.read_credentials(own), role, hive)
    return Endpoint(servers, _read_if_there(auth.credentials_path(state, role)), role)


def _read_if_there(path: Path) -> auth.Credentials | None:
    return auth.read_credentials(path) if path.exists() else None


class ServerPicker:
    """nats-py's reconnect hook: which server next, and how long to wait first.

    After a disconnect every other server of the pool (the seed list and the
    servers the cluster told us about) is tried once, at once, the lost one
    last; only when a whole round failed does the backoff start. (nats-py's own
    default hook answer, the pool's first server, would try one dead node forever.)
    """

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.lost: str | None = None
        self.tried: set[str] = set()

    def lose(self, server: str | None) -> None:
        """A disconnect from `server` (host:port): a new round starts, it goes last."""
        self.lost = server
        self.tried.clear()

    def reset(self) -> None:
        """Reconnected: forget the outage."""
        self.lost = None
        self.tried.clear()
        self.backoff.reset()

    def __call__(self, servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
        if not servers:
            return None, self.backoff.next_delay()
        fresh = [s for s in servers if _host_port(s) not in self.tried]
        delay = 0.0
        if not fresh:  # every server failed once this round: wait, then start over
            self.tried.clear()
            fresh = list(servers)
            delay = self.backoff.next_delay()
        fresh.sort(key=lambda s: (_host_port(s) == self.lost, s.reconnects))
        chosen = fresh[0]
        self.tried.add(_host_port(chosen))
        return chosen, delay


def _host_port(server: Any) -> str:
    """host:port of a server of nats-py's pool (without any user:password@)."""
    return str(server.uri.netloc).rsplit("@", 1)[-1]


async def connect(endpoint: Endpoint, name: str, wait: bool = False) -> Client:
    """Connect; with `wait`, keep trying until the server answers (services do this)."""
    pick = ServerPicker(Backoff(BACKOFF_FIRST, BACKOFF_MAX))

    client: list[Client] = []

    async def on_disconnect() -> None:
        if not client or client[0].is_closed or client[0].is_draining:
            return  # a failed first attempt, or our own close: not news
        lost = _current(client[0])
        pick.lose(lost)
        log.warning("disconnected from NATS %s", lost or endpoint.url)

    async def on_reconnect() -> None:
        pick.reset()
        now = _current(client[0]) if client else None
        log.warning("reconnected to NATS %s", now or endpoint.url)

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
                servers=list(endpoint.servers),
                name=name,
                inbox_prefix=endpoint.inbox_prefix,
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


def _current(nc: Client) -> str | None:
    """host:port of the server a client is (or was last) connected to.

    nats-py's `connected_url` is None once the connection dropped, which is when
    this is asked: its current server is still the one that was lost.
    """
    server = getattr(nc, "_current_server", None)
    return _host_port(server) if server is not None else None


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
    cfg: HiveConfig, role: str, name: str, wait: bool = False, every_hive: bool = False
) -> AsyncIterator[Client]:
    """A connected client for the duration of the block, drained on the way out.

    With a seed list it fails over between the cluster's nodes by itself.
    `every_hive`: the server-wide operator (see `resolve_endpoint`).
    """
    nc = await connect(resolve_endpoint(cfg, role, every_hive), name, wait=wait)
    try:
        yield nc
    finally:
        # Not drain(): it waits for every subscription's in-flight deliveries, which
        # makes a cancelled consumer slow to stop. Publishes are awaited (acked) by
        # their callers and unacked deliveries come back, so flush and close is enough.
        # A flush or close that fails (the server went away) is not news, and must not
        # replace what ends the block: a cancel turned into an OSError was a service
        # that retried instead of stopping.
        if nc.is_connected:
            with contextlib.suppress(Exception):
                await nc.flush(timeout=1)
        try:
            await asyncio.shield(nc.close())  # shielded: a second cancel must not leave it open
        except Exception as exc:
            log.debug("closing %s: %s", name, _reason(exc))


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
