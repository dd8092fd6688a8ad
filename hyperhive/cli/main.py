"""`hyperhive`: the whole hive (`up`) or each part alone, as the NixOS module runs them."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from hyperhive import __version__, lockfile, names
from hyperhive.backoff import Backoff
from hyperhive.bus import auth
from hyperhive.bus.connect import nats_state
from hyperhive.bus.server import (
    ClusterNode,
    EmbeddedServer,
    clear_orphan_server,
    reload_running,
    running_nodes,
)
from hyperhive.cli.common import common_options, refusals, resolve, run, setup_logging
from hyperhive.config import HiveConfig
from hyperhive.core.projection import PROJECTIONS
from hyperhive.core.service import run_c0re
from hyperhive.errors import ServerError
from hyperhive.eventlog.projector import run_projector
from hyperhive.procs import describe_status, wait_exit
from hyperhive.service import run_until_signalled
from hyperhive.statedir import StateDir
from hyperhive.web import tokens
from hyperhive.web.service import run_dashboard

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


def _start_embedded(cfg: HiveConfig, node: ClusterNode | None = None) -> EmbeddedServer:
    """Start the state dir's server (or one node of its local cluster); call it holding
    its lock."""
    state = StateDir.at(cfg.state_dir).root
    clear_orphan_server(state, node.name if node else None)
    server = EmbeddedServer(
        state, cfg.hive, port=cfg.nats_port, agents=tuple(cfg.agents), node=node
    )
    server.start()
    return server


SERVER_RESTARTS = 5  # in a row without a healthy minute between them, then `up` gives up
HEALTHY_FOR = 60.0


async def _keep_serving(server: EmbeddedServer) -> None:
    """Restart the embedded server whenever it dies; give up (raise) if it keeps dying.

    Clients reconnect on their own: the server comes back on the same port with
    the same store.
    """
    backoff = Backoff(first=0.2, cap=5.0)
    loop = asyncio.get_running_loop()
    while True:
        assert server.proc is not None
        since = loop.time()
        status = await wait_exit(server.proc)
        if loop.time() - since >= HEALTHY_FOR:
            backoff.reset()
        why = f"nats-server {describe_status(status)}"
        while True:
            if backoff.attempts >= SERVER_RESTARTS:
                raise ServerError(
                    f"{why}, {SERVER_RESTARTS} restarts in a row failed; giving up "
                    f"(see {server.log_path})"
                )
            delay = backoff.next_delay()
            log.error("%s; restarting it in %.1fs (log: %s)", why, delay, server.log_path)
            await asyncio.sleep(delay)
            try:
                server.start()  # from the main thread, so the child dies with us
                break
            except ServerError as exc:
                why = f"nats-server did not come back ({exc})"
        log.warning("nats-server is back at %s", server.url)


@main.command()
@common_options
@click.option("--nats-port", type=int, default=None, help="Port of the embedded nats-server.")
@click.option("--dashboard-port", type=int, default=None, help="Port of the operator dashboard.")
@refusals
def up(nats_port: int | None, dashboard_port: int | None, **kw: Any) -> None:
    """The whole hive on this machine: embedded nats-server (unless --nats), projector, c0re,
    the dashboard and the agents of hive.toml (the manager always)."""
    cfg = resolve(kw, nats_port=nats_port, dashboard_port=dashboard_port)
    paths = StateDir.at(cfg.state_dir).ensure()
    setup_logging(cfg.log_level)
    with lockfile.hold(paths.lock, "hyperhive up"):
        _up(cfg, paths)
    click.echo("hyperhive: stopped", err=True)


def _up(cfg: HiveConfig, paths: StateDir) -> None:
    """`up` holding the state dir's lock."""
    # No server of its own with a URL, another state dir's server, or a local cluster.
    elsewhere = cfg.nats_url or cfg.nats_state_dir or running_nodes(paths.root)
    server = None if elsewhere else _start_embedded(cfg)
    url = cfg.nats_url or (server.url if server else f"the servers of {nats_state(cfg).root}")

    def banner() -> None:
        click.echo(f"hyperhive {__version__}: hive '{cfg.hive}' is up")
        click.echo(
            f"  nats        {url}"
            + ("  (embedded, store in " + str(paths.nats) + ")" if server else "")
        )
        click.echo(f"  event log   {paths.events_db}")
        click.echo(f"  credentials {nats_state(cfg).credentials}")
        click.echo(
            f"  follow it:  {_sibling('hive-events')} tail -f --state-dir {paths.root} "
            f"--hive {cfg.hive}"
        )
        click.echo("  Ctrl-C stops everything.")

    token = tokens.mint(paths, sign_out=False)  # a new one each start; signed-in tabs stay

    def dashboard_banner(url: str) -> None:
        click.echo(f"  dashboard   {url}")
        click.echo(f"  sign in:    {url}login#token={token}")
        click.echo(f"  operator token (for this run): {token}")

    services: list[Callable[[], Awaitable[Any]]] = [
        lambda: run_projector(cfg, projections=PROJECTIONS),
        lambda: run_c0re(cfg),
        lambda: run_dashboard(cfg, on_listening=dashboard_banner),
    ]
    if server is not None:
        embedded = server
        services.append(lambda: _keep_serving(embedded))
    try:
        run(run_until_signalled(*services, on_ready=banner))
    finally:
        if server is not None:
            server.stop()


@main.command()
@common_options
@click.option(
    "--nats-port",
    type=int,
    default=None,
    help="Port to listen on (default: last one, or any free).",
)
@click.option(
    "--cluster",
    "cluster",
    metavar="NAME",
    default=None,
    help="Run one node of the local cluster NAME (with --node, --cluster-port and a "
    "--route per other node): JetStream, the state dir's users on every node.",
)
@click.option(
    "--node",
    metavar="NAME",
    default=None,
    help="This node's name in the cluster; its files go to <state>/nats/nodes/NAME/.",
)
@click.option(
    "--cluster-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="The port this node listens on for the other nodes' routes.",
)
@click.option(
    "--route",
    "routes",
    multiple=True,
    metavar="HOST:PORT",
    help="Another node's cluster port (repeatable).",
)
@refusals
def nats(
    nats_port: int | None,
    cluster: str | None,
    node: str | None,
    cluster_port: int | None,
    routes: tuple[str, ...],
    **kw: Any,
) -> None:
    """The embedded nats-server alone (or one node of a local cluster), in the foreground,
    until Ctrl-C/SIGTERM."""
    cfg = resolve(kw, nats_port=nats_port)
    paths = StateDir.at(cfg.state_dir).ensure()
    member: ClusterNode | None = None
    if cluster is not None:
        if node is None or cluster_port is None:
            raise click.UsageError("--cluster needs --node NAME and --cluster-port PORT")
        member = ClusterNode(cluster=cluster, name=node, port=cluster_port, routes=routes)
    elif node is not None or cluster_port is not None or routes:
        raise click.UsageError("--node, --cluster-port and --route go with --cluster NAME")
    setup_logging(cfg.log_level)
    lock = paths.server_files(member.name if member else None).lock
    lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with lockfile.hold(lock, "hyperhive nats"):
        server = _start_embedded(cfg, member)

        def banner() -> None:
            what = f"node {member.name} of cluster {member.cluster}" if member else "nats-server"
            click.echo(
                f"{what} ready at {server.url} "
                f"(store {server.files.jetstream}, log {server.log_path})"
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
def c0re(**kw: Any) -> None:
    """The hive's decision-maker alone: commands, agents' lifecycle, questions, approvals."""
    cfg = resolve(kw)
    setup_logging(cfg.log_level)
    run(run_until_signalled(lambda: run_c0re(cfg)))


@main.command()
@common_options
@click.option("--agent", "agent", required=True, metavar="NAME", help="The agent it runs for.")
@refusals
def harness(agent: str, **kw: Any) -> None:
    """One agent's turn loop: wait on its inbox, run Claude Code per turn, report every step."""
    from hyperhive.harness.service import run_harness

    cfg = resolve(kw)
    setup_logging(cfg.log_level)
    run(run_until_signalled(lambda: run_harness(cfg, names.check_agent(agent))))


@main.command()
@common_options
@click.option("--agent", "agent", required=True, metavar="NAME", help="The agent it serves.")
@refusals
def mcp(agent: str, **kw: Any) -> None:
    """The agent's MCP tool server on stdio (Claude Code starts it; nothing else on stdout)."""
    from hyperhive.harness.mcp.server import run_mcp

    cfg = resolve(kw)
    setup_logging(cfg.log_level)  # logs go to stderr: stdout is the protocol
    run(run_mcp(cfg, names.check_agent(agent)))


@main.command()
@common_options
@click.option("--dashboard-port", type=int, default=None, help="Port to listen on (default 7000).")
@refusals
def dashboard(dashboard_port: int | None, **kw: Any) -> None:
    """The operator dashboard alone: the hive live in a browser, steered as the operator."""
    cfg = resolve(kw, dashboard_port=dashboard_port)
    paths = StateDir.at(cfg.state_dir).ensure()
    setup_logging(cfg.log_level)
    minted = tokens.ensure(paths)

    def banner(url: str) -> None:
        click.echo(f"dashboard   {url}")
        if minted is not None:
            click.echo(f"  operator token (shown once): {minted}")
        else:
            click.echo("  operator token: `hyperhive token` makes a new one")

    run(run_until_signalled(lambda: run_dashboard(cfg, on_listening=banner)))


@main.command()
@common_options
@refusals
def token(**kw: Any) -> None:
    """A new operator token for the dashboard, printed once and stored hashed; every
    signed-in browser must sign in again."""
    cfg = resolve(kw)
    paths = StateDir.at(cfg.state_dir).ensure()
    click.echo(tokens.mint(paths, sign_out=True))


@main.command()
@common_options
@refusals
def projector(**kw: Any) -> None:
    """Project the hive's stream into <state>/events.sqlite, forever."""
    cfg = resolve(kw)
    setup_logging(cfg.log_level)
    run(run_until_signalled(lambda: run_projector(cfg, projections=PROJECTIONS)))


@main.command()
@common_options
@click.option(
    "--agent", "agents", multiple=True, metavar="NAME", help="Also make credentials for this agent."
)
@refusals
def credentials(agents: tuple[str, ...], **kw: Any) -> None:
    """Generate missing NATS credentials (the hive's operator's, its agents') and the
    server's auth.conf (idempotent); a running server reloads them."""
    cfg = resolve(kw)
    state = nats_state(cfg).ensure().root
    path = auth.write_auth_conf(state, cfg.hive, (*cfg.agents, *agents))
    for who, file in auth.known_credentials(state):
        click.echo(f"{who}\t{file}")
    click.echo(f"auth.conf\t{path}")
    if reload_running(state):
        click.echo("the running embedded nats-server reloaded its users")
