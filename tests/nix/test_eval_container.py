"""An agent's container system (nix/container.nix over nix/harness-base.nix), evaluated.

The containers are those of tests/nix/configs.py, evaluated once for the session
(fixture `evaluated`), each from the stand-in nixpkgs the way c0re's builder and
the module's prebuilt systems evaluate them. Booting one is the VM test's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.nix import configs
from tests.nix.evaluation import CLAUDE_STABLE, CLAUDE_UNSTABLE, EVAL_DIR, Evaluation
from tests.nix.nixcli import ROOT

pytestmark = [pytest.mark.nix, pytest.mark.timeout(300)]

GOOD = sorted(configs.CONTAINERS)
HARNESS_BASE = str(ROOT / "nix" / "harness-base.nix")


def harness(view: dict[str, Any]) -> dict[str, Any]:
    assert "hive-harness" in view["services"], sorted(view["services"])
    unit: dict[str, Any] = view["services"]["hive-harness"]
    return unit


def package_names(view: dict[str, Any]) -> list[str]:
    return [p["name"] for p in view["systemPackages"]]


@pytest.mark.parametrize("name", GOOD)
def test_the_container_system_evaluates(evaluated: Evaluation, name: str) -> None:
    view = evaluated.container(name)
    assert view["assertions"] == []
    assert view["malformedAssertions"] == 0
    assert view["warnings"] == []
    assert view["toplevel"] is not None, evaluated.why("container", name)


@pytest.mark.parametrize("name", GOOD)
def test_it_is_an_nspawn_container_and_never_sets_is_container(
    evaluated: Evaluation, name: str
) -> None:
    boot = evaluated.container(name)["boot"]
    assert boot["isNspawnContainer"] is True
    assert boot["isNspawnContainerDefinedIn"] == [HARNESS_BASE]
    # boot.isContainer is NixOS's to derive (it covers non-nspawn environments too).
    ours = [f for f in boot["isContainerDefinedIn"] if not f.startswith(str(EVAL_DIR) + "/")]
    assert ours == [], f"boot.isContainer is set by {ours}: set boot.isNspawnContainer instead"


def test_the_unfree_predicate_admits_claude_code_and_nothing_else(evaluated: Evaluation) -> None:
    admits = evaluated.container("alice")["unfreeAdmits"]
    asked = [(p.package.get("pname") or p.package["name"]) for p in configs.UNFREE_PROBES]
    assert dict(zip(asked, admits, strict=True)) == {
        (p.package.get("pname") or p.package["name"]): p.admitted for p in configs.UNFREE_PROBES
    }


@pytest.mark.parametrize(("name", "claude"), [("alice", CLAUDE_STABLE), ("bob", CLAUDE_UNSTABLE)])
def test_claude_code_comes_from_the_claude_nixpkgs_when_given(
    evaluated: Evaluation, name: str, claude: str
) -> None:
    view = evaluated.container(name)
    claudes = [n for n in package_names(view) if n.startswith("claude-code-")]
    assert claudes == [claude]
    assert all(p["path"] for p in view["systemPackages"]), view["systemPackages"]


def test_the_agents_packages_and_extra_config_are_in_its_system(evaluated: Evaluation) -> None:
    view = evaluated.container("bob")
    names = package_names(view)
    assert "jq-1.8.1" in names
    assert "requests-0" in names
    assert "bob-notes" in view["etc"], "the agent's extraConfig is part of its system"
    assert "jq-1.8.1" not in package_names(evaluated.container("alice"))


@pytest.mark.parametrize("name", GOOD)
def test_the_container_shares_the_hosts_network(evaluated: Evaluation, name: str) -> None:
    networking = evaluated.container(name)["networking"]
    agent = configs.CONTAINERS[name]["name"]
    # Its host name is the agent's, but for a trailing '-' no host name may have.
    assert networking == {"hostName": agent.rstrip("-"), "useDHCP": False, "firewall": False}


@pytest.mark.parametrize("name", GOOD)
def test_the_harness_unit_runs_the_agent_with_its_binds_in_place(
    evaluated: Evaluation, name: str
) -> None:
    view = evaluated.container(name)
    unit = harness(view)
    config = unit["serviceConfig"]
    agent = configs.CONTAINERS[name]["name"]
    assert config["ExecStart"] == f"{view['package']}/bin/hyperhive harness --agent {agent}"
    assert config["WorkingDirectory"] == "/state"
    assert config["Restart"] == "always"
    assert unit["wantedBy"] == ["multi-user.target"]
    assert unit["path"][:2] == [unit["path"][0], "/run/current-system/sw"]
    assert unit["path"][0].endswith("-git-2.50.1")
    assert unit["environment"]["HYPERHIVE_GIT"] == f"{unit['path'][0]}/bin/git"
    assert unit["unitConfig"]["StartLimitIntervalSec"] == 0
    # Without c0re's bind mounts the agent would write into a root `destroy` discards.
    assert unit["unitConfig"]["AssertPathIsMountPoint"] == ["/state", "/root/.claude"]
    assert set(unit["unitConfig"]["AssertPathExists"]) == {
        unit["environment"]["HYPERHIVE_NATS_CREDENTIALS"],
        unit["environment"]["HYPERHIVE_CONFIG"],
    }


@pytest.mark.parametrize("name", sorted(configs.BAD_CONTAINERS))
def test_a_bad_agent_never_gets_a_system_and_is_told_why(evaluated: Evaluation, name: str) -> None:
    bad = configs.BAD_CONTAINERS[name]
    entry = evaluated.containers[name]
    if "ok" in entry:
        assert entry["ok"]["toplevel"] is None, f"{name}: a system was made of {bad.spec}"
    why = evaluated.why("container", name)
    missing = [fragment for fragment in bad.expect if fragment not in why]
    assert not missing, f"{name}: the refusal does not say {missing}:\n{why}"
