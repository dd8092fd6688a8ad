"""The NixOS module and the Python code cannot drift apart.

From the evaluated hosts and containers (fixture `evaluated`): the hive.toml the
module generates is read by the same code `hyperhive` reads it with; every
ExecStart is a `hyperhive` command that exists, with arguments click accepts;
every variable a unit sets is one the code reads (or listed with who does).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest

from hyperhive.cli.main import main as hyperhive_cli
from hyperhive.config import ENV_VARS, HiveConfig, StreamConfig, load_config, read_config_file
from hyperhive.core import ports
from hyperhive.core.lifecycle import container as backend
from tests.nix import configs, tomlwriter
from tests.nix.environment import NOT_IN_SERVICE_ENVIRONMENT, NOT_OURS, UNIT_EXTRAS
from tests.nix.evaluation import Evaluation
from tests.nix.nixcli import ROOT

pytestmark = [pytest.mark.nix, pytest.mark.timeout(300)]

RUNNING_HOSTS = ("default", "agents", "external-nats")
HOST_SERVICES = ("hive-credentials", "hive-c0re", "hive-projector", "hive-dashboard")
# The commands the units must run (and no unit may run another without a test noticing).
HOST_COMMANDS = {"credentials", "c0re", "projector", "dashboard"}


def units(evaluated: Evaluation) -> list[tuple[str, str, dict[str, Any], str]]:
    """(where, unit, its view, the hyperhive package) of every good host and container."""
    found = []
    for host_id in RUNNING_HOSTS:
        host = evaluated.host(host_id)
        for name, unit in host["services"].items():
            found.append((f"host {host_id}", name, unit, host["hyperhive"]["package"]))
    for name in configs.CONTAINERS:
        view = evaluated.container(name)
        for unit_name, unit in view["services"].items():
            found.append((f"container {name}", unit_name, unit, view["package"]))
    return found


def hyperhive_argv(exec_start: str, package: str) -> list[str] | None:
    """The arguments after `<package>/bin/hyperhive`, or None if it runs something else."""
    argv = shlex.split(exec_start)
    binary = f"{package}/bin/hyperhive"
    if argv[0].lstrip("+-@!:") != binary:
        assert "/bin/hyperhive" not in exec_start, f"hyperhive from elsewhere: {exec_start}"
        return None
    return argv[1:]


def parse(argv: list[str]) -> click.Context:
    """`hyperhive ARGV` parsed as on the command line (nothing runs); click's errors raise.

    Through the group's context, as the command line goes: a command parsed on
    its own would see (and keep) click's default help option instead of ours.
    """
    command = hyperhive_cli.commands[argv[0]]
    group = hyperhive_cli.make_context("hyperhive", argv[:1])
    return command.make_context(argv[0], argv[1:], parent=group)


def write_hive_toml(value: dict[str, Any], path: Path) -> Path:
    path.write_text(tomlwriter.dumps(value), encoding="utf-8")
    return path


# ------------------------------------------------------------------ hive.toml


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
def test_the_generated_hive_toml_is_read_as_each_service_reads_it(
    evaluated: Evaluation, host_id: str, tmp_path: Path
) -> None:
    host = evaluated.host(host_id)
    path = write_hive_toml(host["etc"]["hyperhive/hive.toml"]["value"], tmp_path / "hive.toml")
    options = configs.HOSTS[host_id]["services"]["hyperhive"]

    # The operator's CLIs: the file alone (their wrapper sets HYPERHIVE_CONFIG).
    plain = load_config(env={"HYPERHIVE_CONFIG": str(path)})
    assert plain == read_config_file(path)
    assert plain.hive == options.get("hiveName", "default")
    assert plain.state_dir == host["hyperhive"]["stateDir"]
    assert plain.dashboard_port == options.get("dashboardPort", 7000)
    assert plain.backend == "nixos-container"
    assert plain.log_level == options.get("logLevel", "info")
    assert plain.restart_crashed is options.get("restartCrashed", False)
    declared = {*options.get("agents", {}), "manager"}
    assert set(plain.agents) == declared
    for name, agent in options.get("agents", {}).items():
        assert plain.agents[name].packages == agent.get("packages", [])
        assert plain.agents[name].model == agent.get("model")
        assert plain.agents[name].extra_config == agent.get("extraConfig", "")
        assert plain.agents[name].backend == "nixos-container"
    if "stream" in options:
        assert plain.stream.max_age == options["stream"]["maxAge"]
        assert plain.stream.replicas == options["stream"]["replicas"]

    # Each service: the file and its own environment, exactly as `hyperhive <cmd>` resolves.
    for name in HOST_SERVICES:
        env = {**host["services"][name]["environment"], "HYPERHIVE_CONFIG": str(path)}
        cfg = load_config(env=env)
        assert cfg.nats_url == plain.nats_url, name
        assert cfg.hive == plain.hive, name
        assert cfg.agents == plain.agents, name
        assert cfg.nats_credentials.startswith(f"{plain.state_dir}/nats/credentials/"), name


def test_the_harness_reads_the_hosts_hive_toml_with_its_own_environment(
    evaluated: Evaluation, tmp_path: Path
) -> None:
    host = evaluated.host("agents")
    path = write_hive_toml(host["etc"]["hyperhive/hive.toml"]["value"], tmp_path / "hive.toml")
    unit = evaluated.container("alice")["services"]["hive-harness"]
    # The host's hive.toml is bind-mounted where HYPERHIVE_CONFIG points.
    assert unit["environment"]["HYPERHIVE_CONFIG"] == backend.CONTAINER_HIVE_TOML
    cfg = load_config(env={**unit["environment"], "HYPERHIVE_CONFIG": str(path)})
    assert cfg.hive == "lab"
    assert cfg.nats_url == f"nats://127.0.0.1:{host['nats']['port']}"
    assert cfg.state_dir == backend.CONTAINER_STATE
    assert cfg.nats_credentials == backend.CONTAINER_CREDENTIALS
    assert cfg.claude == "claude", "claude-code is on the harness's PATH in the container"


def test_the_toml_writer_writes_what_tomllib_reads_back() -> None:
    value = {
        "hive": "lab",
        "n": -1,
        "f": 1.5,
        "b": False,
        "text": 'a "quoted" \\ back\nslash\t\u00fc\x7f\x01',
        "list": ["x", "y"],
        "agents": {"alice": {"packages": []}, "two words": {}},
    }
    assert tomllib.loads(tomlwriter.dumps(value)) == value
    with pytest.raises(ValueError, match="no null"):
        tomlwriter.dumps({"agents": {"alice": {"model": None}}})


# ------------------------------------------------------------------ commands


def test_every_execstart_is_a_hyperhive_command_with_arguments_it_accepts(
    evaluated: Evaluation,
) -> None:
    seen: dict[str, set[str]] = {}
    for where, name, unit, package in units(evaluated):
        exec_start = unit["serviceConfig"].get("ExecStart")
        if exec_start is None:
            continue
        argv = hyperhive_argv(exec_start, package)
        if argv is None:
            continue
        command = argv[0]
        assert command in hyperhive_cli.commands, (
            f"{where}: {name} runs `hyperhive {command}`, which does not exist "
            f"(there are: {', '.join(sorted(hyperhive_cli.commands))})"
        )
        try:
            parse(argv)
        except click.ClickException as exc:
            pytest.fail(f"{where}: {name}: `hyperhive {shlex.join(argv)}`: {exc.format_message()}")
        seen.setdefault(where.split()[0], set()).add(command)
    assert seen == {"host": HOST_COMMANDS, "container": {"harness"}}, seen


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
def test_the_harness_command_of_hive_toml_is_a_command_too(
    evaluated: Evaluation, host_id: str
) -> None:
    command = evaluated.host(host_id)["etc"]["hyperhive/hive.toml"]["value"]["harness_command"]
    assert command[0] == "hyperhive"
    argv = [a.replace("{agent}", "alice") for a in command[1:]]
    assert parse(argv).params["agent"] == "alice"


def test_the_credentials_unit_names_every_declared_agent(evaluated: Evaluation) -> None:
    host = evaluated.host("agents")
    argv = hyperhive_argv(
        host["services"]["hive-credentials"]["serviceConfig"]["ExecStart"],
        host["hyperhive"]["package"],
    )
    assert argv is not None
    ctx = parse(argv)
    assert set(ctx.params["agents"]) == {"alice", "bob", "manager"}
    assert ctx.params["state_dir"] == "/srv/hive"


# ------------------------------------------------------------------ environment


def test_every_variable_a_unit_sets_is_read_by_someone(evaluated: Evaluation) -> None:
    unknown = []
    used_elsewhere: set[str] = set()
    for where, name, unit, _ in units(evaluated):
        if not name.startswith("hive-"):
            continue
        for var in unit["environment"]:
            if var in NOT_OURS:
                used_elsewhere.add(var)
            elif var not in ENV_VARS:
                unknown.append(f"{where}: {name}: {var}")
    assert not unknown, "variables hyperhive.config does not read:\n" + "\n".join(unknown)
    assert used_elsewhere == set(NOT_OURS), f"stale NOT_OURS: {set(NOT_OURS) - used_elsewhere}"


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
def test_every_host_service_gets_every_runtime_setting(evaluated: Evaluation, host_id: str) -> None:
    host = evaluated.host(host_id)
    common = set(ENV_VARS) - set(NOT_IN_SERVICE_ENVIRONMENT)
    for name in HOST_SERVICES:
        ours = {v for v in host["services"][name]["environment"] if v.startswith("HYPERHIVE_")}
        expected = common | UNIT_EXTRAS.get(name, set())
        assert ours == expected, (
            f"{name}: missing {sorted(expected - ours)}, unexpected {sorted(ours - expected)}"
        )


def test_the_operator_clis_are_the_projects_scripts_defaulting_to_the_hosts_config(
    evaluated: Evaluation,
) -> None:
    cli = next(
        p for p in evaluated.host("default")["systemPackages"] if p["name"] == "hyperhive-cli"
    )
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    loop = re.search(r"for prog in ([^;]+);", cli["postBuild"])
    assert loop, cli["postBuild"]
    assert sorted(loop[1].split()) == sorted(scripts)
    defaults = re.findall(r"--set-default (\S+)", cli["postBuild"])
    assert defaults == ["HYPERHIVE_CONFIG"]
    assert set(defaults) <= set(ENV_VARS)


# ------------------------------------------------------------------ the container contract


def test_container_json_says_what_the_container_backend_does(
    evaluated: Evaluation,
) -> None:
    host = evaluated.host("default")
    contract = msgspec.json.decode(host["etc"]["hyperhive/container.json"]["text"])
    assert contract["prebuilt"] == f"{backend.PREBUILT_DIR}/{{name}}"
    assert tuple(contract["conf_cleared"]) == backend.CONF_CLEARED
    assert contract["conf_set"] == backend.CONF_SET
    assert {b["target"] for b in contract["binds"]} == {
        backend.CONTAINER_STATE,
        backend.CONTAINER_CLAUDE,
        backend.CONTAINER_CREDENTIALS,
        backend.CONTAINER_HIVE_TOML,
    }
    assert contract["ports"] == {
        "manager": ports.MANAGER,
        "manager_port": ports.MANAGER_PORT,
        "base": ports.PORT_BASE,
        "range": ports.PORT_RANGE,
    }


def test_the_modules_name_and_path_rules_are_the_container_backends(evaluated: Evaluation) -> None:
    nix = evaluated.evaluator.nix
    lib = nix.import_lib()
    assert nix.eval_json(f"{lib}.containerAgentNameMax") == backend.AGENT_NAME_MAX
    assert nix.eval_json(f"{lib}.containerPrefix") == backend.PREFIX
    assert nix.eval_json(f"{lib}.bindPathRegex") == backend._BIND_PATH_RE.pattern


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
def test_the_generated_hive_toml_says_every_setting(evaluated: Evaluation, host_id: str) -> None:
    """Generated whole: a new HiveConfig field needs the module to say it (or hosts drift)."""
    value = evaluated.host(host_id)["etc"]["hyperhive/hive.toml"]["value"]
    assert set(value) == set(HiveConfig.__struct_fields__)
    assert set(value["stream"]) == set(StreamConfig.__struct_fields__)
