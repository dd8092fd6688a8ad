"""services.hyperhive, evaluated by nixpkgs' module system over the NixOS options it sets.

The hosts are those of tests/nix/configs.py, evaluated once for the session
(fixture `evaluated`, nix/tests/eval). What only a real NixOS host proves
(building, booting, the containers themselves) is the VM test's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hyperhive.core import ports
from hyperhive.statedir import StateDir
from tests.nix import configs
from tests.nix.evaluation import CLAUDE_STABLE, CLAUDE_UNSTABLE, Evaluation

pytestmark = [pytest.mark.nix, pytest.mark.timeout(300)]

HIVE_SERVICES = ("hive-c0re", "hive-projector", "hive-dashboard")
RUNNING_HOSTS = ("default", "agents", "external-nats")
LOCAL_NATS_HOSTS = ("default", "agents")
DEFAULT_MONITOR_PORT = 7222

# Every hive service (c0re included) keeps these.
BASE_HARDENING: dict[str, Any] = {
    "PrivateTmp": True,
    "ProtectKernelTunables": True,
    "ProtectKernelModules": True,
    "ProtectKernelLogs": True,
    "ProtectClock": True,
    "ProtectHostname": True,
    "LockPersonality": True,
    "RestrictRealtime": True,
    "RestrictSUIDSGID": True,
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}
# All but c0re (which creates containers and runs nix builds as root) add these.
STRICT_HARDENING: dict[str, Any] = {
    "ProtectSystem": "strict",
    "ProtectHome": True,
    "NoNewPrivileges": True,
    "PrivateDevices": True,
    "ProtectControlGroups": True,
    "ProtectProc": "invisible",
    "RestrictNamespaces": True,
}


def options(host_id: str) -> dict[str, Any]:
    """The services.hyperhive options a host of configs.HOSTS sets."""
    found: dict[str, Any] = configs.HOSTS[host_id]["services"]["hyperhive"]
    return found


def service(host: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in host["services"], f"no systemd.services.{name}: {sorted(host['services'])}"
    found: dict[str, Any] = host["services"][name]
    return found


def hive_toml(host: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = host["etc"]["hyperhive/hive.toml"]["value"]
    return value


# ------------------------------------------------------------------ evaluates at all


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
def test_the_module_evaluates_without_a_failed_assertion(
    evaluated: Evaluation, host_id: str
) -> None:
    host = evaluated.host(host_id)
    assert host["assertions"] == []
    assert host["malformedAssertions"] == 0, "an assertion without a bool `assertion` and a message"
    expected_warnings = (
        ["openFirewall opens port 443, but the dashboard only listens on 127.0.0.1"]
        if host_id == "agents"
        else []
    )
    assert [w for w in host["warnings"] if not any(e in w for e in expected_warnings)] == []
    assert len(host["warnings"]) == len(expected_warnings), host["warnings"]


def test_a_host_without_enable_gets_nothing_of_the_hive(evaluated: Evaluation) -> None:
    host = evaluated.host("disabled")
    assert host["assertions"] == []
    assert host["warnings"] == []
    assert not [s for s in host["services"] if s.startswith("hive-") or s == "nats"]
    assert host["paths"] == {}
    assert host["nats"]["enable"] is False
    assert not [e for e in host["etc"] if e.startswith("hyperhive/")]
    assert host["boot"]["enableContainers"] is False
    assert not [p for p in host["systemPackages"] if p["name"].startswith("hyperhive")]
    assert host["tmpfiles"] == []


def test_turning_the_manager_off_warns_that_it_will_not_start(evaluated: Evaluation) -> None:
    host = evaluated.host("without-manager")
    assert host["assertions"] == []
    assert len(host["warnings"]) == 1, host["warnings"]
    assert "services.hyperhive.manager.enable = false" in host["warnings"][0]
    assert "Keep manager.enable = true" in host["warnings"][0]
    assert "hyperhive/systems/manager" not in host["etc"]
    assert "manager" not in hive_toml(host)["agents"]


# ------------------------------------------------------------------ NATS


@pytest.mark.parametrize("host_id", LOCAL_NATS_HOSTS)
def test_nats_runs_jetstream_on_loopback_with_its_store_under_the_state_dir(
    evaluated: Evaluation, host_id: str
) -> None:
    host = evaluated.host(host_id)
    nats = host["nats"]
    state = host["hyperhive"]["stateDir"]
    monitor = options(host_id).get("nats", {}).get("monitorPort", DEFAULT_MONITOR_PORT)

    assert nats["enable"] is True
    assert nats["jetstream"] is True, "services.nats.jetstream: nixpkgs leaves JetStream off"
    assert nats["settings"]["host"] == "127.0.0.1", "NATS must listen on loopback only"
    assert nats["settings"]["http"] == f"127.0.0.1:{monitor}"
    assert nats["dataDir"] == str(StateDir(Path(state)).jetstream)
    assert nats["settings"]["jetstream"] == {"store_dir": nats["dataDir"]}
    assert hive_toml(host)["nats_url"] == f"nats://127.0.0.1:{nats['port']}"

    unit = service(host, "nats")
    config = unit["serviceConfig"]
    assert config["ExecStart"] == (
        f"{host['pkgs']['nats-server']}/bin/nats-server -c /run/hyperhive-nats/nats.conf"
    )
    # The root step that installs the generated users beside the settings.
    assert [step[:1] for step in config["ExecStartPre"]] == ["+"]
    assert config["ExecReload"][0] == config["ExecStartPre"][0]
    assert "hive-credentials.service" in unit["requires"]
    assert "hive-credentials.service" in unit["after"]
    # nixpkgs' sandbox stays: the server runs as its own user, writing only its store.
    assert config["User"] == nats["user"]
    assert nats["user"] in host["users"]
    assert nats["dataDir"] in config["ReadWritePaths"]
    assert f"d {nats['dataDir']} 0750 {nats['user']} {nats['group']} - -" in host["tmpfiles"]
    assert host["paths"]["hive-nats-auth"]["pathConfig"]["PathChanged"] == (
        f"{state}/nats/auth.conf"
    )


def test_a_cluster_node_routes_to_its_peers_with_a_server_name_and_replicas(
    evaluated: Evaluation,
) -> None:
    host = evaluated.host("cluster")
    settings = host["nats"]["settings"]
    assert settings["cluster"] == {
        "name": "lab-cluster",
        "port": 6222,
        "routes": configs.CLUSTER_ROUTES,
    }
    assert settings["server_name"] == "hive1"  # JetStream in a cluster needs one per node
    assert settings["host"] == "127.0.0.1"  # clients stay on loopback; routes listen apart
    assert host["nats"]["jetstream"] is True
    assert hive_toml(host)["stream"]["replicas"] == 3
    single = evaluated.host("default")["nats"]["settings"]
    assert "cluster" not in single
    assert single["server_name"] == "nats"  # nixpkgs' default: one server needs no name


def test_an_existing_nats_server_is_used_and_none_is_run(evaluated: Evaluation) -> None:
    host = evaluated.host("external-nats")
    assert host["nats"]["enable"] is False
    assert "nats" not in host["services"]
    assert "hive-nats-auth" not in host["paths"]
    assert hive_toml(host)["nats_url"] == configs.EXTERNAL_NATS_URL
    for name in (*HIVE_SERVICES, "hive-credentials"):
        unit = service(host, name)
        assert unit["environment"]["HYPERHIVE_NATS_URL"] == configs.EXTERNAL_NATS_URL
        assert "nats.service" not in unit["after"] + unit["wants"] + unit["requires"]
    # Without a local server nobody but root gets into the state dir.
    assert "d /var/lib/hyperhive 0700 root root - -" in host["tmpfiles"]


# ------------------------------------------------------------------ the hive's services


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
@pytest.mark.parametrize("name", HIVE_SERVICES)
def test_hive_services_start_after_nats_with_the_service_path_rule(
    evaluated: Evaluation, host_id: str, name: str
) -> None:
    host = evaluated.host(host_id)
    unit = service(host, name)
    git = host["pkgs"]["git"]

    if host["nats"]["enable"]:
        assert "nats.service" in unit["after"], f"{name} must start after NATS"
        assert "nats.service" in unit["wants"], f"starting {name} must start NATS"
    assert "hive-credentials.service" in unit["after"]
    assert "hive-credentials.service" in unit["requires"]
    assert "network.target" in unit["after"]
    assert unit["wantedBy"] == ["multi-user.target"]

    # The gotcha: a service's PATH is not the host's.
    assert unit["path"] == [git, "/run/current-system/sw", *host["pkgs"]["defaultServicePath"]]
    assert "/run/current-system/sw/bin" in unit["environment"]["PATH"].split(":")
    assert unit["environment"]["HYPERHIVE_GIT"] == f"{git}/bin/git"

    assert unit["serviceConfig"]["Restart"] == "always"
    assert unit["unitConfig"]["StartLimitIntervalSec"] == 0, "restarts must never give up"
    assert "\nStartLimitIntervalSec=0\n" in unit["text"]


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
def test_c0re_keeps_its_runtime_directory_across_restarts(
    evaluated: Evaluation, host_id: str
) -> None:
    unit = service(evaluated.host(host_id), "hive-c0re")
    config = unit["serviceConfig"]
    assert config.get("RuntimeDirectory") == "hyperhive"
    assert config.get("RuntimeDirectoryPreserve") == "yes", (
        "without it every restart of hive-c0re wipes /run/hyperhive, the bind sources of "
        "running containers"
    )
    assert "\nRuntimeDirectoryPreserve=yes\n" in unit["text"]


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
def test_services_are_hardened(evaluated: Evaluation, host_id: str) -> None:
    host = evaluated.host(host_id)
    state = host["hyperhive"]["stateDir"]

    c0re = service(host, "hive-c0re")["serviceConfig"]
    assert {k: c0re.get(k) for k in BASE_HARDENING} == BASE_HARDENING
    # It writes /etc/nixos-containers and runs nix: no read-only system, but an
    # empty /root rather than the real one.
    assert c0re.get("ProtectHome") == "tmpfs"
    assert "ProtectSystem" not in c0re

    for name in ("hive-projector", "hive-dashboard", "hive-credentials"):
        config = service(host, name)["serviceConfig"]
        expected = {**BASE_HARDENING, **STRICT_HARDENING}
        assert {k: config.get(k) for k in expected} == expected, name
        assert config["ReadWritePaths"] == [state], f"{name} writes only the state dir"
        assert {"@system-service", "~@privileged"} <= set(config["SystemCallFilter"]), name
        assert set(config["RestrictAddressFamilies"]) <= {"AF_UNIX", "AF_INET", "AF_INET6"}
        low_port = name == "hive-dashboard" and options(host_id).get("dashboardPort", 7000) < 1024
        if low_port:
            assert config["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE", name
            assert config["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE", name
        else:
            assert config["CapabilityBoundingSet"] == "", f"{name} needs no capability"
            assert "AmbientCapabilities" not in config, name


@pytest.mark.parametrize(
    ("host_id", "claude"), [("default", CLAUDE_STABLE), ("agents", CLAUDE_UNSTABLE)]
)
def test_the_dashboard_gets_the_agents_claude_code(
    evaluated: Evaluation, host_id: str, claude: str
) -> None:
    """HYPERHIVE_CLAUDE, not `path` (which stays the rule's): the Claude login flow runs it.

    It evaluates on a host whose nixpkgs admits no unfree package at all: the
    scoped predicate of nix/claude-overlay.nix lets claude-code alone in.
    """
    host = evaluated.host(host_id)
    package = host["hyperhive"]["claudePackage"]
    assert package["name"] == claude
    env = service(host, "hive-dashboard")["environment"]
    assert env["HYPERHIVE_CLAUDE"] == f"{package['path']}/bin/claude"


def test_containers_are_enabled_for_nixos_container(evaluated: Evaluation) -> None:
    for host_id in RUNNING_HOSTS:
        host = evaluated.host(host_id)
        # No declarative `containers`, so NixOS' own default would leave them off.
        assert host["containers"] == []
        assert host["boot"]["enableContainers"] is True, host_id


@pytest.mark.parametrize(
    ("host_id", "open_ports"),
    [("default", []), ("agents", [443]), ("external-nats", [7443])],
)
def test_the_firewall_opens_the_dashboard_only_when_asked(
    evaluated: Evaluation, host_id: str, open_ports: list[int]
) -> None:
    assert evaluated.host(host_id)["firewall"]["allowedTCPPorts"] == open_ports


# ------------------------------------------------------------------ files and agents


@pytest.mark.parametrize(
    ("host_id", "prebuilt"),
    [("default", {"manager"}), ("agents", {"manager", "alice", "bob"}), ("external-nats", set())],
)
def test_declared_agents_get_prebuilt_systems_and_ports(
    evaluated: Evaluation, host_id: str, prebuilt: set[str]
) -> None:
    host = evaluated.host(host_id)
    systems = {
        name.removeprefix("hyperhive/systems/")
        for name in host["etc"]
        if name.startswith("hyperhive/systems/")
    }
    assert systems == prebuilt
    declared = set(hive_toml(host)["agents"])
    assert host["hyperhive"]["agentPorts"] == {n: ports.agent_port(n) for n in declared}
    for name in ("hyperhive/hive.toml", "hyperhive/container.json", "hyperhive/agent-system.nix"):
        assert host["etc"][name]["enable"], name


@pytest.mark.parametrize("host_id", RUNNING_HOSTS)
def test_services_and_the_operator_clis_read_the_same_hive_toml(
    evaluated: Evaluation, host_id: str
) -> None:
    host = evaluated.host(host_id)
    generated = host["etc"]["hyperhive/hive.toml"]["source"]
    for name in (*HIVE_SERVICES, "hive-credentials"):
        assert service(host, name)["environment"]["HYPERHIVE_CONFIG"] == generated, name
    clis = [p for p in host["systemPackages"] if p["name"] == "hyperhive-cli"]
    assert len(clis) == 1, host["systemPackages"]
    assert "--set-default HYPERHIVE_CONFIG /etc/hyperhive/hive.toml" in clis[0]["postBuild"]


# ------------------------------------------------------------------ refused configurations


@pytest.mark.parametrize("host_id", sorted(configs.BAD_HOSTS))
def test_bad_input_fails_an_assertion_that_says_what_to_change(
    evaluated: Evaluation, host_id: str
) -> None:
    bad = configs.BAD_HOSTS[host_id]
    failed = evaluated.host(host_id)["assertions"]
    assert failed, f"{host_id}: the module accepted {bad.config}"
    matching = [m for m in failed if all(fragment in m for fragment in bad.expect)]
    assert matching, f"{host_id}: no failed assertion says {bad.expect}; they say:\n" + "\n".join(
        failed
    )
    assert len(failed) == 1, f"{host_id}: more fails than the one mistake:\n" + "\n".join(failed)
