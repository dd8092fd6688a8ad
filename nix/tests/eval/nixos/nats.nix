# Stand-in for nixpkgs' nixos/modules/services/networking/nats.nix: the same
# option names and types, and the same config when enabled (settings from the
# options, the nats unit with its own ExecStart/ExecReload and sandbox, the nats
# user), so hyperhive's overrides of it are checked against what they override.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.services.nats;
  format = pkgs.formats.json { };
  configFile = format.generate "nats.conf" cfg.settings;
in
{
  options.services.nats = {
    enable = lib.mkEnableOption "NATS messaging system";
    user = mkOption {
      type = types.str;
      default = "nats";
    };
    group = mkOption {
      type = types.str;
      default = "nats";
    };
    serverName = mkOption {
      type = types.str;
      default = "nats";
    };
    jetstream = lib.mkEnableOption "JetStream";
    port = mkOption {
      type = types.port;
      default = 4222;
    };
    dataDir = mkOption {
      type = types.path;
      default = "/var/lib/nats";
    };
    settings = mkOption {
      type = format.type;
      default = { };
    };
    validateConfig = mkOption {
      type = types.bool;
      default = true;
    };
  };

  config = lib.mkIf cfg.enable {
    services.nats.settings = {
      server_name = cfg.serverName;
      inherit (cfg) port;
      jetstream = lib.optionalAttrs cfg.jetstream { store_dir = cfg.dataDir; };
    };

    systemd.services.nats = {
      description = "NATS messaging system";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = lib.mkMerge [
        (lib.mkIf (cfg.dataDir == "/var/lib/nats") {
          StateDirectory = "nats";
          StateDirectoryMode = "0750";
        })
        {
          Type = "simple";
          ExecStart = "${pkgs.nats-server}/bin/nats-server -c ${configFile}";
          ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
          Restart = "on-failure";
          User = cfg.user;
          Group = cfg.group;
          KillSignal = "SIGUSR2";
          CapabilityBoundingSet = "";
          NoNewPrivileges = true;
          PrivateTmp = true;
          PrivateUsers = true;
          ProtectSystem = "strict";
          ProtectHome = true;
          ReadWritePaths = [ cfg.dataDir ];
          RestrictAddressFamilies = [
            "AF_INET"
            "AF_INET6"
          ];
          SystemCallFilter = [
            "@system-service"
            "~@privileged"
          ];
          UMask = "0077";
        }
      ];
    };

    users.users = lib.mkIf (cfg.user == "nats") {
      nats = {
        description = "NATS daemon user";
        isSystemUser = true;
        inherit (cfg) group;
        home = cfg.dataDir;
      };
    };
    users.groups = lib.mkIf (cfg.group == "nats") { nats = { }; };
  };
}
