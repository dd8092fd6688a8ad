"""What every command shares: the common options, config resolution, error mapping.

Exit codes: 0 ok, 1 refused or failed (one line on stderr), 2 usage (click's own).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from hyperhive.config import HiveConfig, load_config
from hyperhive.errors import HyperhiveError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

COMMON_KEYS = ("nats_url", "hive", "state_dir", "config_path")


def common_options(f: F) -> F:
    """--nats, --hive, --state-dir, --config (each also from its HYPERHIVE_* variable)."""
    f = click.option(
        "--config",
        "config_path",
        metavar="PATH",
        default=None,
        help="Config file (default ./hive.toml, then $XDG_CONFIG_HOME/hyperhive/hive.toml). "
        "Env: HYPERHIVE_CONFIG.",
    )(f)
    f = click.option(
        "--state-dir",
        "state_dir",
        metavar="PATH",
        default=None,
        help="State dir (default ./.hyperhive). Env: HYPERHIVE_STATE_DIR.",
    )(f)
    f = click.option(
        "--hive",
        "hive",
        metavar="NAME",
        default=None,
        help="Hive name (default 'default'). Env: HYPERHIVE_HIVE.",
    )(f)
    f = click.option(
        "--nats",
        "nats_url",
        metavar="URL",
        default=None,
        help="NATS URL (default: the state dir's embedded server). Env: HYPERHIVE_NATS_URL.",
    )(f)
    return f


def resolve(kwargs: dict[str, Any], **extra: Any) -> HiveConfig:
    """Pop the common options from a command's kwargs and resolve the config."""
    flags = {k: kwargs.pop(k, None) for k in ("nats_url", "hive", "state_dir")}
    flags.update(extra)
    return load_config(flags, config_path=kwargs.pop("config_path", None))


def fail(message: str) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(1)


def refusals(f: F) -> F:
    """Map a `HyperhiveError` to exit 1 with its message on one line of stderr."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except HyperhiveError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a broken pipe (`| head`) ends quietly."""
    try:
        return asyncio.run(coro)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
