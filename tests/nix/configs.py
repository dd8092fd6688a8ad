"""The hosts and agents' containers the evaluation tests evaluate (all in one run).

A host is a NixOS configuration as JSON data, as you would write it in
configuration.nix; a container is one agent as c0re's builder gets it. To check
another setup (a NATS cluster, say), add a host here and read its view in a
test with `evaluated.host("<id>")` (fixture `evaluated`), or evaluate one on the
spot with `evaluator.host({...})`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.nix.evaluation import UNSTABLE


def hive(**options: Any) -> dict[str, Any]:
    """A host with services.hyperhive enabled and these options."""
    return {"services": {"hyperhive": {"enable": True, **options}}}


EXTERNAL_NATS_URL = "nats://nats.internal:4222"
CLUSTER_ROUTES = ["nats-route://hive2.internal:6222", "nats-route://hive3.internal:6222"]

HOSTS: dict[str, dict[str, Any]] = {
    # services.hyperhive.enable = true, nothing else.
    "default": hive(),
    # Declared agents and most options away from their defaults; claude-code from
    # the second nixpkgs (as the flake's module sets it up).
    "agents": hive(
        hiveName="lab",
        stateDir="/srv/hive",
        dashboardPort=443,
        logLevel="debug",
        defaultModel="opus",
        restartCrashed=True,
        restartMax=3,
        openFirewall=True,
        stream={"maxAge": "90d", "maxBytes": 4294967296, "duplicateWindow": "5m", "replicas": 3},
        manager={"model": "opus", "packages": ["jq"]},
        agents={
            "alice": {"packages": ["ripgrep", "python3Packages.requests"]},
            "bob": {"model": "sonnet", "extraConfig": "services.postgresql.enable = true;\n"},
        },
        nats={"monitorPort": 7333},
        containers={"claudeNixpkgs": str(UNSTABLE)},
    ),
    # An existing NATS server, the dashboard open to the network, no prebuilt systems.
    "external-nats": hive(
        nats={"enable": False, "url": EXTERNAL_NATS_URL},
        agents={"carol": {}},
        openFirewall=True,
        dashboardAddress="0.0.0.0",
        dashboardPort=7443,
        containers={"prebuild": False},
    ),
    # One node of a three-host NATS cluster, the hive's stream replicated three times.
    "cluster": {
        "networking": {"hostName": "hive1"},
        **hive(
            hiveName="lab",
            stream={"replicas": 3},
            nats={
                "cluster": {
                    "name": "lab-cluster",
                    "routes": CLUSTER_ROUTES,
                }
            },
        ),
    },
    # The manager turned off: c0re still starts it, and nothing is built for it.
    "without-manager": hive(manager={"enable": False}),
    # Not enabled: agents declared, nothing of the hive may appear.
    "disabled": {"services": {"hyperhive": {"agents": {"alice": {}}}}},
}


@dataclass(frozen=True)
class BadHost:
    """A host the module must refuse: one failed assertion holds every fragment."""

    config: dict[str, Any]
    expect: tuple[str, ...]


BAD_HOSTS: dict[str, BadHost] = {
    "hostile-agent-name": BadHost(
        hive(agents={"../etc": {}}),
        ('services.hyperhive.agents."../etc"', "invalid agent name", "rename the agent"),
    ),
    "uppercase-agent-name": BadHost(
        hive(agents={"Alice": {}}),
        ("services.hyperhive.agents.Alice", "invalid agent name", "a-z, 0-9"),
    ),
    "agent-name-too-long-for-nixos-container": BadHost(
        hive(agents={"researcher": {}}),
        ("services.hyperhive.agents.researcher", "longer than 9", "h-researcher", "rename"),
    ),
    "agents-on-one-port": BadHost(
        hive(agents={"b9": {}, "ed": {}}),
        ("b9 and ed on 8980", "rename one of them"),
    ),
    "manager-declared-twice": BadHost(
        hive(agents={"manager": {}}),
        ("services.hyperhive.agents.manager", "already declared", "remove agents.manager"),
    ),
    "dashboard-on-the-managers-port": BadHost(
        hive(dashboardPort=8000),
        ("services.hyperhive.dashboardPort = 8000", "manager agent's web UI port", "pick a port"),
    ),
    "dashboard-in-the-agents-ports": BadHost(
        hive(dashboardPort=8500),
        ("services.hyperhive.dashboardPort = 8500", "8100-8999", "pick a port"),
    ),
    "dashboard-on-the-nats-port": BadHost(
        hive(dashboardPort=4222),
        ("services.hyperhive.dashboardPort and services.nats.port are both 4222", "own port"),
    ),
    "dashboard-on-port-0": BadHost(
        hive(dashboardPort=0),
        ("services.hyperhive.dashboardPort = 0", "no fixed port", "pick a port"),
    ),
    "nats-monitoring-on-its-usual-8222": BadHost(
        hive(nats={"monitorPort": 8222}),
        ("services.hyperhive.nats.monitorPort = 8222", "8100-8999", "pick a port"),
    ),
    "bad-hive-name": BadHost(
        hive(hiveName="My Hive"),
        ("services.hyperhive.hiveName", "'My Hive'", "1-32 of a-z"),
    ),
    "state-dir-with-a-space": BadHost(
        hive(stateDir="/var/lib/my hive"),
        ('services.hyperhive.stateDir = "/var/lib/my hive"', "absolute path of letters"),
    ),
    "nats-and-a-url": BadHost(
        hive(nats={"url": EXTERNAL_NATS_URL}),
        ("services.hyperhive.nats", "exactly one of nats.enable", "nats.url"),
    ),
    "neither-nats-nor-url": BadHost(
        hive(nats={"enable": False}),
        ("services.hyperhive.nats", "exactly one of nats.enable", "nats.url"),
    ),
    "cluster-routes-without-a-name": BadHost(
        hive(nats={"cluster": {"routes": CLUSTER_ROUTES}}),
        ("services.hyperhive.nats.cluster.routes", "set nats.cluster.name too"),
    ),
    "cluster-port-among-the-agents": BadHost(
        hive(nats={"cluster": {"name": "lab-cluster", "port": 8500}}),
        ("services.hyperhive.nats.cluster.port = 8500", "8100-8999", "pick a port"),
    ),
    "cluster-port-on-the-dashboard": BadHost(
        hive(dashboardPort=6222, nats={"cluster": {"name": "lab-cluster"}}),
        ("are both 6222", "own port"),
    ),
}


# One agent's container: `name`, `packages`, `extraConfig` (hive.toml's
# extra_config) and `claudeNixpkgs` (claude-code from the second nixpkgs).
CONTAINERS: dict[str, dict[str, Any]] = {
    "alice": {"name": "alice"},
    "bob": {
        "name": "bob",
        "packages": ["jq", "python3Packages.requests"],
        "extraConfig": 'environment.etc."bob-notes".text = "hello";\n',
        "claudeNixpkgs": True,
    },
    # A valid agent name that is no valid host name.
    "trailing-dash": {"name": "eve--"},
}


@dataclass(frozen=True)
class BadContainer:
    """An agent's container that must not come to exist, and why (fragments)."""

    spec: dict[str, Any]
    expect: tuple[str, ...]


BAD_CONTAINERS: dict[str, BadContainer] = {
    "hostile-name": BadContainer(
        {"name": "../etc"},
        ("hyperhive.agent.name", "'../etc'", "a-z, 0-9"),
    ),
    "unfree-package": BadContainer(
        {"name": "carol", "packages": ["vscode"]},
        ("vscode", "unfree license", "refusing to evaluate"),
    ),
    "unknown-package": BadContainer(
        {"name": "dave", "packages": ["no-such-package"]},
        ("agent 'dave'", "'no-such-package' is not an attribute of nixpkgs"),
    ),
}


@dataclass(frozen=True)
class Probe:
    """A package-like set the containers' unfree predicate is asked about."""

    package: dict[str, Any]
    admitted: bool


UNFREE_PROBES: tuple[Probe, ...] = (
    Probe({"pname": "claude-code", "version": "2.1.0", "name": "claude-code-2.1.0"}, True),
    Probe({"name": "claude-code-1.0.0"}, True),
    Probe({"pname": "vscode", "version": "1.102.0", "name": "vscode-1.102.0"}, False),
    Probe({"name": "claude-code-router-1.0.0"}, False),
    Probe({"pname": "claude", "version": "1", "name": "claude-1"}, False),
    Probe({"pname": "steam", "version": "1.0", "name": "steam-1.0"}, False),
)
