# services.hyperhive: a hive of Claude Code agents on this host.
#
# Runs NATS (services.nats, JetStream, loopback, generated per-role credentials:
# nats.nix), hive-c0re, hive-projector and hive-dashboard as separate systemd
# services, all reading one generated hive.toml. Agents run in nixos-containers
# created by c0re; their systems come from nix/container.nix (agents.nix builds
# the declared ones with the host). See docs/nixos.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  hlib = import ./lib.nix;
  cfg = config.services.hyperhive;
  natsCfg = config.services.nats;

  inherit (lib) mkOption types;

  # ------------------------------------------------------------------ options

  agentOptions = {
    options = {
      model = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "opus";
        description = "The model the agent starts with (`hivectl model` changes it later); null: the default.";
      };
      packages = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "ripgrep"
          "jq"
        ];
        description = "Extra packages in the agent's container, as nixpkgs attribute paths.";
      };
      extraConfig = mkOption {
        type = types.lines;
        default = "";
        example = "services.postgresql.enable = true;";
        description = ''
          Extra NixOS configuration for the agent's container: the body of an
          attribute set, as hive.toml's `extra_config`.
        '';
      };
    };
  };

  # ------------------------------------------------------------------ derived

  git = "${pkgs.git}/bin/git";
  agents = hlib.declaredAgents cfg;

  natsUrl = if cfg.nats.enable then "nats://127.0.0.1:${toString natsCfg.port}" else cfg.nats.url;

  tomlFormat = pkgs.formats.toml { };
  hiveToml = tomlFormat.generate "hive.toml" (
    hlib.hiveToml {
      hive = cfg.hiveName;
      inherit natsUrl git agents;
      inherit (cfg)
        stateDir
        dashboardPort
        dashboardAddress
        logLevel
        stream
        defaultModel
        restartCrashed
        restartMax
        ;
    }
  );

  environmentFor =
    role:
    hlib.serviceEnvironment {
      hive = cfg.hiveName;
      inherit natsUrl git;
      inherit (cfg)
        stateDir
        dashboardPort
        dashboardAddress
        logLevel
        defaultModel
        restartCrashed
        restartMax
        ;
      configFile = "${hiveToml}";
      credentials = hlib.credentialsFile cfg.stateDir role;
    };

  # ------------------------------------------------------------------ services

  # The operator's CLIs, finding this host's hive.toml by default.
  operatorCli = pkgs.symlinkJoin {
    name = "hyperhive-cli";
    paths = [ cfg.package ];
    nativeBuildInputs = [ pkgs.makeWrapper ];
    postBuild = ''
      for prog in hyperhive hivectl hive-events; do
        rm -f "$out/bin/$prog"
        makeWrapper ${cfg.package}/bin/"$prog" "$out/bin/$prog" \
          --set-default HYPERHIVE_CONFIG ${hlib.hostConfigFile}
      done
    '';
  };

  natsUnits = lib.optionals cfg.nats.enable [ "nats.service" ];
  credentialsUnit = [ "hive-credentials.service" ];

  # For c0re: it drives nixos-container, nix-build and systemctl, so it keeps
  # root's powers; the rest of the sandbox still applies.
  baseHardening = {
    PrivateTmp = true;
    ProtectHome = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectClock = true;
    ProtectHostname = true;
    LockPersonality = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    UMask = "0077";
  };
  # For everything else: read-only system, writes only under the state dir, no
  # capabilities at all (files are root's own, so none are needed).
  strictHardening =
    baseHardening
    // {
      ProtectSystem = "strict";
      ReadWritePaths = [ cfg.stateDir ];
      PrivateDevices = true;
      NoNewPrivileges = true;
      ProtectControlGroups = true;
      ProtectProc = "invisible";
      RestrictNamespaces = true;
      RestrictAddressFamilies = [
        "AF_UNIX"
        "AF_INET"
        "AF_INET6"
      ];
      SystemCallFilter = [
        "@system-service"
        "~@privileged"
        "~@resources"
      ];
      CapabilityBoundingSet = "";
    };

  mkHiveService =
    {
      description,
      command,
      role,
      hardening,
      extra ? { },
    }:
    lib.recursiveUpdate {
      inherit description;
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ] ++ natsUnits ++ credentialsUnit;
      # Wants, not Requires: a NATS that fails to start (or restarts) must not
      # leave these stopped for good; they keep reconnecting until it is back.
      wants = natsUnits;
      requires = credentialsUnit;
      path = [
        pkgs.git
        "/run/current-system/sw"
      ];
      environment = environmentFor role;
      unitConfig.StartLimitIntervalSec = 0;
      serviceConfig = hardening // {
        Type = "simple";
        ExecStart = "${cfg.package}/bin/hyperhive ${command}";
        Restart = "always";
        RestartSec = 2;
      };
    } extra;
in
{
  imports = [
    ./agents.nix
    ./nats.nix
    ./ports.nix
  ];

  # ------------------------------------------------------------------ interface

  options.services.hyperhive = {
    enable = lib.mkEnableOption "hyperhive, a hive of Claude Code agents in NixOS containers";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The hyperhive package (`hyperhive`, `hivectl`, `hive-events`).";
    };

    hiveName = mkOption {
      type = types.str;
      default = "default";
      example = "lab";
      description = "Name of the hive (${hlib.hiveNameRule}): hive.toml `hive`, subjects `hive.<name>.>`.";
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/hyperhive";
      description = "The hive's state: event log, NATS store and credentials, per-agent dirs.";
    };

    dashboardPort = mkOption {
      type = types.port;
      default = 7000;
      description = "Port of the operator dashboard.";
    };

    dashboardAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "0.0.0.0";
      description = "Address the dashboard binds (loopback by default).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open dashboardPort in the firewall (useful only with a non-loopback dashboardAddress).";
    };

    logLevel = mkOption {
      type = types.enum [
        "debug"
        "info"
        "warning"
        "error"
      ];
      default = "info";
      description = "Log level of every hyperhive service.";
    };

    defaultModel = mkOption {
      type = types.str;
      default = "sonnet";
      description = "Model of an agent that names none (hive.toml `default_model`).";
    };

    restartCrashed = mkOption {
      type = types.bool;
      default = false;
      description = "Restart a crashed agent with backoff (hive.toml `restart_crashed`).";
    };

    restartMax = mkOption {
      type = types.int;
      default = 5;
      description = "Crash restarts in a row before an agent is left crashed (hive.toml `restart_max`).";
    };

    stream = {
      maxBytes = mkOption {
        type = types.int;
        default = 1073741824;
        description = "Most bytes the hive's JetStream stream keeps; -1 = unlimited.";
      };
      maxAge = mkOption {
        type = types.str;
        default = "0";
        example = "90d";
        description = "Oldest event the stream keeps, as a duration; \"0\" = forever.";
      };
      maxMsgSize = mkOption {
        type = types.int;
        default = 262144;
        description = "Largest single event the stream accepts, in bytes.";
      };
      duplicateWindow = mkOption {
        type = types.str;
        default = "2m";
        description = "How long a republished event id is recognised and stored once.";
      };
      replicas = mkOption {
        type = types.enum [
          1
          3
          5
        ];
        default = 1;
        description = "Copies of the stream in a NATS cluster.";
      };
    };

    nats = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Run the hive's NATS server here (services.nats with JetStream, on
          loopback, store under stateDir, generated per-role credentials).
          Disable to use an existing server (nats.url).
        '';
      };
      url = mkOption {
        type = types.str;
        default = "";
        example = "nats://nats.internal:4222";
        description = "URL of an existing NATS server, when nats.enable is false.";
      };
      monitorPort = mkOption {
        type = types.port;
        default = 7222;
        description = ''
          Port of nats-server's monitoring endpoint (/healthz, /varz, /jsz), on
          127.0.0.1. Not NATS' usual 8222: 8000-8999 belong to the agents' web UIs.
        '';
      };
      cluster = {
        name = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "hives";
          description = ''
            Join the NATS cluster of this name (the same on every host; the server's
            name is the host name); null: a single server. Give the hive's stream
            stream.replicas = 3.
          '';
        };
        port = mkOption {
          type = types.port;
          default = 6222;
          description = "Port nats-server listens on for the other nodes' routes (open it to the cluster's hosts only).";
        };
        routes = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [
            "nats-route://hive2.internal:6222"
            "nats-route://hive3.internal:6222"
          ];
          description = "The other nodes' route URLs.";
        };
      };
    };

    agents = mkOption {
      type = types.attrsOf (types.submodule agentOptions);
      default = { };
      example = lib.literalExpression ''
        {
          alice = { packages = [ "ripgrep" ]; };
          bob = { model = "sonnet"; extraConfig = "services.postgresql.enable = true;"; };
        }
      '';
      description = ''
        The hive's declared agents (hive.toml `[agents.<name>]`). Names follow
        ${hlib.agentNameRule}. Their container systems are built with the host.
      '';
    };

    manager = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Declare the manager agent (named `manager`, web UI on port 8000). c0re
          starts the manager at every start whether declared or not: keep it
          enabled, so that its container system is built.
        '';
      };
      model = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "The manager's model; null: the default.";
      };
      packages = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Extra packages in the manager's container.";
      };
      extraConfig = mkOption {
        type = types.lines;
        default = "";
        description = "Extra NixOS configuration for the manager's container.";
      };
    };

    containers = {
      nixpkgs = mkOption {
        type = types.path;
        default = pkgs.path;
        defaultText = lib.literalExpression "pkgs.path (the flake's module: its nixpkgs input)";
        description = "nixpkgs source the agents' containers evaluate (each container has its own instance).";
      };
      claudeNixpkgs = mkOption {
        type = types.nullOr types.path;
        default = null;
        defaultText = lib.literalExpression "null (the flake's module: its nixpkgs-unstable input)";
        description = "nixpkgs source claude-code comes from in the containers; null: containers.nixpkgs.";
      };
      prebuild = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Build the declared agents' container systems with the host (linked
          under /etc/hyperhive/systems/), so spawning them needs no build.
        '';
      };
    };

    claudePackage = mkOption {
      type = types.package;
      default =
        (import ./claude-overlay.nix {
          nixpkgs =
            if cfg.containers.claudeNixpkgs != null then
              cfg.containers.claudeNixpkgs
            else
              cfg.containers.nixpkgs;
        } pkgs pkgs).claude-code;
      defaultText = lib.literalExpression "claude-code of containers.claudeNixpkgs (else containers.nixpkgs), unfree allowed for it alone";
      description = ''
        The Claude Code CLI the dashboard runs for an agent's Claude login
        (`HYPERHIVE_CLAUDE` of hive-dashboard): by default the agents' own.
      '';
    };

    agentPorts = mkOption {
      type = types.attrsOf types.port;
      readOnly = true;
      description = "Web UI port of each declared agent (manager 8000, others 8100 + FNV-1a(name) mod 900).";
    };
  };

  # ------------------------------------------------------------------ implementation

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = hlib.isValidHiveName cfg.hiveName;
        message = "services.hyperhive.hiveName: invalid hive name '${cfg.hiveName}': use ${hlib.hiveNameRule}.";
      }
      {
        assertion = builtins.match hlib.bindPathRegex cfg.stateDir != null && !(lib.hasSuffix "/" cfg.stateDir);
        message = "services.hyperhive.stateDir = ${builtins.toJSON cfg.stateDir}: use an absolute path of letters, digits and _ . / @ + = , - only, without a trailing '/' (it goes unquoted into the containers' nspawn bind flags).";
      }
      {
        assertion = cfg.nats.enable != (cfg.nats.url != "");
        message = "services.hyperhive.nats: set exactly one of nats.enable (run NATS here) and nats.url (use an existing server).";
      }
      {
        assertion = cfg.nats.cluster.routes == [ ] || cfg.nats.cluster.name != null;
        message = "services.hyperhive.nats.cluster.routes: set nats.cluster.name too (the cluster's name).";
      }
    ];

    warnings =
      lib.optional
        (
          cfg.openFirewall
          && lib.elem cfg.dashboardAddress [
            "127.0.0.1"
            "::1"
            "localhost"
          ]
        )
        "services.hyperhive.openFirewall opens port ${toString cfg.dashboardPort}, but the dashboard only listens on ${cfg.dashboardAddress}.";

    environment.etc."hyperhive/hive.toml".source = hiveToml;
    environment.systemPackages = [ operatorCli ];

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall cfg.dashboardPort;

    systemd.tmpfiles.rules = [
      # 0711 with NATS here: the nats user may pass through to its store; nobody lists anything.
      "d ${cfg.stateDir} ${if cfg.nats.enable then "0711" else "0700"} root root - -"
      "d ${cfg.stateDir}/agents 0700 root root - -"
      "d ${cfg.stateDir}/nats ${if cfg.nats.enable then "0711" else "0700"} root root - -"
      "d ${cfg.stateDir}/nats/credentials 0700 root root - -"
    ]
    ++ lib.optional cfg.nats.enable "d ${hlib.jetstreamDir cfg.stateDir} 0750 ${natsCfg.user} ${natsCfg.group} - -";

    # Generates missing credentials (<state>/nats/credentials/<role>.json, 0600)
    # and rewrites <state>/nats/auth.conf; idempotent, existing ones are kept.
    systemd.services.hive-credentials = {
      description = "hyperhive: NATS credentials and the server's authorization block";
      wantedBy = [ "multi-user.target" ];
      before = [
        "hive-c0re.service"
        "hive-projector.service"
        "hive-dashboard.service"
      ]
      ++ natsUnits;
      after = [
        "systemd-tmpfiles-setup.service"
        "systemd-tmpfiles-resetup.service"
      ];
      environment = environmentFor "admin";
      serviceConfig = strictHardening // {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = lib.concatStringsSep " " (
          [
            "${cfg.package}/bin/hyperhive"
            "credentials"
            "--state-dir"
            cfg.stateDir
          ]
          ++ lib.concatMap (n: [
            "--agent"
            n
          ]) (builtins.attrNames agents)
        );
      };
    };

    systemd.services.hive-c0re = mkHiveService {
      description = "hyperhive c0re: decides, emits facts, runs the agents' containers";
      command = "c0re";
      role = "admin";
      hardening = baseHardening;
      extra.serviceConfig = {
        # Keeps /run/hyperhive (bind sources of running containers) across restarts.
        RuntimeDirectory = "hyperhive";
        RuntimeDirectoryPreserve = "yes";
        # An empty /root rather than an inaccessible one: git (and nix) must
        # be able to look for their per-user config and find none.
        ProtectHome = "tmpfs";
      };
    };

    systemd.services.hive-projector = mkHiveService {
      description = "hyperhive projector: the hive's stream into <state>/events.sqlite";
      command = "projector";
      role = "admin";
      hardening = strictHardening;
    };

    systemd.services.hive-dashboard = mkHiveService {
      description = "hyperhive operator dashboard";
      command = "dashboard";
      role = "operator";
      hardening = strictHardening;
      extra = {
        # An agent's Claude login runs claude from here; its PATH stays the rule's.
        environment.HYPERHIVE_CLAUDE = "${cfg.claudePackage}/bin/claude";
      }
      // lib.optionalAttrs (cfg.dashboardPort < 1024) {
        serviceConfig = {
          AmbientCapabilities = "CAP_NET_BIND_SERVICE";
          CapabilityBoundingSet = "CAP_NET_BIND_SERVICE";
        };
      };
    };
  };
}
