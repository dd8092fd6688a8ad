"""docs/cli.md is generated from the click commands, current, and names everything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from hyperhive.docgen import cli as docgen
from hyperhive.docgen import runner


def cli_main(argv: list[str]) -> int:
    """The docs runner over the CLI page alone."""
    return runner.run("hyperhive.docgen", "the CLI page", docgen.GENERATED, argv)


ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "stale: run `python -m hyperhive.docgen` and commit the result"


def all_commands() -> Iterator[tuple[str, click.Command, click.Context]]:
    for name, cmd in docgen.PROGRAMS:
        yield from docgen._walk(name, cmd)


def test_cli_md_is_current() -> None:
    path = ROOT / docgen.CLI_MD
    assert path.is_file(), f"{docgen.CLI_MD} is missing: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == docgen.render_cli_md(), (
        f"{docgen.CLI_MD} is {REGENERATE}"
    )


def test_check_mode_passes_on_the_committed_doc() -> None:
    assert cli_main(["--check", "--root", str(ROOT)]) == 0


def test_check_mode_fails_naming_a_stale_or_missing_doc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["--check", "--root", str(tmp_path)]) == 1
    assert docgen.CLI_MD in capsys.readouterr().err
    assert cli_main(["--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {docgen.CLI_MD}"]
    assert cli_main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / docgen.CLI_MD).write_text("old\n", encoding="utf-8")
    assert cli_main(["--check", "--root", str(tmp_path)]) == 1
    assert (tmp_path / docgen.CLI_MD).read_text(encoding="utf-8") == "old\n", (
        "--check changes nothing"
    )
    assert cli_main(["--root", str(tmp_path)]) == 0
    assert cli_main(["--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {docgen.CLI_MD}"], (
        "unchanged: not rewritten"
    )


@pytest.mark.parametrize(
    ("path", "cmd", "ctx"), list(all_commands()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_command_and_option_is_in_cli_md(
    path: str, cmd: click.Command, ctx: click.Context
) -> None:
    text = (ROOT / docgen.CLI_MD).read_text(encoding="utf-8")
    heading = "\n" + "#" * (2 + min(path.count(" "), 1)) + f" `{path}`\n"
    assert heading in text
    section = text.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    for param in cmd.get_params(ctx):
        for opt in getattr(param, "opts", []):
            if opt.startswith("-"):
                assert f"{opt}" in section, f"{path}: {opt} is not documented"


def test_the_hive_events_verbs_of_the_architecture_are_all_there() -> None:
    text = (ROOT / docgen.CLI_MD).read_text(encoding="utf-8")
    for verb in ("tail", "replay", "export", "verify", "stats"):
        assert f"### `hive-events {verb}`" in text
    for flag in (
        "-n, --lines N",
        "-f, --follow",
        "--since",
        "--from-seq",
        "--agent",
        "--kind",
        "--count",
    ):
        assert flag in text


def test_cli_md_is_deterministic_names_no_local_paths_and_ends_with_one_newline() -> None:
    first, second = docgen.render_cli_md(), docgen.render_cli_md()
    assert first == second
    assert first.endswith("\n")
    assert not first.endswith("\n\n")
    assert str(ROOT) not in first
    assert str(Path.home()) not in first
