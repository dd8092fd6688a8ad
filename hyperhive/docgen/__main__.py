"""`python -m hyperhive.docgen [--check] [--root DIR]`: every generated doc file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from hyperhive.docgen import cli, commands, configuration, events, runner

GENERATED: dict[str, Callable[[], str]] = {
    **events.GENERATED,
    **commands.GENERATED,
    **configuration.GENERATED,
    **cli.GENERATED,
}


def main(argv: Sequence[str] | None = None) -> int:
    return runner.run(
        "hyperhive.docgen",
        "Generate the docs that are derived from the code (events, commands, configuration, CLI).",
        GENERATED,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
