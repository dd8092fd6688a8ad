"""What every command shares: the common options, config resolution, error mapping.

Exit codes: 0 ok, 1 refused or failed (one line on stderr), 2 usage (click's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import select
import signal
import sqlite3
import stat
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
import nats.errors
from nats.js import errors as js_errors

from hyperhive.bus.retry import transient
from hyperhive.config import HiveConfig, load_config
from hyperhive.errors import HyperhiveError, OutputClosed
from hyperhive.service import cancel_until_done

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

COMMON_KEYS = ("nats_url", "hive", "state_dir", "config_path")

log = logging.getLogger("hyperhive")


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


def quiet_exit() -> None:
    """Our reader went away (`| head`): exit 0 without another word.

    Standard output is pointed at /dev/null first, so the interpreter's final
    flush can't fail again.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


def stdout_reader_gone() -> bool:
    """True if standard output is a pipe whose reading end has been closed."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def refusals(f: F) -> F:
    """Map a `HyperhiveError` to exit 1 with its message on one line of stderr; Ctrl-C to 130.

    Whatever else escapes a command ends the same way, never as a traceback: an
    sqlite or OS error as its message, anything else as an internal error (the
    traceback is logged at debug level). Click's own exceptions (usage errors,
    exit 2; `Abort`; `Exit`) pass through to click.
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except HyperhiveError as exc:
            fail(str(exc))
        except OutputClosed:
            quiet_exit()
        except BrokenPipeError as exc:
            # Quiet only when it is our reader that went away (`| head`): any other
            # broken pipe (a helper process we lost) is a failure to say.
            if stdout_reader_gone():
                quiet_exit()
            fail(f"lost a pipe: {exc}")
        except KeyboardInterrupt:
            sys.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except sqlite3.Error as exc:
            fail(f"event log: {exc}")
        except nats.errors.Error as exc:  # JetStream's APIError is one too
            fail(nats_error_line(exc))
        except OSError as exc:
            fail(os_error_line(exc))
        except Exception as exc:
            internal_error(exc)

    return wrapper  # type: ignore[return-value]


def os_error_line(exc: OSError) -> str:
    """`<filename>: <strerror>` (both names of a rename), or the message."""
    what = exc.strerror or str(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what


NOT_READY_HINT = (
    "a cluster still electing its leaders, or fewer than a quorum of its nodes up; "
    "try again in a moment"
)


def nats_error_line(exc: nats.errors.Error) -> str:
    """What a NATS or JetStream failure that outlasted its retries means, on one line."""
    if isinstance(exc, js_errors.APIError):
        what = " ".join((exc.description or type(exc).__name__).split())
        code = f"{exc.code}/{exc.err_code}" if exc.err_code else f"{exc.code}"
        if transient(exc):  # what a leader election looks like
            return f"JetStream is not answering on this NATS ({what}, {code}): {NOT_READY_HINT}"
        return f"JetStream refused: {what} ({code})"
    if isinstance(exc, nats.errors.NoRespondersError):
        return (
            "nothing answered on NATS (no responders): JetStream is not enabled on this "
            "server, or the service that answers is not running"
        )
    if isinstance(exc, nats.errors.TimeoutError):
        return f"NATS did not answer in time: {NOT_READY_HINT}"
    text = " ".join((str(exc) or type(exc).__name__).split())
    return f"NATS: {text.removeprefix('nats: ')}"


def internal_error(exc: Exception) -> None:
    """A bug, not a refusal: one line (exit 1); the traceback at debug level."""
    level = os.environ.get("HYPERHIVE_LOG_LEVEL", "")
    if level.lower() == "debug" and not logging.getLogger().handlers:
        setup_logging(level)  # a command that never set up logging: the hint must work
    log.debug("internal error", exc_info=exc)
    fail(
        f"internal error: {type(exc).__name__}: {exc} "
        "(run with HYPERHIVE_LOG_LEVEL=debug for the traceback)"
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; Ctrl-C stops it (exit 130), always.

    SIGINT cancels the command, again and again until it has ended (a cancel can
    be lost, see `service.cancel_and_wait`), then exits 130. A
    service installs its own SIGINT/SIGTERM handling inside (`run_until_signalled`).
    """
    return asyncio.run(_interruptible(coro))


async def _interruptible(coro: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        cancel_until_done(task)

    if threading.current_thread() is not threading.main_thread():
        return await coro  # signals reach the main thread only (a test runs us in a thread)
    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        return await coro
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
