"""`hyperhive`: the whole hive (`up`) or each part alone, as the NixOS module runs them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from hyperhive import __version__
from hyperhive.bus import auth
from hyperhive.bus.projector import eventlog_path, run_projector
from hyperhive.bus.server import EmbeddedServer, ensure_not_running, reload_running
from hyperhive.cli.common import common_options, refusals, resolve, run, setup_logging
from hyperhive.config import HiveConfig, state_path
from hyperhive.errors import ServerError

log = logging.getLogger("hyperhive")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hyperhive")
def main() -> None:
    """Run a hive of Claude Code agents, or one of its parts."""


async def _until_signalled(*tasks: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run `tasks` until SIGINT/SIGTERM or until one of them fails."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running: list[asyncio.Task[Any]] = [asyncio.create_task(t()) for t in tasks]
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*running, stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        for t in [*running, stopper]:
            t.cancel()
        for t in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _sibling(script: str) -> str:
    """How to run another of our commands: by name if PATH finds ours, else by path."""
    beside = Path(sys.executable).parent / script
    if shutil.which(script) == str(beside) or not beside.exists():
        return script
    return str(beside)


def _start_embedded(cfg: HiveConfig) -> EmbeddedServer:
    state = state_path(cfg)
    ensure_not_running(state)
    server = EmbeddedServer(state, cfg.hive, port=cfg.nats_port, agents=tuple(cfg.agents))
    server.start()
    return server


@main.command()
@common_options
@click.option("--nats-port", type=int, default=None, help="Port of the embedded nats-server.")
@click.option("--dashboard-port", type=int, default=None, help="Port of the operator dashboard.")
@refusals
def up(nats_port: int | None, dashboard_port: int | None, **kw: Any) -> None:
    """The whole hive on this machine: embedded nats-server (unless --nats), projector."""
    cfg = resolve(kw, nats_port=nats_port, dashboard_port=dashboard_port)
    setup_logging(cfg.log_level)
    server = None if cfg.nats_url else _start_embedded(cfg)
    state = state_path(cfg)
    try:
        url = cfg.nats_url or (server.url if server else "")
        click.echo(f"hyperhive {__version__}: hive '{cfg.hive}' is up")
        click.echo(
            f"  nats        {url}"
            + ("  (embedded, store in " + str(state / "nats") + ")" if server else "")
        )
        click.echo(f"  event log   {eventlog_path(cfg)}")
        click.echo(f"  credentials {auth.credentials_dir(state)}")
        click.echo(
            f"  follow it:  {_sibling('hive-events')} tail -f --state-dir {state} --hive {cfg.hive}"
        )
        click.echo("  Ctrl-C stops everything.")
        run(_until_signalled(lambda: run_projector(cfg)))
    finally:
        if server is not None:
            server.stop()
    click.echo("hyperhive: stopped", err=True)


@main.command()
@common_options
@click.option(
    "--nats-port",
    type=int,
    default=None,
    help="Port to listen on (default: last one, or any free).",
)
@refusals
def nats(nats_port: int | None, **kw: Any) -> None:
    """The embedded nats-server alone, in the foreground, until Ctrl-C/SIGTERM."""
    cfg = resolve(kw, nats_port=nats_port)
    setup_logging(cfg.log_level)
    server = _start_embedded(cfg)
    try:
        click.echo(
            f"nats-server ready at {server.url} (store {server.dir / 'jetstream'}, log {server.log_path})"
        )
        run(_until_signalled(lambda: _watch(server)))
    finally:
        server.stop()


async def _watch(server: EmbeddedServer) -> None:
    """Return only by failing, when the server exits on its own.

    Waits on a pidfd (readable once the process exits), not on
    `to_thread(proc.wait)`: a thread blocked in wait() can't be cancelled, and
    asyncio.run would wait for it forever on the way out.
    """
    assert server.proc is not None
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    pidfd = os.pidfd_open(server.proc.pid)
    loop.add_reader(pidfd, exited.set)
    try:
        await exited.wait()
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    status = server.proc.wait()
    raise ServerError(f"nats-server exited with status {status}; see {server.log_path}")


@main.command()
@common_options
@refusals
def projector(**kw: Any) -> None:
    """Project the hive's stream into <state>/events.sqlite, forever."""
    cfg = resolve(kw)
    setup_logging(cfg.log_level)
    run(_until_signalled(lambda: run_projector(cfg)))


@main.command()
@common_options
@click.option(
    "--agent", "agents", multiple=True, metavar="NAME", help="Also make credentials for this agent."
)
@refusals
def credentials(agents: tuple[str, ...], **kw: Any) -> None:
    """Generate missing NATS credentials and the server's auth.conf (idempotent)."""
    cfg = resolve(kw)
    state = state_path(cfg)
    path = auth.write_auth_conf(state, cfg.hive, (*cfg.agents, *agents))
    for role in auth.known_roles(state, agents):
        click.echo(f"{role}\t{auth.credentials_path(state, role)}")
    click.echo(f"auth.conf\t{path}")
    if reload_running(state):
        click.echo("the running embedded nats-server reloaded its users")
