"""Configuration: defaults < hive.toml < HYPERHIVE_* env < flags, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from hyperhive.config import (
    CONFIG_ENV,
    ENV_VARS,
    SETTINGS,
    AgentConfig,
    HiveConfig,
    StreamConfig,
    load_config,
    nats_servers,
    validate,
)
from hyperhive.errors import ConfigError


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so no stray ./hive.toml is read."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment whose XDG config dir is the test's own (and empty)."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def write_toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- precedence


def test_without_file_env_or_flags_the_defaults_apply(workdir: Path, env: dict[str, str]) -> None:
    assert load_config(env=env) == HiveConfig()


def test_file_overrides_defaults(workdir: Path, env: dict[str, str]) -> None:
    write_toml(workdir / "hive.toml", 'hive = "from-file"\ndashboard_port = 7100\n')
    cfg = load_config(env=env)
    assert (cfg.hive, cfg.dashboard_port, cfg.log_level) == ("from-file", 7100, "info")


def test_env_overrides_file_and_flags_override_env(workdir: Path, env: dict[str, str]) -> None:
    write_toml(
        workdir / "hive.toml",
        'hive = "from-file"\ndashboard_port = 7100\nlog_level = "debug"\n'
        'nats_url = "nats://file:4222"\n',
    )
    env |= {"HYPERHIVE_HIVE": "from-env", "HYPERHIVE_DASHBOARD_PORT": "7200"}
    cfg = load_config(flags={"hive": "from-flag", "nats_url": None}, env=env)
    assert cfg.hive == "from-flag"  # flag beats env and file
    assert cfg.dashboard_port == 7200  # env beats file
    assert cfg.log_level == "debug"  # file beats default
    assert cfg.nats_url == "nats://file:4222"  # an unset (None) flag changes nothing
    assert cfg.git == "git"  # default


def test_an_empty_env_var_counts_as_unset(workdir: Path, env: dict[str, str]) -> None:
    write_toml(workdir / "hive.toml", 'hive = "from-file"\n')
    cfg = load_config(env=env | {"HYPERHIVE_HIVE": "", "HYPERHIVE_NATS_PORT": ""})
    assert (cfg.hive, cfg.nats_port) == ("from-file", 0)


def test_every_setting_is_read_from_its_env_var(workdir: Path, env: dict[str, str]) -> None:
    values = {
        "hive": "envhive",
        "nats_url": "nats://env:4222",
        "nats_credentials": "creds.json",
        "nats_state_dir": "/var/lib/shared-nats",
        "state_dir": "env-state",
        "nats_port": "4333",
        "dashboard_port": "7333",
        "dashboard_address": "0.0.0.0",
        "log_level": "warning",
        "git": "/usr/bin/git",
        "backend": "nixos-container",
        "harness_command": "my-harness --name '{agent}' -v",
        "default_model": "opus",
        "claude": "/opt/claude/bin/claude",
        "restart_crashed": "True",
        "restart_max": "7",
    }
    parsed: dict[str, object] = {
        "harness_command": ("my-harness", "--name", "{agent}", "-v"),
        "restart_crashed": True,
    }
    assert set(values) == {s.key for s in SETTINGS}
    cfg = load_config(env=env | {s.env: values[s.key] for s in SETTINGS})
    for s in SETTINGS:
        expected = parsed.get(s.key, values[s.key])
        got = getattr(cfg, s.key)
        assert (got if s.key in parsed else str(got)) == expected, s.env


def test_ports_from_env_and_flags_become_numbers(workdir: Path, env: dict[str, str]) -> None:
    cfg = load_config(flags={"nats_port": "4444"}, env=env | {"HYPERHIVE_DASHBOARD_PORT": "7001"})
    assert (cfg.nats_port, cfg.dashboard_port) == (4444, 7001)


def test_nested_tables_are_read(workdir: Path, env: dict[str, str]) -> None:
    write_toml(
        workdir / "hive.toml",
        '[stream]\nmax_age = "90d"\nreplicas = 3\n'
        '[agents.alice]\nmodel = "opus"\npackages = ["jq"]\n[agents.bob]\n',
    )
    cfg = load_config(env=env)
    assert cfg.stream == StreamConfig(max_age="90d", replicas=3)
    assert cfg.agents == {"alice": AgentConfig(model="opus", packages=["jq"]), "bob": AgentConfig()}


# ---------------------------------------------------------------- config file search


def test_xdg_config_is_used_when_there_is_no_local_hive_toml(
    workdir: Path, env: dict[str, str]
) -> None:
    write_toml(Path(env["XDG_CONFIG_HOME"]) / "hyperhive" / "hive.toml", 'hive = "from-xdg"\n')
    assert load_config(env=env).hive == "from-xdg"


def test_local_hive_toml_wins_over_xdg(workdir: Path, env: dict[str, str]) -> None:
    write_toml(Path(env["XDG_CONFIG_HOME"]) / "hyperhive" / "hive.toml", 'hive = "from-xdg"\n')
    write_toml(workdir / "hive.toml", 'hive = "from-local"\n')
    assert load_config(env=env).hive == "from-local"


def test_explicit_config_path_wins_over_the_search(
    workdir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    write_toml(workdir / "hive.toml", 'hive = "from-local"\n')
    explicit = write_toml(tmp_path / "elsewhere.toml", 'hive = "from-explicit"\n')
    assert load_config(config_path=str(explicit), env=env).hive == "from-explicit"
    assert load_config(env=env | {CONFIG_ENV: str(explicit)}).hive == "from-explicit"


def test_a_missing_explicit_config_path_is_refused(
    workdir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    write_toml(workdir / "hive.toml", 'hive = "from-local"\n')
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_config(config_path=str(missing), env=env)
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_config(env=env | {CONFIG_ENV: str(missing)})


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('colour = "blue"\n', "colour"),
        ('[stream]\nmax_agee = "1d"\n', "max_agee"),
        ('[agents.alice]\nmodle = "opus"\n', "modle"),
    ],
)
def test_an_unknown_key_in_hive_toml_is_refused_by_name(
    workdir: Path, env: dict[str, str], text: str, key: str
) -> None:
    write_toml(workdir / "hive.toml", text)
    with pytest.raises(ConfigError, match=key):
        load_config(env=env)


def test_invalid_toml_is_refused_naming_the_file(workdir: Path, env: dict[str, str]) -> None:
    write_toml(workdir / "hive.toml", "hive = \n")
    with pytest.raises(ConfigError, match=r"hive\.toml.*TOML"):
        load_config(env=env)


@pytest.mark.parametrize("name", ["Bad", "../etc", "a.b", "_", "", "a" * 33])
def test_a_bad_hive_name_is_refused_naming_the_setting(
    workdir: Path, env: dict[str, str], name: str
) -> None:
    with pytest.raises(ConfigError, match=r"^hive:"):
        load_config(flags={"hive": name}, env=env)


def test_a_bad_hive_name_from_env_or_file_is_refused(workdir: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"^hive:"):
        load_config(env=env | {"HYPERHIVE_HIVE": "No/Way"})
    write_toml(workdir / "hive.toml", 'hive = "No/Way"\n')
    with pytest.raises(ConfigError, match="hive"):
        load_config(env=env)


def test_every_hive_wildcard_is_allowed_for_readers(workdir: Path, env: dict[str, str]) -> None:
    assert load_config(flags={"hive": "*"}, env=env).hive == "*"


def test_a_bad_agent_name_in_hive_toml_is_refused(workdir: Path, env: dict[str, str]) -> None:
    write_toml(workdir / "hive.toml", '[agents."../etc"]\n')
    with pytest.raises(ConfigError, match="agents"):
        load_config(env=env)


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ({"flags": {"dashboard_port": 70000}}, "dashboard_port"),
        ({"flags": {"nats_port": -1}}, "nats_port"),
        ({"env": {"HYPERHIVE_DASHBOARD_PORT": "65536"}}, "dashboard_port"),
        ({"env": {"HYPERHIVE_NATS_PORT": "http"}}, "NATS_PORT"),
        ({"flags": {"dashboard_port": "seven"}}, "dashboard.port"),
        ({"toml": "nats_port = 99999\n"}, "nats_port"),
        ({"toml": 'dashboard_port = "7000"\n'}, "dashboard_port"),
    ],
    ids=[
        "flag-high",
        "flag-negative",
        "env-high",
        "env-text",
        "flag-text",
        "file-high",
        "file-str",
    ],
)
def test_a_bad_port_is_refused_naming_the_setting(
    workdir: Path, env: dict[str, str], source: dict[str, object], key: str
) -> None:
    if "toml" in source:
        write_toml(workdir / "hive.toml", str(source["toml"]))
    flags = source.get("flags")
    extra = source.get("env")
    assert flags is None or isinstance(flags, dict)
    assert extra is None or isinstance(extra, dict)
    with pytest.raises(ConfigError, match=key):
        load_config(flags=flags, env=env | (extra or {}))


@pytest.mark.parametrize("level", ["loud", "INFO", "", "trace"])
def test_a_bad_log_level_is_refused_naming_the_setting(
    workdir: Path, env: dict[str, str], level: str
) -> None:
    write_toml(workdir / "hive.toml", f'log_level = "{level}"\n')
    with pytest.raises(ConfigError, match="log_level"):
        load_config(env=env)


@pytest.mark.parametrize(
    ("table", "setting"),
    [
        ('max_age = "forever"', "stream.max_age"),
        ('max_age = "-1d"', "stream.max_age"),
        (f'max_age = "{10**12}d"', "stream.max_age"),
        ('duplicate_window = "soon"', "stream.duplicate_window"),
        ('duplicate_window = "0"', "stream.duplicate_window"),
        ('duplicate_window = "2d"', "stream.duplicate_window"),
    ],
)
def test_a_bad_duration_is_refused_naming_the_setting(
    workdir: Path, env: dict[str, str], table: str, setting: str
) -> None:
    write_toml(workdir / "hive.toml", f"[stream]\n{table}\n")
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
        load_config(env=env)


def test_bad_replicas_are_refused_naming_the_setting(workdir: Path, env: dict[str, str]) -> None:
    write_toml(workdir / "hive.toml", "[stream]\nreplicas = 2\n")
    with pytest.raises(ConfigError, match=r"stream\.replicas"):
        load_config(env=env)


def test_an_empty_state_dir_is_refused(workdir: Path, env: dict[str, str]) -> None:
    write_toml(workdir / "hive.toml", 'state_dir = ""\n')
    with pytest.raises(ConfigError, match="state_dir"):
        load_config(env=env)


# ---------------------------------------------------------------- the settings list


def test_every_setting_is_a_field_of_hive_config_and_every_scalar_field_a_setting() -> None:
    fields = set(HiveConfig.__struct_fields__) - {"stream", "agents"}
    assert {s.key for s in SETTINGS} == fields


def test_setting_env_vars_and_flags_are_unique_and_well_formed() -> None:
    envs = [s.env for s in SETTINGS]
    flags = [s.flag for s in SETTINGS if s.flag]
    assert len(set(envs)) == len(envs)
    assert len(set(flags)) == len(flags)
    assert all(e.startswith("HYPERHIVE_") and e == e.upper() for e in envs)
    assert all(f.startswith("--") for f in flags)
    assert set(ENV_VARS) == {*envs, CONFIG_ENV}


def test_config_structs_refuse_unknown_fields() -> None:
    for cls in (HiveConfig, StreamConfig, AgentConfig):
        with pytest.raises(msgspec.ValidationError, match="surprise"):
            msgspec.toml.decode(b"surprise = 1\n", type=cls)


@pytest.mark.parametrize(
    ("stream", "what"),
    [
        ({"max_bytes": -7}, "stream.max_bytes"),
        ({"max_bytes": 0}, "stream.max_bytes"),
        ({"max_msg_size": -5}, "stream.max_msg_size"),
        ({"max_msg_size": 10 * 1024 * 1024}, "stream.max_msg_size"),
    ],
)
def test_stream_limits_that_cannot_work_are_refused(stream: dict[str, int], what: str) -> None:
    limits = msgspec.structs.replace(StreamConfig(), **stream)
    with pytest.raises(ConfigError, match=what):
        validate(HiveConfig(stream=limits))


def test_unlimited_stream_bytes_are_allowed() -> None:
    validate(HiveConfig(stream=StreamConfig(max_bytes=-1)))


# ---------------------------------------------------------------- seed lists


def test_nats_url_may_be_a_seed_list_separated_by_commas() -> None:
    assert nats_servers("nats://a:4222, nats://b:4223,c:4224") == (
        "nats://a:4222",
        "nats://b:4223",
        "nats://c:4224",
    )
    assert nats_servers("tls://nats.example:4222") == ("tls://nats.example:4222",)
    assert nats_servers("") == ()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("nats://a:4222,,nats://b:4222", "an empty entry"),
        ("http://a:4222", "scheme"),
        ("nats://a:4222,nats://a:4222", "named twice"),
        ("nats://a:notaport", "not a URL"),
        ("nats://a:4222/path", "not host:port"),
        ("nats://:4222", "not host:port"),
    ],
)
def test_a_bad_seed_list_is_refused_naming_the_entry(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        validate(HiveConfig(nats_url=url))
