"""`hivectl`: the operator's verbs (agents, spawn, approve, answer, ...).

The verbs arrive with c0re, which answers them; until then this is the group
they will hang off, with the options every command shares.
"""

from __future__ import annotations

from typing import Any

import click

from hyperhive import __version__
from hyperhive.cli.common import common_options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hivectl")
@common_options
def main(**kw: Any) -> None:
    """Operator verbs for a hive (agents, spawn, stop, approve, answer, ...).

    No verbs yet: they arrive with c0re, which carries them out.
    """
