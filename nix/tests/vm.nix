# The NixOS VM test (flake checks.<system>.vm): one machine with services.hyperhive,
# booted for real. Run it with `nix build .#checks.x86_64-linux.vm -L` (needs KVM).
#
# c0re runs the systems built with the host: the manager (enabled by default) and
# the declared agent alice are built with the VM's system, outside it, so bringing
# them up inside needs no network and no build.
{ pkgs, self }:
pkgs.testers.runNixOSTest {
  name = "hyperhive";

  nodes.machine =
    { lib, ... }:
    {
      imports = [ self.nixosModules.default ];

      virtualisation = {
        memorySize = 4096;
        diskSize = 8192;
        cores = 2;
        writableStore = true;
      };
      nix.settings.substituters = lib.mkForce [ ];

      services.hyperhive = {
        enable = true;
        hiveName = "vmtest";
        agents.alice = { };
      };

      environment.systemPackages = [ pkgs.curl ];
    };

  testScript = ''
    import json

    def events(agent: str, kind: str) -> list[dict]:
        out = machine.succeed(
            f"hive-events tail -n 100 --agent {agent} --kind {kind} -o json"
        )
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    machine.start()

    with subtest("NATS runs with JetStream, on loopback, behind the generated users"):
        machine.wait_for_unit("hive-credentials.service")
        machine.wait_for_unit("nats.service")
        machine.wait_until_succeeds(
            "curl -sf 'http://127.0.0.1:7222/healthz?js-enabled-only=true'"
        )
        varz = json.loads(machine.succeed("curl -sf http://127.0.0.1:7222/varz"))
        assert varz["auth_required"], varz
        assert varz["host"] == "127.0.0.1", varz
        for f in ["nats/auth.conf", "nats/credentials/admin.json", "nats/credentials/operator.json"]:
            mode = machine.succeed(f"stat -c %a /var/lib/hyperhive/{f}").strip()
            assert mode == "600", f"{f} has mode {mode}"

    with subtest("the hive's services run"):
        for unit in ["hive-c0re", "hive-projector", "hive-dashboard"]:
            machine.wait_for_unit(f"{unit}.service")

    with subtest("c0re keeps /run/hyperhive across its restarts"):
        machine.succeed("touch /run/hyperhive/vmtest-marker")
        machine.succeed("systemctl restart hive-c0re.service")
        machine.wait_for_unit("hive-c0re.service")
        machine.succeed("test -e /run/hyperhive/vmtest-marker")

    with subtest("the dashboard has claude-code at hand"):
        env = machine.succeed(
            "systemctl show -p Environment --value hive-dashboard.service"
        ).split()
        claude = next(e.split("=", 1)[1] for e in env if e.startswith("HYPERHIVE_CLAUDE="))
        machine.succeed(f"test -x {claude}")

    with subtest("the dashboard answers on port 7000"):
        machine.wait_for_open_port(7000)
        code = machine.succeed(
            "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:7000/"
        ).strip()
        assert code.isdigit() and 200 <= int(code) < 500, f"dashboard answered {code}"

    with subtest("c0re brings up the manager and the declared agent"):
        for agent in ["manager", "alice"]:
            machine.wait_until_succeeds(
                f"hive-events tail -n 100 --agent {agent} --kind agent.started -o json"
                f" | grep -q {agent}",
                timeout=600,
            )
            spawned = events(agent, "agent.spawned")
            assert any(e["agent"] == agent for e in spawned), spawned
        machine.succeed("hivectl agents | grep -q alice")
        machine.succeed("test -d /var/lib/hyperhive/agents/alice/state")

    with subtest("events survive a restart of NATS"):
        machine.succeed("systemctl restart nats.service")
        machine.wait_for_unit("nats.service")
        machine.wait_until_succeeds(
            "hive-events tail -n 100 --agent alice --kind agent.spawned -o json | grep -q alice"
        )
  '';
}
