"""The CLI reference, `docs/cli.md`, from the click commands themselves.

Every command of `hyperhive`, `hivectl` and `hive-events` gets a section with
its usage line, its help text and a table of its options (click's own help
records, so defaults and choices read exactly as `--help` prints them). A new
option or command shows up the next time this runs, and the test suite fails
until it has.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from hyperhive.cli import hive_events, hivectl
from hyperhive.cli import main as hyperhive_main
from hyperhive.docgen.fields import GENERATED_NOTE

CLI_MD = "docs/cli.md"
PROGRAMS: tuple[tuple[str, click.Command], ...] = (
    ("hyperhive", hyperhive_main.main),
    ("hivectl", hivectl.main),
    ("hive-events", hive_events.main),
)
INTRO = """\
Three console scripts: `hyperhive` runs the hive or one of its parts, `hivectl`
carries the operator's verbs, `hive-events` reads the events. Every command takes
`--nats URL`, `--hive NAME`, `--state-dir PATH` and `--config PATH`, each also
from its `HYPERHIVE_*` variable (see [configuration](configuration.md)).

Exit codes: `0` ok, `1` refused or failed (one line on stderr saying why), `2`
usage error, `130` interrupted (Ctrl-C). The long-running services (`hyperhive up`
and each part it runs: `nats`, `projector`, `c0re`, `dashboard`, `harness`) stop
cleanly on Ctrl-C or SIGTERM, the normal way to stop them, and exit `0`.
"""


def _walk(
    name: str, cmd: click.Command, parent: click.Context | None = None
) -> Iterator[tuple[str, click.Command, click.Context]]:
    ctx = click.Context(cmd, info_name=name, parent=parent, **cmd.context_settings)
    yield ctx.command_path, cmd, ctx
    if isinstance(cmd, click.Group):
        for sub in sorted(cmd.list_commands(ctx)):
            child = cmd.get_command(ctx, sub)
            if child is not None and not child.hidden:
                yield from _walk(sub, child, ctx)


def _text(text: str) -> str:
    """Help text as Markdown: one line, `<`, `>` and `*` escaped outside code spans."""
    parts = " ".join(text.split()).split("`")
    for i in range(0, len(parts), 2):
        for ch in "<>*":
            parts[i] = parts[i].replace(ch, "\\" + ch)
    return "`".join(parts)


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|")


def _help(cmd: click.Command) -> str:
    text = (cmd.help or "").replace("\b", "").strip()
    return "\n\n".join(_text(p) for p in text.split("\n\n") if p.strip())


def _options(cmd: click.Command, ctx: click.Context) -> list[tuple[str, str]]:
    rows = []
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            rows.append((record[0], record[1]))
    return rows


def _section(path: str, cmd: click.Command, ctx: click.Context) -> list[str]:
    depth = path.count(" ")
    out = ["#" * (2 + min(depth, 1)) + f" `{path}`", ""]
    usage = cmd.get_usage(ctx).strip()
    out += ["```", usage, "```", ""]
    text = _help(cmd)
    if text:
        out += [text, ""]
    rows = _options(cmd, ctx)
    if rows:
        out += ["| option | meaning |", "|---|---|"]
        out += [f"| `{_cell(opts)}` | {_cell(meaning)} |" for opts, meaning in rows]
        out.append("")
    if isinstance(cmd, click.Group):
        subs = [c for c in sorted(cmd.list_commands(ctx)) if cmd.get_command(ctx, c)]
        if subs:
            out.append("Commands: " + ", ".join(f"`{s}`" for s in subs) + ".")
        else:
            out.append("No commands yet.")
        out.append("")
    return out


def render_cli_md() -> str:
    """The whole of docs/cli.md."""
    lines = ["# Command-line reference", "", GENERATED_NOTE, "", INTRO]
    for name, cmd in PROGRAMS:
        for path, sub, ctx in _walk(name, cmd):
            lines += _section(path, sub, ctx)
    return "\n".join(lines).rstrip("\n") + "\n"


GENERATED = {CLI_MD: render_cli_md}
