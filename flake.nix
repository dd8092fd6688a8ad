{
  description = "hyperhive: a hive of Claude Code agents in NixOS containers, event-sourced on NATS JetStream";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    # claude-code only (overlays.claude-unstable): stable lags too far behind.
    nixpkgs-unstable.url = "github:NixOS/nixpkgs/nixos-unstable";
  };

  outputs =
    {
      self,
      nixpkgs,
      nixpkgs-unstable,
    }:
    let
      inherit (nixpkgs) lib;
      hlib = import ./nix/lib.nix;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The three sources every agent container is evaluated from. The NixOS
      # module below defaults to the same ones, so `lib.agentSystem`, the module
      # and c0re's builder agree on every agent's system.
      containerSources = {
        nixpkgs = nixpkgs.outPath;
        claudeNixpkgs = nixpkgs-unstable.outPath;
        hyperhiveSrc = import ./nix/source.nix ./.;
      };
      containers = import ./nix/container.nix containerSources;
    in
    {
      overlays = {
        default = final: prev: { hyperhive = final.callPackage ./nix/package.nix { }; };
        claude-unstable = import ./nix/claude-overlay.nix { nixpkgs = nixpkgs-unstable.outPath; };
      };

      packages = forAllSystems (pkgs: {
        default = pkgs.callPackage ./nix/package.nix { };
      });

      nixosModules = {
        # services.hyperhive; containers evaluated from this flake's inputs.
        default =
          { lib, ... }:
          {
            imports = [ ./nix/module.nix ];
            services.hyperhive.containers = {
              nixpkgs = lib.mkDefault containerSources.nixpkgs;
              claudeNixpkgs = lib.mkDefault containerSources.claudeNixpkgs;
            };
          };
        # The agents' container base (hyperhive.agent.*), for hand-made containers.
        harness-base = ./nix/harness-base.nix;
      };

      lib = {
        # A per-agent NixOS system, e.g. in your flake:
        #   nixosConfigurations.alice = hyperhive.lib.agentSystem {
        #     system = "x86_64-linux"; name = "alice"; packages = [ "ripgrep" ];
        #   };
        inherit (containers) agentSystem agentToplevel agentModules;
        inherit (hlib)
          agentPort
          isValidAgentName
          isValidHiveName
          nspawnFlags
          ;
      };

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        vm = import ./nix/tests/vm.nix { inherit pkgs self; };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (ps: [
              ps.nats-py
              ps.msgspec
              ps.litestar
              ps.aiosqlite
              ps.jinja2
              ps.click
              ps.mcp
              ps.hatchling
              ps.pytest
              ps.pytest-asyncio
              ps.pytest-timeout
              ps.mypy
            ]))
            pkgs.ruff
            pkgs.nats-server
            pkgs.natscli
            pkgs.chromium
            pkgs.git
          ];
          shellHook = ''
            export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
          '';
        };
      });
    };
}
