"""The VM test (nix/tests/vm.nix) stays in step with the services as the module builds them.

It runs only on a host with KVM; here its machine's configuration is evaluated
and what its script waits for (units, ports, files, variables) must be there.
"""

from __future__ import annotations

import re

import pytest

from tests.nix.configs import hive
from tests.nix.evaluation import Evaluator
from tests.nix.nixcli import ROOT

pytestmark = [pytest.mark.nix, pytest.mark.timeout(300)]

VM = ROOT / "nix" / "tests" / "vm.nix"


def test_what_the_vm_test_waits_for_is_what_the_module_makes(evaluator: Evaluator) -> None:
    text = VM.read_text(encoding="utf-8")
    hive_name = re.search(r'hiveName = "([a-z0-9-]+)";', text)
    agents = re.findall(r"agents\.([a-z][a-z0-9-]*) = \{ \};", text)
    assert hive_name, "vm.nix sets no hiveName"
    assert agents, "vm.nix declares no agent"
    host = evaluator.host(hive(hiveName=hive_name[1], agents={a: {} for a in agents}))
    assert host["assertions"] == []

    waited = set(re.findall(r'wait_for_unit\("([a-z0-9-]+)\.service"\)', text))
    for listed in re.findall(r"for unit in \[([^\]]+)\]", text):
        waited |= set(re.findall(r'"([a-z0-9-]+)"', listed))
    assert {"nats", "hive-credentials", "hive-c0re"} <= waited
    assert waited <= set(host["services"]), f"no such units: {waited - set(host['services'])}"

    monitor = host["nats"]["settings"]["http"]
    assert f"http://{monitor}/healthz" in text
    assert f"http://{monitor}/varz" in text
    dashboard_port = host["etc"]["hyperhive/hive.toml"]["value"]["dashboard_port"]
    assert f"wait_for_open_port({dashboard_port})" in text
    assert f"http://127.0.0.1:{dashboard_port}/" in text

    state = host["hyperhive"]["stateDir"]
    assert f"{state}/agents/" in text
    assert host["services"]["hive-c0re"]["serviceConfig"]["RuntimeDirectory"] == "hyperhive"
    assert "/run/hyperhive/" in text
    assert "HYPERHIVE_CLAUDE" in host["services"]["hive-dashboard"]["environment"]
    assert "HYPERHIVE_CLAUDE=" in text

    # c0re can bring up only what was built with the host.
    for agent in ["manager", *agents]:
        assert f"hyperhive/systems/{agent}" in host["etc"], agent
        assert f'"{agent}"' in text, f"the VM test does not look for {agent}"
