"""`hyperhive`: the whole hive (`up`) or each part alone, as the NixOS module runs them."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from hyperhive import __version__
from hyperhive.bus import auth
from hyperhive.bus.server import EmbeddedServer, ensure_not_running, reload_running
from hyperhive.cli.common import common_options, refusals, resolve, run, setup_logging
from hyperhive.config import HiveConfig
from hyperhive.errors import ServerError
from hyperhive.eventlog.projector import run_projector
from hyperhive.procs import describe_status, wait_exit
from hyperhive.service import run_until_signalled
from hyperhive.statedir import StateDir

log = logging.getLogger("hyperhive")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hyperhive")
def main() -> None:
    """Run a hive of Claude Code agents, or one of its parts."""


def _sibling(script: str) -> str:
    """How to run another of our commands: by name if PATH finds ours, else by path."""
    beside = Path(sys.executable).parent / script
    if shutil.which(script) == str(beside) or not beside.exists():
        return script
    return str(beside)


def _start_embedded(cfg: HiveConfig) -> EmbeddedServer:
    state = StateDir.at(cfg.state_dir).root
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
    paths = StateDir.at(cfg.state_dir)
    url = cfg.nats_url or (server.url if server else "")

    def banner() -> None:
        click.echo(f"hyperhive {__version__}: hive '{cfg.hive}' is up")
        click.echo(
            f"  nats        {url}"
            + ("  (embedded, store in " + str(paths.nats) + ")" if server else "")
        )
        click.echo(f"  event log   {paths.events_db}")
        click.echo(f"  credentials {paths.credentials}")
        click.echo(
            f"  follow it:  {_sibling('hive-events')} tail -f --state-dir {paths.root} "
            f"--hive {cfg.hive}"
        )
        click.echo("  Ctrl-C stops everything.")

    try:
        run(run_until_signalled(lambda: run_projector(cfg), on_ready=banner))
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

    def banner() -> None:
        click.echo(
            f"nats-server ready at {server.url} "
            f"(store {server.paths.jetstream}, log {server.log_path})"
        )

    try:
        run(run_until_signalled(lambda: _watch(server), on_ready=banner))
    finally:
        server.stop()


async def _watch(server: EmbeddedServer) -> None:
    """Return only by failing, when the server exits on its own."""
    assert server.proc is not None
    status = await wait_exit(server.proc)
    raise ServerError(f"nats-server {describe_status(status)}; see {server.log_path}")


@main.command()
@common_options
@refusals
def projector(**kw: Any) -> None:
    """Project the hive's stream into <state>/events.sqlite, forever."""
    cfg = resolve(kw)
    setup_logging(cfg.log_level)
    run(run_until_signalled(lambda: run_projector(cfg)))


@main.command()
@common_options
@click.option(
    "--agent", "agents", multiple=True, metavar="NAME", help="Also make credentials for this agent."
)
@refusals
def credentials(agents: tuple[str, ...], **kw: Any) -> None:
    """Generate missing NATS credentials and the server's auth.conf (idempotent)."""
    cfg = resolve(kw)
    state = StateDir.at(cfg.state_dir).root
    path = auth.write_auth_conf(state, cfg.hive, (*cfg.agents, *agents))
    for role in auth.known_roles(state, agents):
        click.echo(f"{role}\t{auth.credentials_path(state, role)}")
    click.echo(f"auth.conf\t{path}")
    if reload_running(state):
        click.echo("the running embedded nats-server reloaded its users")
