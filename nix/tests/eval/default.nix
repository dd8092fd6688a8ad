# Evaluates hyperhive's NixOS side with the real nixpkgs module system, in one go:
#
#   nix-instantiate --store dummy:// --eval --strict --json nix/tests/eval \
#     -I hyperhive-nixpkgs-lib=<nixpkgs>/lib --argstr spec SPEC.json
#
# SPEC.json:
#   { "hosts": { "<id>": <module: a NixOS configuration as JSON>, ... },
#     "containers": { "<id>": { "name": "alice", "packages": [ ], "claudeNixpkgs": false,
#                               "extraConfigFile": <optional: nix/lib.nix extraConfigModule's
#                                                   output for the agent's extraConfig, in a file> },
#                     ... },
#     "probes": [ <package-like sets the containers' unfree predicate is asked about> ],
#     "catch": true }
#
# Each host is nix/module.nix over the stand-in NixOS options (./nixos) on the
# stand-in nixpkgs (./nixpkgs); each container is nix/container.nix's system for
# that agent, from the same stand-ins (claude-code from ./nixpkgs-unstable when
# claudeNixpkgs). The answer holds views.nix's view of each, under "ok", or
# "error" when it failed to evaluate and `catch` is on (evaluate that one again
# with catch off to see why).
{ spec }:
let
  lib = import <hyperhive-nixpkgs-lib>;
  input = builtins.fromJSON (builtins.readFile spec);
  views = import ./views.nix { inherit lib; };
  root = ../../..;
  catch = input.catch or true;

  guard =
    view:
    if !catch then
      { ok = view; }
    else
      let
        r = builtins.tryEval (builtins.deepSeq view view);
      in
      if r.success then { ok = r.value; } else { error = "failed to evaluate"; };

  hostSystem =
    config:
    import ./nixpkgs/nixos/lib/eval-config.nix {
      system = "x86_64-linux";
      modules = [
        (root + "/nix/module.nix")
        config
      ];
    };

  # nix/container.nix's agentSystem. An agent's extraConfig is Nix text that
  # container.nix writes to the store (builtins.toFile) to import it, which the
  # dummy store cannot give back: the test writes the same module
  # (nix/lib.nix extraConfigModule) to a file and hands it over instead.
  containerSystem =
    args:
    let
      containers = import (root + "/nix/container.nix") {
        nixpkgs = toString ./nixpkgs;
        claudeNixpkgs = if args.claudeNixpkgs or false then toString ./nixpkgs-unstable else null;
        hyperhiveSrc = toString root;
      };
      agent = {
        system = "x86_64-linux";
        inherit (args) name;
        packages = args.packages or [ ];
      };
    in
    if args ? extraConfigFile then
      import ./nixpkgs/nixos/lib/eval-config.nix {
        system = null;
        modules = containers.agentModules agent ++ [ args.extraConfigFile ];
      }
    else
      containers.agentSystem agent;
in
{
  hosts = lib.mapAttrs (_: config: guard (views.host (hostSystem config))) (input.hosts or { });
  containers = lib.mapAttrs (
    _: args:
    guard (
      views.container {
        system = containerSystem args;
        probes = input.probes or [ ];
        inherit catch;
      }
    )
  ) (input.containers or { });
}
