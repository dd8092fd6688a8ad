"""Configuration: `hive.toml` (msgspec, unknown keys refused) < `HYPERHIVE_*` env < flags.

`SETTINGS` is the single list of runtime settings. The CLI's common options, the
environment variables, docs/configuration.md and the NixOS module's environment
are all checked against it by tests, so none of them can drift.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from hyperhive import names
from hyperhive.errors import ConfigError, InvalidName
from hyperhive.timefmt import parse_duration


class StreamConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits of the hive's JetStream stream."""

    max_bytes: int = 1024**3  # 1 GiB; -1 = unlimited
    max_age: str = "0"  # 0 = keep forever; else a duration like 90d
    max_msg_size: int = 256 * 1024
    duplicate_window: str = "2m"
    replicas: int = 1


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One agent of the hive as `hive.toml` declares it (`[agents.<name>]`)."""

    backend: str | None = None  # process | nixos-container; unset: the hive's `backend`
    model: str | None = None
    packages: list[str] = []
    extra_config: str = ""


class HiveConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything `hive.toml` may say. Unknown keys are an error naming the key."""

    hive: str = "default"
    nats_url: str = ""
    nats_port: int = 0
    nats_credentials: str = ""
    nats_state_dir: str = ""
    state_dir: str = ".hyperhive"
    dashboard_port: int = 7000
    dashboard_address: str = "127.0.0.1"
    log_level: str = "info"
    git: str = "git"
    backend: str = "process"
    harness_command: tuple[str, ...] = ("hyperhive", "harness", "--agent", "{agent}")
    default_model: str = "sonnet"
    claude: str = "claude"
    restart_crashed: bool = False
    restart_max: int = 5
    stream: StreamConfig = StreamConfig()
    agents: dict[str, AgentConfig] = {}


@dataclass(frozen=True)
class Setting:
    """One runtime setting: its config key, env var, flag and meaning."""

    key: str
    env: str
    flag: str | None
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("hive", "HYPERHIVE_HIVE", "--hive", "Hive name (`*` = all hives, for readers)."),
    Setting(
        "nats_url",
        "HYPERHIVE_NATS_URL",
        "--nats",
        "NATS server URL, or a cluster's seed list: URLs separated by commas (every "
        "client fails over between them). Empty: the embedded server, or the local "
        "cluster's running nodes, of the state dir.",
    ),
    Setting(
        "nats_credentials",
        "HYPERHIVE_NATS_CREDENTIALS",
        None,
        "JSON file with `user` and `password` for NATS. Empty: the state dir's file "
        "for the command's role.",
    ),
    Setting(
        "nats_state_dir",
        "HYPERHIVE_NATS_STATE_DIR",
        None,
        "The state dir of the NATS server (or local cluster) this hive uses, when it is "
        "not the hive's own: its users (credentials, auth.conf) and its running nodes are "
        "there. Several hives on one NATS each have their own state dir and name the "
        "server's here. Empty: the hive's own state dir.",
    ),
    Setting(
        "state_dir",
        "HYPERHIVE_STATE_DIR",
        "--state-dir",
        "Where the event log, agent dirs and the embedded server's store live.",
    ),
    Setting(
        "nats_port",
        "HYPERHIVE_NATS_PORT",
        "--nats-port",
        "Port of the embedded nats-server (0: reuse the last one if free, else any free).",
    ),
    Setting(
        "dashboard_port",
        "HYPERHIVE_DASHBOARD_PORT",
        "--dashboard-port",
        "Port of the operator dashboard.",
    ),
    Setting(
        "dashboard_address",
        "HYPERHIVE_DASHBOARD_ADDRESS",
        None,
        "Address the dashboard binds (loopback by default).",
    ),
    Setting("log_level", "HYPERHIVE_LOG_LEVEL", None, "debug, info, warning or error."),
    Setting(
        "git",
        "HYPERHIVE_GIT",
        None,
        "The git binary c0re uses (absolute path on NixOS, where the service PATH is small).",
    ),
    Setting(
        "backend",
        "HYPERHIVE_BACKEND",
        None,
        "Where agents run: `process` (a local child of c0re, any Linux) or `nixos-container`.",
    ),
    Setting(
        "harness_command",
        "HYPERHIVE_HARNESS_COMMAND",
        None,
        "The process backend's command for one agent (`{agent}` is replaced by its name; "
        "a bare `hyperhive` means the one c0re runs from). In the environment: shell words.",
    ),
    Setting(
        "claude",
        "HYPERHIVE_CLAUDE",
        None,
        "The Claude Code CLI the harness runs (a name on PATH, or a path).",
    ),
    Setting(
        "default_model",
        "HYPERHIVE_DEFAULT_MODEL",
        None,
        "The model of an agent that names none (`hivectl model` changes one agent's).",
    ),
    Setting(
        "restart_crashed",
        "HYPERHIVE_RESTART_CRASHED",
        None,
        "Restart an agent that crashed, with backoff (`true`/`false`; default: no, as the "
        "original).",
    ),
    Setting(
        "restart_max",
        "HYPERHIVE_RESTART_MAX",
        None,
        "How many crash restarts in a row before c0re leaves the agent crashed.",
    ),
)
CONFIG_ENV = "HYPERHIVE_CONFIG"
ENV_VARS = (*(s.env for s in SETTINGS), CONFIG_ENV)
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_PAYLOAD = 1024 * 1024  # the embedded server's max_payload: no event can be larger

_INT_KEYS = {"nats_port", "dashboard_port", "restart_max"}
_BOOL_KEYS = {"restart_crashed"}
_WORDS_KEYS = {"harness_command"}


def default_config_paths(env: Mapping[str, str]) -> list[Path]:
    xdg = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path("hive.toml"), Path(xdg) / "hyperhive" / "hive.toml"]


def _found(candidate: Path) -> bool:
    """Whether a default config location holds a file; one we can't look at is an error.

    Skipping it would silently ignore the user's config (a directory on the way
    to it that this user may not search, say).
    """
    try:
        return candidate.is_file()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config {candidate}: {exc.strerror or exc} "
            f"(pass --config PATH or set {CONFIG_ENV} to use another)"
        ) from None


def read_config_file(path: Path) -> HiveConfig:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        return msgspec.toml.decode(data, type=HiveConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_config(
    flags: Mapping[str, Any] | None = None,
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
) -> HiveConfig:
    """Resolve the configuration: defaults < file < env < flags (None flags are unset)."""
    env = os.environ if env is None else env
    explicit = config_path or env.get(CONFIG_ENV)
    if explicit:
        cfg = read_config_file(Path(explicit))
    else:
        cfg = next(
            (read_config_file(p) for p in default_config_paths(env) if _found(p)),
            HiveConfig(),
        )
    overrides: dict[str, Any] = {}
    for s in SETTINGS:
        if s.env in env and env[s.env] != "":
            overrides[s.key] = _coerce(s.key, env[s.env], s.env)
    for key, value in (flags or {}).items():
        if value is not None:
            overrides[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    if overrides:
        cfg = msgspec.structs.replace(cfg, **overrides)
    validate(cfg)
    return cfg


NATS_SCHEMES = ("nats", "tls")


def nats_servers(url: str) -> tuple[str, ...]:
    """The servers of a `nats_url`: one URL, or a seed list separated by commas.

    Each entry is `scheme://host:port` (`nats` or `tls`) or a bare `host:port`
    (taken as `nats://`); spaces around the commas are ignored. An empty
    `url` is no servers (the state dir's own are used). `ConfigError` names a
    bad entry.
    """
    out: list[str] = []
    for raw in url.split(","):
        entry = raw.strip()
        if not entry and url.strip():
            raise ConfigError(f"nats_url: an empty entry in the seed list {url!r}")
        if not entry:
            continue
        full = entry if "://" in entry else f"nats://{entry}"
        try:
            parsed = urlsplit(full)
            port = parsed.port
        except ValueError as exc:
            raise ConfigError(f"nats_url: {entry!r} is not a URL: {exc}") from None
        if parsed.scheme not in NATS_SCHEMES:
            raise ConfigError(
                f"nats_url: {entry!r}: the scheme must be one of "
                f"{', '.join(s + '://' for s in NATS_SCHEMES)}"
            )
        if not parsed.hostname or parsed.path not in ("", "/") or parsed.query:
            raise ConfigError(f"nats_url: {entry!r} is not host:port")
        if port == 0:
            raise ConfigError(f"nats_url: {entry!r}: port 0 is not a server's port")
        out.append(full)
    if len(set(out)) != len(out):
        raise ConfigError(f"nats_url: a server is named twice in {url!r}")
    return tuple(out)


def _coerce(key: str, value: Any, where: str) -> Any:
    if key in _BOOL_KEYS and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: {value!r} is not true or false")
    if key in _WORDS_KEYS and isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if key in _INT_KEYS and not isinstance(value, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a number") from None
    return value


def validate(cfg: HiveConfig) -> None:
    """Refuse settings that can't work, with a message naming the setting."""
    if cfg.hive != names.ALL_HIVES:
        try:
            names.check_hive(cfg.hive)
        except InvalidName as exc:
            raise ConfigError(f"hive: {exc}") from exc
    for name in cfg.agents:
        try:
            names.check_agent(name)
        except InvalidName as exc:
            raise ConfigError(f"agents: {exc}") from exc
    for key in ("nats_port", "dashboard_port"):
        port = getattr(cfg, key)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{key}: {port} is not a port number (0-65535)")
    if cfg.log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level: {cfg.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if not cfg.state_dir:
        raise ConfigError("state_dir: must not be empty")
    nats_servers(cfg.nats_url)
    try:
        parse_duration(cfg.stream.max_age)
    except ConfigError as exc:
        raise ConfigError(f"stream.max_age: {exc}") from exc
    try:
        window = parse_duration(cfg.stream.duplicate_window)
    except ConfigError as exc:
        raise ConfigError(f"stream.duplicate_window: {exc}") from exc
    if not 1 <= window <= 86400:
        raise ConfigError("stream.duplicate_window: must be between 1s and 1d")
    backends = ("process", "nixos-container")
    if cfg.backend not in backends:
        raise ConfigError(f"backend: {cfg.backend!r} is not one of {', '.join(backends)}")
    for name, agent in cfg.agents.items():
        if agent.backend is not None and agent.backend not in backends:
            raise ConfigError(
                f"agents.{name}.backend: {agent.backend!r} is not one of {', '.join(backends)}"
            )
    if not cfg.harness_command or not all(isinstance(a, str) and a for a in cfg.harness_command):
        raise ConfigError("harness_command: must be a non-empty list of arguments")
    if not 0 <= cfg.restart_max <= 100:
        raise ConfigError("restart_max: must be between 0 and 100")
    if cfg.stream.max_bytes != -1 and cfg.stream.max_bytes < 1024 * 1024:
        raise ConfigError("stream.max_bytes: must be -1 (unlimited) or at least 1 MiB")
    if not 1024 <= cfg.stream.max_msg_size <= MAX_PAYLOAD:
        raise ConfigError(f"stream.max_msg_size: must be between 1 KiB and {MAX_PAYLOAD} bytes")
    if cfg.stream.replicas not in (1, 3, 5):
        raise ConfigError("stream.replicas: must be 1, 3 or 5")
