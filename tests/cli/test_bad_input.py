"""Bad input never ends in a traceback: one line on stderr and exit 1 (2 for usage).

Each command runs as a real process from the venv's `bin/` (what a user runs),
or through click's `CliRunner` where a process adds nothing. Cases that need
another user (a directory this user may not search) or a read-only mount run
only as root, and are skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
import click.testing
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import errors as js_errors

from hyperhive.bus.records import subject_for
from hyperhive.cli.common import refusals
from hyperhive.config import HiveConfig, load_config
from hyperhive.errors import ConfigError
from hyperhive.eventlog.store import EventLog, StreamMessage
from hyperhive.events import encode_event
from hyperhive.statedir import StateDir
from hyperhive.timefmt import parse_time
from tests.cli.test_hive_events_helpers import (  # noqa: F401 - drop_streams is a fixture
    drop_streams,
    publish,
    started,
)
from tests.conftest import cfg_env

BIN = Path(sys.executable).parent
HIVE_EVENTS = str(BIN / "hive-events")
HYPERHIVE = str(BIN / "hyperhive")
HIVE = "probe"
TIMEOUT = 30.0
SQLITE_MAX = 2**63 - 1
NOBODY = 65534

OUT_OF_RANGE = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")
HUGE_SEQS = (str(2**64), str(10**30))


# ---------------------------------------------------------------- helpers


def bare_env(state: Path, **extra: str) -> dict[str, str]:
    """No HYPERHIVE_* from the test's own environment, no config file, this state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(
        HYPERHIVE_STATE_DIR=str(state),
        HYPERHIVE_CONFIG=os.devnull,
        HYPERHIVE_HIVE=HIVE,
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def run(
    env: dict[str, str],
    *argv: str,
    stdout: int | IO[Any] = subprocess.PIPE,
    cwd: Path | None = None,
    as_nobody: bool = False,
) -> subprocess.CompletedProcess[str]:
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run(
        [*(prefix if as_nobody else []), *argv],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


async def arun(
    env: dict[str, str], *argv: str, stdout: int | IO[Any] = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    """`run` from an async test: the test's loop (and its NATS connection) keeps running."""
    return await asyncio.to_thread(run, env, *argv, stdout=stdout)


def one_line_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, no traceback, exactly one `error: ...` line on stderr (holding `needles`)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, line
    return line


def quiet_success(proc: subprocess.CompletedProcess[str]) -> None:
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout in ("", None)


def make_log(path: Path, hive: str = HIVE, n: int = 3) -> Path:
    """An event log of `n` turn.started events, written without NATS."""
    log = EventLog(path, hive)
    try:
        events = [started(hive, n=i) for i in range(n)]
        log.append(
            [StreamMessage(i + 1, subject_for(e), encode_event(e)) for i, e in enumerate(events)]
        )
    finally:
        log.close()
    return path


@pytest.fixture
def log_state(tmp_path: Path) -> Path:
    """A state dir holding an event log of three events."""
    state = tmp_path / "state"
    make_log(StateDir(state).events_db)
    return state


@contextlib.contextmanager
def dev_full() -> Iterator[IO[str]]:
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("/dev/full is not the full device here")
    with open("/dev/full", "w") as f:
        yield f


def is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A world-searchable temp dir (the test's tmp_path is root's alone), and a check
    that user nobody can run our commands at all; skipped unless we are root."""
    if not is_root():
        pytest.skip("needs root: to run a command as another user (chmod denies root nothing)")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run a command as user nobody")
    base = Path(tempfile.mkdtemp(prefix="hyperhive-nobody-"))
    try:
        base.chmod(0o755)
        probe = run(bare_env(base / "state"), HIVE_EVENTS, "--version", cwd=base, as_nobody=True)
        if probe.returncode != 0:
            pytest.skip(f"user nobody can't run {HIVE_EVENTS}: {probe.stderr.strip()}")
        yield base
    finally:
        for p in (base, *base.rglob("*")):
            with contextlib.suppress(OSError):
                if p.is_dir() and not p.is_symlink():
                    p.chmod(0o700)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` bind-mounted read-only on itself (root only), unmounted afterwards."""
    if not is_root() or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) for a read-only bind mount")
    bind = subprocess.run(
        ["mount", "--bind", str(path), str(path)], capture_output=True, check=False
    )
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        ro = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(path)], capture_output=True, check=False
        )
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.decode().strip()}")
        yield
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, check=False)


# ---------------------------------------------------------------- 1. times with no UTC equivalent


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_a_time_with_no_utc_equivalent_is_out_of_range(text: str) -> None:
    with pytest.raises(ConfigError, match="out of range"):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T14:00:00+14:00", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("9999-12-31T09:59:59-14:00", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2026-01-31T12:00+01:00", datetime(2026, 1, 31, 11, 0, tzinfo=UTC)),
    ],
)
def test_the_extreme_times_that_have_a_utc_equivalent_are_still_accepted(
    text: str, utc: datetime
) -> None:
    assert parse_time(text) == utc


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_export_since_a_time_with_no_utc_equivalent_is_one_line(log_state: Path, text: str) -> None:
    proc = run(bare_env(log_state), HIVE_EVENTS, "export", "--since", text)
    one_line_failure(proc, "out of range", text)
    assert proc.stdout == ""


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
@pytest.mark.parametrize("text", OUT_OF_RANGE)
async def test_tail_since_a_time_with_no_utc_equivalent_is_one_line(
    cfg: HiveConfig, nc: Client, text: str
) -> None:
    await publish(nc.jetstream(), [started(cfg.hive)])
    proc = await arun(cfg_env(cfg), HIVE_EVENTS, "tail", "--since", text)
    one_line_failure(proc, "out of range", text)
    assert proc.stdout == ""


# ---------------------------------------------------------------- 2. a --from-seq past sqlite's integers


@pytest.mark.parametrize("seq", [*HUGE_SEQS, str(SQLITE_MAX)])
def test_export_from_a_seq_past_every_row_exports_nothing(log_state: Path, seq: str) -> None:
    quiet_success(run(bare_env(log_state), HIVE_EVENTS, "export", "--from-seq", seq))


def test_export_from_a_huge_seq_into_a_file_writes_an_empty_file(
    log_state: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out.ndjson"
    proc = run(
        bare_env(log_state),
        HIVE_EVENTS,
        "export",
        "--from-seq",
        HUGE_SEQS[0],
        "--output",
        str(target),
    )
    assert (proc.returncode, "Traceback" in proc.stderr) == (0, False), proc.stderr
    assert target.read_text() == ""


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
@pytest.mark.parametrize("seq", HUGE_SEQS)
async def test_tail_from_a_huge_seq_prints_nothing_like_export(
    cfg: HiveConfig, nc: Client, seq: str
) -> None:
    await publish(nc.jetstream(), [started(cfg.hive)])
    quiet_success(await arun(cfg_env(cfg), HIVE_EVENTS, "tail", "--from-seq", seq))


# ---------------------------------------------------------------- 3. a state dir that is not a dir


@pytest.mark.parametrize(
    "argv",
    [
        (HYPERHIVE, "up"),
        (HYPERHIVE, "nats"),
        (HYPERHIVE, "credentials"),
        (HIVE_EVENTS, "replay"),
    ],
    ids=lambda a: " ".join(Path(x).name for x in a),
)
def test_a_state_dir_that_is_a_regular_file_is_one_line(
    tmp_path: Path, argv: tuple[str, str]
) -> None:
    state = tmp_path / "state"
    state.write_text("not a dir\n")
    proc = run(bare_env(state), *argv)
    one_line_failure(proc, str(state), "not a directory")
    assert state.read_text() == "not a dir\n"


def test_a_state_dir_under_a_regular_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    one_line_failure(
        run(bare_env(state), HYPERHIVE, "credentials"), "cannot create the state dir", str(state)
    )


def test_replay_with_no_nats_creates_neither_the_state_dir_nor_a_log(tmp_path: Path) -> None:
    state = tmp_path / "missing"
    proc = run(bare_env(state), HIVE_EVENTS, "replay")
    one_line_failure(proc, "hyperhive up")
    assert not state.exists(), sorted(p.name for p in state.rglob("*"))


def test_replay_into_a_given_log_with_no_nats_creates_no_file(tmp_path: Path) -> None:
    target = tmp_path / "logs" / "copy.sqlite"
    proc = run(bare_env(tmp_path / "missing"), HIVE_EVENTS, "replay", "--output", str(target))
    one_line_failure(proc, "hyperhive up")
    assert not target.parent.exists()


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
async def test_replay_with_nats_still_creates_a_missing_state_dir_private(
    cfg: HiveConfig, nc: Client, tmp_path: Path
) -> None:
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(2)])
    state = tmp_path / "fresh" / "state"
    creds = StateDir(Path(cfg.state_dir)).credentials_file("operator")
    env = {**cfg_env(cfg), "HYPERHIVE_STATE_DIR": str(state)}
    env["HYPERHIVE_NATS_CREDENTIALS"] = str(creds)
    proc = await arun(env, HIVE_EVENTS, "replay")
    assert proc.returncode == 0, proc.stderr
    assert "replayed 2 events" in proc.stdout
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert StateDir(state).events_db.is_file()


def test_ensure_makes_the_state_dir_private_with_its_parents(tmp_path: Path) -> None:
    paths = StateDir(tmp_path / "a" / "b" / "state")
    assert paths.ensure() == paths
    assert stat.S_IMODE(paths.root.stat().st_mode) == 0o700
    paths.ensure()  # again: nothing to do
    assert paths.root.is_dir()


def test_ensure_and_check_refuse_a_file_without_touching_it(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("x")
    for method in (StateDir(tmp_path / "state").ensure, StateDir(tmp_path / "state").check):
        with pytest.raises(ConfigError, match="is not a directory"):
            method()
    assert (tmp_path / "state").read_text() == "x"


def test_check_creates_nothing(tmp_path: Path) -> None:
    StateDir(tmp_path / "missing").check()
    assert not (tmp_path / "missing").exists()


# ---------------------------------------------------------------- 4. an unreadable config location


def test_an_implicit_config_location_that_cannot_be_searched_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "xdg"
    candidate = xdg / "hyperhive" / "hive.toml"
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:
        if self == candidate:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_is_file(self)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Path, "is_file", is_file)
    with pytest.raises(ConfigError, match=r"cannot read config .*hive\.toml: Permission denied"):
        load_config(env={"XDG_CONFIG_HOME": str(xdg)})


def test_an_unreadable_implicit_config_is_one_line_naming_it(nobody_dir: Path) -> None:
    xdg = nobody_dir / "xdg"
    (xdg / "hyperhive").mkdir(parents=True)
    (xdg / "hyperhive" / "hive.toml").write_text('hive = "mine"\n')
    xdg.chmod(0o000)
    env = bare_env(nobody_dir / "state", XDG_CONFIG_HOME=str(xdg))
    del env["HYPERHIVE_CONFIG"]
    proc = run(env, HIVE_EVENTS, "tail", cwd=nobody_dir, as_nobody=True)
    one_line_failure(proc, "cannot read config", str(xdg / "hyperhive" / "hive.toml"))


def test_an_unreadable_explicit_config_is_one_line_naming_it(nobody_dir: Path) -> None:
    conf = nobody_dir / "private" / "hive.toml"
    conf.parent.mkdir()
    conf.write_text('hive = "mine"\n')
    conf.parent.chmod(0o000)
    env = bare_env(nobody_dir / "state", HYPERHIVE_CONFIG=str(conf))
    proc = run(env, HIVE_EVENTS, "tail", cwd=nobody_dir, as_nobody=True)
    one_line_failure(proc, "cannot read config", str(conf))


def test_a_state_dir_this_user_may_not_write_is_one_line(nobody_dir: Path) -> None:
    state = nobody_dir / "state"
    state.mkdir(mode=0o755)  # root's: nobody may look, not write
    proc = run(bare_env(state), HYPERHIVE, "credentials", cwd=nobody_dir, as_nobody=True)
    one_line_failure(proc, "cannot write in the state dir", "Permission denied")


# ---------------------------------------------------------------- 5. the safety net in `refusals`


def _command(exc: BaseException) -> click.Command:
    @click.command()
    @refusals
    def boom() -> None:
        raise exc

    return boom


def _invoke(exc: BaseException) -> click.testing.Result:
    return click.testing.CliRunner().invoke(_command(exc), [])


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (sqlite3.OperationalError("disk I/O error"), "error: event log: disk I/O error"),
        (
            sqlite3.DatabaseError("file is not a database"),
            "error: event log: file is not a database",
        ),
        (
            OSError(errno.EIO, os.strerror(errno.EIO), "/some/file"),
            f"error: /some/file: {os.strerror(errno.EIO)}",
        ),
        (
            OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/a", None, "/b"),
            f"error: /a -> /b: {os.strerror(errno.EXDEV)}",
        ),
        (ConnectionResetError("the peer left"), "error: the peer left"),
        (
            js_errors.ServiceUnavailableError(
                code=503, err_code=10008, description="JetStream system temporarily unavailable"
            ),
            "error: JetStream is not answering on this NATS (JetStream system temporarily "
            "unavailable, 503/10008): a cluster still electing its leaders, or fewer than a "
            "quorum of its nodes up; try again in a moment",
        ),
        (
            js_errors.BadRequestError(code=400, err_code=10052, description="bad\nrequest"),
            "error: JetStream refused: bad request (400/10052)",
        ),
        (
            nats.errors.TimeoutError(),
            "error: NATS did not answer in time: a cluster still electing its leaders, or "
            "fewer than a quorum of its nodes up; try again in a moment",
        ),
        (
            nats.errors.NoRespondersError(),
            "error: nothing answered on NATS (no responders): JetStream is not enabled on "
            "this server, or the service that answers is not running",
        ),
        (nats.errors.ConnectionClosedError(), "error: NATS: connection closed"),
        (
            ValueError("two\nlines"),
            "error: internal error: ValueError: two lines "
            "(run with HYPERHIVE_LOG_LEVEL=debug for the traceback)",
        ),
        (
            ExceptionGroup("several", [RuntimeError("x")]),
            "error: internal error: ExceptionGroup: several (1 sub-exception) "
            "(run with HYPERHIVE_LOG_LEVEL=debug for the traceback)",
        ),
    ],
    ids=[
        "sqlite-operational",
        "sqlite-database",
        "os-error",
        "os-error-rename",
        "os-error-no-name",
        "jetstream-503",
        "jetstream-400",
        "nats-timeout",
        "nats-no-responders",
        "nats-closed",
        "value-error",
        "exception-group",
    ],
)
def test_whatever_escapes_a_command_is_one_line_and_exit_1(exc: Exception, line: str) -> None:
    result = _invoke(exc)
    assert result.exit_code == 1, (result.exception, result.stderr)
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""


def test_an_internal_error_logs_its_traceback_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("DEBUG", logger="hyperhive"):
        result = _invoke(KeyError("k"))
    assert result.exit_code == 1
    (record,) = [r for r in caplog.records if r.levelname == "DEBUG"]
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


BOOM = textwrap.dedent(
    """
    import click
    from hyperhive.cli.common import refusals

    @click.command()
    @refusals
    def boom() -> None:
        raise LookupError("no such thing")

    boom()
    """
)


@pytest.mark.parametrize("level", ["", "info", "debug"])
def test_an_internal_error_in_a_process_is_one_line_unless_debug(
    tmp_path: Path, level: str
) -> None:
    env = bare_env(tmp_path, HYPERHIVE_LOG_LEVEL=level)
    proc = run(env, sys.executable, "-c", BOOM)
    last = "error: internal error: LookupError: no such thing (run with HYPERHIVE_LOG_LEVEL=debug"
    if level != "debug":
        assert one_line_failure(proc).startswith(last)
        return
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "\nLookupError: no such thing\n" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(last)


def test_a_usage_error_raised_inside_a_command_is_still_clicks_exit_2() -> None:
    result = _invoke(click.UsageError("give one"))
    assert result.exit_code == 2
    assert "Usage:" in result.stderr
    assert "Error: give one" in result.stderr


def test_tail_refusing_since_with_from_seq_is_still_exit_2(tmp_path: Path) -> None:
    proc = run(bare_env(tmp_path), HIVE_EVENTS, "tail", "--since", "1m", "--from-seq", "1")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Usage:" in proc.stderr


@pytest.mark.parametrize(
    ("exc", "code", "err"),
    [
        (click.BadParameter("nope"), 2, "Invalid value: nope"),
        (click.ClickException("said by click"), 1, "Error: said by click"),
        (click.Abort(), 1, "Aborted!"),
        (click.exceptions.Exit(3), 3, ""),
        (SystemExit(4), 4, ""),
        (KeyboardInterrupt(), 130, ""),
    ],
    ids=["bad-parameter", "click-exception", "abort", "exit", "system-exit", "ctrl-c"],
)
def test_click_exits_and_interrupts_pass_through_the_net(
    exc: BaseException, code: int, err: str
) -> None:
    result = _invoke(exc)
    assert result.exit_code == code, (result.exception, result.stderr)
    assert err in result.stderr
    assert "internal error" not in result.stderr


# ---------------------------------------------------------------- 6. read-only state, unusable logs


def test_credentials_in_a_read_only_state_dir_is_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with read_only(state):
        proc = run(bare_env(state), HYPERHIVE, "credentials")
    one_line_failure(proc, str(state), "Read-only file system")


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _zero_length(path: Path) -> None:
    path.write_bytes(b"")


def _a_directory(path: Path) -> None:
    path.mkdir()


def _a_text_file(path: Path) -> None:
    path.write_text("this is not a database\n" * 100)


def _another_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.close()


UNUSABLE_LOGS = [_random_bytes, _zero_length, _a_directory, _a_text_file, _another_database]


@pytest.fixture(params=UNUSABLE_LOGS, ids=lambda f: f.__name__.strip("_"))
def bad_log_state(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    request.param(StateDir(state).events_db)
    return state


@pytest.mark.parametrize("argv", [("export",), ("verify", "--no-stream")], ids=" ".join)
def test_an_unusable_event_log_is_one_line(bad_log_state: Path, argv: tuple[str, ...]) -> None:
    proc = run(bare_env(bad_log_state), HIVE_EVENTS, *argv)
    one_line_failure(proc, str(StateDir(bad_log_state).events_db))


@pytest.mark.nats
@pytest.mark.parametrize("argv", [("stats",), ("verify",)], ids=" ".join)
def test_an_unusable_event_log_is_one_line_with_nats_too(
    cfg: HiveConfig, argv: tuple[str, ...]
) -> None:
    log = StateDir(Path(cfg.state_dir)).events_db
    for make in UNUSABLE_LOGS:
        if log.is_dir():
            log.rmdir()
        else:
            log.unlink(missing_ok=True)
        make(log)
        one_line_failure(run(cfg_env(cfg), HIVE_EVENTS, *argv), str(log))


# ---------------------------------------------------------------- 7. a full disk on stdout


def test_export_to_a_full_device_is_one_line(log_state: Path) -> None:
    with dev_full() as full:
        proc = run(bare_env(log_state), HIVE_EVENTS, "export", stdout=full)
    one_line_failure(proc, "No space left on device")


def test_verify_to_a_full_device_is_one_line(log_state: Path) -> None:
    with dev_full() as full:
        proc = run(bare_env(log_state), HIVE_EVENTS, "verify", "--no-stream", stdout=full)
    one_line_failure(proc, "No space left on device")


@pytest.mark.nats
@pytest.mark.usefixtures("drop_streams")
@pytest.mark.parametrize("argv", [("tail",), ("tail", "-o", "json"), ("stats",)], ids=" ".join)
async def test_tail_and_stats_to_a_full_device_are_one_line(
    cfg: HiveConfig, nc: Client, argv: tuple[str, ...]
) -> None:
    await publish(nc.jetstream(), [started(cfg.hive, n=i) for i in range(3)])
    with dev_full() as full:
        proc = await arun(cfg_env(cfg), HIVE_EVENTS, *argv, stdout=full)
    one_line_failure(proc, "No space left on device")
