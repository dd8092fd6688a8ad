# The base of every agent's container: a NixOS system run by nixos-container
# (systemd-nspawn) on the hive's host, sharing the host's network.
#
# Inside: the harness (`hyperhive harness --agent NAME`), claude-code, git and the
# agent's own packages. From the host, bind-mounted by c0re via EXTRA_NSPAWN_FLAGS
# (see nix/lib.nix containerBinds):
#   <state>/agents/<name>/state                          -> /state           (rw)
#   <state>/agents/<name>/claude                         -> /root/.claude    (rw)
#   <state>/nats/credentials/<hive>/agent-<name>.json    -> /etc/hyperhive/nats-credentials.json (ro)
#   /etc/hyperhive/hive.toml                             -> /etc/hyperhive/hive.toml (ro)
# NATS is the host's, on loopback (PRIVATE_NETWORK=0), as the agent's own user.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  hlib = import ./lib.nix;
  cfg = config.hyperhive.agent;
  paths = hlib.containerPaths;

  resolvePackage =
    attr:
    lib.attrByPath (lib.splitString "." attr) (throw
      "hyperhive: agent '${cfg.name}': package '${attr}' is not an attribute of nixpkgs"
    ) pkgs;
in
{
  options.hyperhive.agent = {
    name = lib.mkOption {
      type = lib.types.str;
      example = "alice";
      description = "The agent this container runs (${hlib.agentNameRule}).";
    };

    packages = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [
        "ripgrep"
        "python3Packages.requests"
      ];
      description = "Extra packages in the container, as nixpkgs attribute paths (hive.toml `packages`).";
    };

    source = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = ''
        The hyperhive source tree (a store path, see nix/source.nix) the harness
        package is built from with the container's own nixpkgs; null: the
        source next to this file.
      '';
    };

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix (
        lib.optionalAttrs (cfg.source != null) { src = cfg.source; }
      );
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { src = config.hyperhive.agent.source; }";
      description = "The hyperhive package whose `hyperhive harness` runs in the container.";
    };

    claudeNixpkgs = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = ''
        nixpkgs source claude-code is taken from (the flake passes its
        nixpkgs-unstable); null: the container's own nixpkgs.
      '';
    };
  };

  config = {
    assertions = [
      {
        assertion = hlib.isValidAgentName cfg.name;
        message = "hyperhive.agent.name: invalid agent name '${cfg.name}': use ${hlib.agentNameRule}.";
      }
    ];

    # Not boot.isContainer: that one is used for non-nspawn environments too
    # (and derives from this one).
    boot.isNspawnContainer = true;

    # The container evaluates its own nixpkgs: a host-level allowUnfree never
    # reaches it. Scoped to claude-code alone, nothing to set on the host.
    nixpkgs.config.allowUnfreePredicate = pkg: builtins.elem (lib.getName pkg) [ "claude-code" ];
    nixpkgs.overlays = lib.optional (cfg.claudeNixpkgs != null) (
      import ./claude-overlay.nix { nixpkgs = cfg.claudeNixpkgs; }
    );

    # A host name may not end in '-', an agent's name may.
    networking.hostName = lib.mkDefault (hlib.hostNameOf cfg.name);
    networking.useDHCP = false;
    # The host's network namespace is shared (PRIVATE_NETWORK=0): a firewall in
    # here would fight the host's (and has no CAP_NET_ADMIN to do it with).
    networking.firewall.enable = lib.mkDefault false;

    documentation.enable = lib.mkDefault false;
    documentation.nixos.enable = lib.mkDefault false;

    system.stateVersion = lib.mkDefault "25.11";

    environment.systemPackages = [
      cfg.package
      pkgs.claude-code
      pkgs.git
      pkgs.ripgrep
    ]
    ++ map resolvePackage cfg.packages;

    systemd.services.hive-harness = {
      description = "hyperhive harness of agent ${cfg.name}";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      # Same rule as on the host: whatever the agent adds to its own system
      # (environment.systemPackages) is on claude's PATH, and on the PATH of the
      # MCP tool server claude starts (`hyperhive mcp --agent NAME`, stdio)
      # from this environment, without touching this unit.
      path = [
        pkgs.git
        "/run/current-system/sw"
      ];
      environment = hlib.harnessEnvironment { git = "${pkgs.git}/bin/git"; };
      unitConfig = {
        # NATS may be down or restarting: keep trying, never give up.
        StartLimitIntervalSec = 0;
        # Without c0re's bind mounts the agent would write into the container's
        # own root, which `destroy` throws away: refuse to run at all.
        AssertPathIsMountPoint = [
          paths.stateDir
          paths.claudeDir
        ];
        AssertPathExists = [
          paths.credentialsFile
          paths.configFile
        ];
      };
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/hyperhive harness --agent ${cfg.name}";
        WorkingDirectory = paths.stateDir;
        Restart = "always";
        RestartSec = 2;
        KillMode = "mixed";
        TimeoutStopSec = 30;
      };
    };
  };
}
