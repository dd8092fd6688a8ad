# The NixOS VM test (flake checks.<system>.vm): one machine with services.hyperhive,
# booted for real. Run it with `nix build .#checks.x86_64-linux.vm -L` (needs KVM).
{ pkgs, self }:
let
  system = pkgs.stdenv.hostPlatform.system;
  # The exact system c0re's builder evaluates for an agent "alice" with an empty
  # spec, built outside the VM: the spawn inside needs no network and no build.
  alice = self.lib.agentToplevel {
    inherit system;
    name = "alice";
  };
in
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
      };

      system.extraDependencies = [ alice ];
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

    with subtest("the dashboard answers on port 7000"):
        machine.wait_for_open_port(7000)
        code = machine.succeed(
            "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:7000/"
        ).strip()
        assert code.isdigit() and 200 <= int(code) < 500, f"dashboard answered {code}"

    with subtest("an agent spawned with hivectl shows up in hive-events tail"):
        machine.succeed("hivectl agents")
        machine.succeed("hivectl spawn alice")
        machine.wait_until_succeeds(
            "hive-events tail -n 100 --agent alice --kind agent.spawned -o json | grep -q alice",
            timeout=600,
        )
        spawned = events("alice", "agent.spawned")
        assert any(e["kind"] == "agent.spawned" and e["agent"] == "alice" for e in spawned), spawned

    with subtest("events survive a restart of NATS"):
        machine.succeed("systemctl restart nats.service")
        machine.wait_for_unit("nats.service")
        machine.wait_until_succeeds(
            "hive-events tail -n 100 --agent alice --kind agent.spawned -o json | grep -q alice"
        )
  '';
}
