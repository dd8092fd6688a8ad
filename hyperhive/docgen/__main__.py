"""`python -m hyperhive.docgen [--check] [--root DIR]`: every generated doc file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from hyperhive.docgen import cli, commands, configuration, events, openapi, runner

GENERATED: dict[str, Callable[[], str]] = {
    **events.GENERATED,
    **commands.GENERATED,
    **configuration.GENERATED,
    **cli.GENERATED,
    **openapi.GENERATED,
}


def main(argv: Sequence[str] | None = None) -> int:
    return runner.run(
        "hyperhive.docgen",
        "Generate the docs derived from the code (events, commands, configuration, CLI, web API).",
        GENERATED,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
