"""`hive-events`: read a hive's events: tail, replay, export, verify, stats.

`tail` reads the JetStream stream (as the `operator` NATS user); `export` and
`stats` read the sqlite event log that the projector (or `replay`) writes;
`verify` checks that log against itself and against the stream.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
import msgspec

from hyperhive import __version__
from hyperhive.bus import tail as reader
from hyperhive.bus.connect import open_reader
from hyperhive.bus.filters import EventFilter
from hyperhive.cli import render
from hyperhive.cli.common import F, common_options, fail, refusals, resolve, run
from hyperhive.config import HiveConfig
from hyperhive.core.projection import PROJECTIONS
from hyperhive.errors import ConfigError, OutputFailed
from hyperhive.eventlog import query
from hyperhive.eventlog.projector import DURABLE, eventlog_path
from hyperhive.eventlog.replay import run_replay
from hyperhive.eventlog.store import EventLog
from hyperhive.eventlog.verify import run_verify
from hyperhive.names import ALL_HIVES
from hyperhive.statedir import StateDir
from hyperhive.timefmt import parse_time

DEFAULT_LINES = 10


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hive-events")
def main() -> None:
    """Read a hive's events: follow the stream, rebuild and check the event log."""


# ---------------------------------------------------------------- plumbing


def _one_hive(cfg: HiveConfig, command: str) -> str:
    if cfg.hive == ALL_HIVES:
        raise ConfigError(f"{command} works on one hive at a time: pass --hive NAME")
    return cfg.hive


def _log_path(cfg: HiveConfig, given: str | None) -> Path:
    return Path(given).expanduser() if given else eventlog_path(cfg)


def _since(text: str | None) -> datetime | None:
    return parse_time(text) if text is not None else None


kind_option = click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="GLOB",
    help="Only events of this kind; a glob like 'turn.*' or 'turn.fin*'. Repeatable.",
)
agent_option = click.option(
    "--agent",
    "agents",
    multiple=True,
    metavar="NAME",
    help="Only events of this agent ('_' = hive-wide), including messages it sent "
    "or received. Repeatable.",
)
since_option = click.option(
    "--since",
    metavar="DURATION|TIMESTAMP",
    default=None,
    help="Start at this time: a duration ago (10m, 2h, 7d) or an ISO 8601 time (UTC "
    "unless it has a zone).",
)
from_seq_option = click.option(
    "--from-seq",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Start at this stream sequence.",
)


def log_option(verb: str) -> Callable[[F], F]:
    return click.option(
        "--log",
        "log_path",
        metavar="PATH",
        default=None,
        help=f"The sqlite event log to {verb} (default <state-dir>/events.sqlite).",
    )


def format_option(meaning: str) -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=meaning,
    )


# ---------------------------------------------------------------- tail


@dataclass(frozen=True)
class TailOptions:
    filter: EventFilter
    lines: int | None = None  # None: default (10), or everything with since/from_seq
    follow: bool = False
    since: datetime | None = None
    from_seq: int | None = None
    count: int | None = None
    fmt: str = "text"


async def run_tail(cfg: HiveConfig, opts: TailOptions, out: IO[str] | None = None) -> int:
    """Print the backlog, then (with follow) live events; returns how many were printed."""
    printer = render.Printer(opts.fmt, cfg.hive == ALL_HIVES, opts.count, out)
    last = opts.lines
    if last is None and opts.since is None and opts.from_seq is None:
        last = DEFAULT_LINES
    async with open_reader(cfg, "tail") as nc:
        streams = await reader.resolve_streams(nc, cfg.hive)
        backlog = await reader.read_backlog(
            nc, streams, opts.filter, last=last, since=opts.since, from_seq=opts.from_seq
        )
        for rec in backlog:
            if not printer.emit(rec):
                return printer.printed
        if not opts.follow or printer.done:
            return printer.printed
        async with contextlib.aclosing(reader.follow_streams(nc, streams, opts.filter)) as live:
            async for rec in live:
                if not printer.emit(rec):
                    break
    return printer.printed


@main.command()
@common_options
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Print the last N matching events (default 10). With --since/--from-seq every "
    "event from there is printed, unless -n is given too.",
)
@click.option("-f", "--follow", is_flag=True, help="Then keep printing new events as they come.")
@since_option
@from_seq_option
@agent_option
@kind_option
@format_option("text: one readable line per event; json: one JSON object per line (ndjson).")
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Exit after printing N events (the backlog counts too).",
)
@refusals
def tail(
    lines: int | None,
    follow: bool,
    since: str | None,
    from_seq: int | None,
    agents: tuple[str, ...],
    kinds: tuple[str, ...],
    fmt: str,
    count: int | None,
    **kw: Any,
) -> None:
    """Print the last events of a hive's stream, like tail(1); -f follows live.

    Each text line is the event's UTC time, the hive (with --hive '*'), the
    agent ('_' for hive-wide), the kind and its key fields; a kind this build
    does not know shows as `kind (unknown)`, a message that is not a valid event
    as a `! malformed` line with its sequence and the reason, and reading goes
    on. -o json prints each event's fields (as on the wire) plus `seq` and
    `subject`, one object per line.

    --hive '*' reads every hive on the server (the streams that exist when tail
    starts), merged by time. Filters go to NATS as subject filters where they can
    and are always checked exactly. --since selects by when the stream stored an
    event. Ctrl-C exits with status 130.
    """
    if since is not None and from_seq is not None:
        raise click.UsageError("--since and --from-seq both say where to start: give one")
    cfg = resolve(kw)
    flt = EventFilter(hive=cfg.hive, agents=agents, kinds=kinds)
    opts = TailOptions(flt, lines, follow, _since(since), from_seq, count, fmt)
    run(run_tail(cfg, opts))


# ---------------------------------------------------------------- replay


@main.command()
@common_options
@click.option(
    "--output",
    metavar="PATH",
    default=None,
    help="The sqlite event log to write (default <state-dir>/events.sqlite).",
)
@refusals
def replay(output: str | None, **kw: Any) -> None:
    """Rebuild the event log and c0re's state tables from the stream, from the log's position on.

    Resumable and idempotent: run it again and it appends only what is new.
    Replaying into two fresh files gives identical tables.
    """
    cfg = resolve(kw)
    _one_hive(cfg, "replay")
    if output is None:  # the log goes in the state dir: created once NATS answers
        StateDir.at(cfg.state_dir).check()
    path = _log_path(cfg, output)
    with _progress() as bar:
        result = run(run_replay(cfg, path, bar, projections=PROJECTIONS))
    first = result.start_position + 1
    wrote = result.written > 0 and result.position >= first
    span = f"seq {first}..{result.position}" if wrote else "nothing new"
    # Another writer (the projector, a second replay) may have moved the log on
    # meanwhile: the stream then holds at least what the log does.
    of = max(result.stream_last_seq, result.position)
    click.echo(
        f"replayed {result.written} events ({span}) of hive {cfg.hive} into {path}: "
        f"position {result.position} of {of}, "
        f"{result.error_rows} kept with an error"
    )


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int, int], Any]]:
    """A progress bar on stderr, created once the total is known."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            bar = click.progressbar(length=max(total, 1), label="replaying", file=sys.stderr)
            state["bar"] = bar.__enter__()
        state["bar"].update(done)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)


# ---------------------------------------------------------------- export


def run_export(
    log: EventLog,
    flt: EventFilter,
    out: IO[str],
    since: datetime | None = None,
    from_seq: int | None = None,
) -> int:
    """Write matching rows of the log as ndjson; returns how many."""
    n = 0
    for rec in query.read_log(log, flt, since, from_seq):
        render.write_line(out, render.json_line(rec), flush=False)
        n += 1
    return n


def _export_target(output: str, log_file: Path) -> Path:
    """Where `--output` writes, refusing the log itself (and its -wal/-shm files)."""
    target = Path(output).expanduser()
    own = {
        log_file.resolve(),
        *(log_file.resolve().with_name(log_file.name + s) for s in ("-wal", "-shm")),
    }
    if target.resolve() in own:
        raise ConfigError(f"--output {output} is the event log being exported: write elsewhere")
    return target


@main.command()
@common_options
@log_option("read")
@click.option(
    "--output", metavar="PATH|-", default="-", show_default=True, help="Where to write the ndjson."
)
@since_option
@from_seq_option
@agent_option
@kind_option
@refusals
def export(
    log_path: str | None,
    output: str,
    since: str | None,
    from_seq: int | None,
    agents: tuple[str, ...],
    kinds: tuple[str, ...],
    **kw: Any,
) -> None:
    """Write the event log (not the stream) as ndjson, one event per line.

    Fields as in `tail -o json`. Rows that are not valid events are exported
    too, with an `error` field and the `raw` message. A file given with
    --output is written whole or not at all (a temp file, then a rename), and
    never over the log being read.
    """
    cfg = resolve(kw)
    hive = _one_hive(cfg, "export")
    flt = EventFilter(hive=hive, agents=agents, kinds=kinds)
    start = _since(since)
    log_file = _log_path(cfg, log_path)
    target = None if output == "-" else _export_target(output, log_file)
    log = EventLog(log_file, hive, readonly=True)
    try:
        if target is None:
            run_export(log, flt, sys.stdout, start, from_seq)
            render.flush(sys.stdout)
            return
        n = _export_to_file(log, flt, target, start, from_seq)
        click.echo(f"exported {n} events to {target}", err=True)
    finally:
        log.close()


def _export_to_file(
    log: EventLog, flt: EventFilter, target: Path, since: datetime | None, from_seq: int | None
) -> int:
    """A regular file is written whole or not at all; a device or a pipe is written to."""
    if target.exists() and not target.is_file():  # /dev/stdout, a fifo: nothing to replace
        try:
            with open(target, "w", encoding="utf-8") as f:
                n = run_export(log, flt, f, since, from_seq)
                render.flush(f)
        except OSError as exc:
            raise OutputFailed(f"cannot write {target}: {exc.strerror or exc}") from None
        return n
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            n = run_export(log, flt, f, since, from_seq)
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputFailed(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return n


# ---------------------------------------------------------------- verify


@main.command()
@common_options
@log_option("check")
@click.option(
    "--no-stream", is_flag=True, help="Check the hash chain only; don't compare with the stream."
)
@refusals
def verify(log_path: str | None, no_stream: bool, **kw: Any) -> None:
    """Check the event log's hash chain, and that it agrees with the stream.

    Exits 1 naming the first bad sequence: an edited, deleted or reordered row,
    or a row that differs from the stream message at the same sequence.
    """
    cfg = resolve(kw)
    _one_hive(cfg, "verify")
    path = _log_path(cfg, log_path)
    report = run(run_verify(cfg, path, stream=not no_stream))
    problem = report.first_problem
    if problem is not None:
        fail(str(problem))
    span = f"seq {report.first_seq}..{report.last_seq}" if report.rows else "empty"
    line = f"ok: {report.rows} rows ({span}), hash chain intact"
    if not no_stream:
        line += (
            f"; {report.stream_checked} agree with the stream"
            f" ({report.stream_expired} expired from it, {report.stream_lag} not yet in the log)"
        )
    click.echo(line)


# ---------------------------------------------------------------- stats


async def _stats(cfg: HiveConfig, hive: str, path: Path) -> query.HiveStats:
    async with open_reader(cfg, "stats") as nc:
        return await query.collect_stats(nc, hive, path)


@main.command()
@common_options
@log_option("count")
@format_option("text, or one JSON object.")
@refusals
def stats(log_path: str | None, fmt: str, **kw: Any) -> None:
    """Counts per kind and per agent, time span, stream state, lag, projector backlog."""
    cfg = resolve(kw)
    hive = _one_hive(cfg, "stats")
    s = msgspec.to_builtins(run(_stats(cfg, hive, _log_path(cfg, log_path))))
    if fmt == "json":
        click.echo(render.dumps(s))
    else:
        click.echo("\n".join(render.stats_lines(s, DURABLE)))
