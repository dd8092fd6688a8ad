"""`docs/configuration.md`, generated from `hyperhive.config`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi

from hyperhive import config
from hyperhive.docgen.fields import (
    GENERATED_NOTE,
    code,
    first_line,
    struct_info,
    table,
    type_name,
)
from hyperhive.errors import DocgenError, HyperhiveError

STREAM_MEANINGS: dict[str, str] = {
    "max_bytes": "Most bytes the stream keeps before the oldest events are discarded; "
    "`-1` = unlimited.",
    "max_age": "Oldest event the stream keeps, as a duration (`90d`); `0` = forever.",
    "max_msg_size": "Largest single event the stream accepts, in bytes.",
    "duplicate_window": "How long a republished event id is recognised and stored once "
    "(a duration, 1s to 1d).",
    "replicas": "Copies of the stream in a NATS cluster: 1, 3 or 5.",
}

AGENT_MEANINGS: dict[str, str] = {
    "backend": "Where this agent runs (`process` or `nixos-container`); unset: the hive's "
    "`backend`.",
    "model": "The model the agent starts with (`hivectl model` changes it later); "
    "unset: the default.",
    "packages": "Extra packages (nixpkgs attribute names) in the agent's container.",
    "extra_config": "Extra NixOS configuration (Nix text) merged into the agent's container.",
}

# A valid example, checked against `HiveConfig` every time the docs are rendered.
EXAMPLE_HIVE_TOML = """\
hive = "dev"
state_dir = ".hyperhive"
dashboard_port = 7000
log_level = "info"

[stream]
max_age = "90d"
duplicate_window = "2m"

[agents.manager]
model = "opus"

[agents.alice]
packages = ["ripgrep", "jq"]
extra_config = '''
  services.postgresql.enable = true;
'''
"""


# ---------------------------------------------------------------- configuration.md


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict) and not value:
        return "{}"
    raise DocgenError(f"docgen can't write {value!r} as TOML")


def _config_default(field: mi.Field) -> str:
    if field.required:
        return "required"
    if field.default_factory is not msgspec.NODEFAULT:
        return code(_toml_value(field.default_factory()))
    if field.default is None:
        return "unset"
    return code(_toml_value(field.default))


def _config_rows(cls: type[msgspec.Struct], meanings: dict[str, str]) -> list[list[str]]:
    rows = []
    for f in struct_info(cls).fields:
        if f.name not in meanings:
            raise DocgenError(f"{cls.__name__}.{f.name} has no meaning in hyperhive.bus.docgen")
        rows.append([code(f.encode_name), type_name(f.type), _config_default(f), meanings[f.name]])
    return rows


def _shown_path(path: Path) -> str:
    """`./hive.toml` for a path relative to the current directory, else as is."""
    text = path.as_posix()
    return text if path.is_absolute() or text.startswith("$") else f"./{text}"


def _setting_row(f: mi.Field, s: config.Setting) -> list[str]:
    flag = code(s.flag) if s.flag else ""
    return [code(f.encode_name), code(s.env), flag, _config_default(f), s.doc]


def _check_example() -> None:
    try:
        cfg = msgspec.toml.decode(EXAMPLE_HIVE_TOML.encode(), type=config.HiveConfig)
        config.validate(cfg)
    except (msgspec.DecodeError, HyperhiveError) as exc:
        raise DocgenError(f"the example hive.toml in docgen is not valid: {exc}") from exc


def render_configuration_md() -> str:
    """The configuration reference as Markdown."""
    _check_example()
    info = struct_info(config.HiveConfig)
    by_name = {f.name: f for f in info.fields}
    settings = {s.key: s for s in config.SETTINGS}
    for key in settings:
        if key not in by_name:
            raise DocgenError(f"setting {key!r} is not a field of HiveConfig")
    scalars = [f for f in info.fields if not isinstance(f.type, (mi.StructType, mi.DictType))]
    for f in scalars:
        if f.name not in settings:
            raise DocgenError(f"HiveConfig.{f.name} has no Setting in hyperhive.config.SETTINGS")
    rows = [_setting_row(f, settings[f.name]) for f in scalars]
    search = config.default_config_paths({"XDG_CONFIG_HOME": "$XDG_CONFIG_HOME"})
    search_lines = [f"{i}. `{_shown_path(p)}`" for i, p in enumerate(search, 1)]
    lines = [
        GENERATED_NOTE,
        "",
        "# Configuration",
        "",
        "Every hyperhive command reads the same configuration. Each setting is resolved "
        "in this order, later ones winning:",
        "",
        "1. the built-in default,",
        "2. `hive.toml`,",
        "3. the `HYPERHIVE_*` environment variable (an empty value counts as unset),",
        "4. the command-line flag.",
        "",
        "## The config file",
        "",
        f"If `--config PATH` or `{config.CONFIG_ENV}` names a file, that file is read, and "
        "it must exist: a missing one is an error. Otherwise the first of these that "
        "exists is read, and only that one:",
        "",
        *search_lines,
        "",
        "`$XDG_CONFIG_HOME` defaults to `~/.config`. No file at all is fine: the defaults "
        "apply. The file is TOML; a key it does not know, a value of the wrong type or a "
        "value that can't work (a bad hive name, a port outside 0-65535, an unknown log "
        "level, a bad duration) is refused with a message naming the setting.",
        "",
        "## Settings",
        "",
        *table(("key", "environment", "flag", "default", "meaning"), rows),
        "",
        "## `[stream]`",
        "",
        first_line(config.StreamConfig.__doc__, "StreamConfig") + " Durations are "
        "written like `30s`, `10m`, `2h`, `90d`.",
        "",
        *table(
            ("key", "type", "default", "meaning"),
            _config_rows(config.StreamConfig, STREAM_MEANINGS),
        ),
        "",
        "## `[agents.<name>]`",
        "",
        first_line(config.AgentConfig.__doc__, "AgentConfig") + " `<name>` must be a "
        "valid agent name: 1-31 of `a-z`, `0-9`, `-`, starting with a letter.",
        "",
        *table(
            ("key", "type", "default", "meaning"),
            _config_rows(config.AgentConfig, AGENT_MEANINGS),
        ),
        "",
        "## Example",
        "",
        "```toml",
        EXAMPLE_HIVE_TOML.rstrip("\n"),
        "```",
    ]
    return "\n".join(lines) + "\n"


GENERATED = {"docs/configuration.md": render_configuration_md}
