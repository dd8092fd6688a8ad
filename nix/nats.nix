# services.hyperhive, the NATS side (imported by module.nix; when nats.enable):
# nixpkgs' services.nats with JetStream, on loopback, its store under the state
# dir, loading the users hive-credentials.service generates.
#
# nixpkgs renders services.nats.settings to a JSON file in the store and runs
# `nats-server -c <it>`. The generated users must not enter the store, and
# nats-server resolves `include` relative to the including file's directory
# (an absolute path is joined onto it, not honoured: conf/parse.go), so the
# store file can't include them. Instead a root ExecStartPre puts three files
# side by side in /run/hyperhive-nats: base.conf (that same JSON), auth.conf (a
# copy of the root-only <state>/nats/auth.conf) and nats.conf, which includes
# both; nats-server (still nixpkgs' sandboxed `nats` user) runs from nats.conf.
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

  natsUser = natsCfg.user;
  natsGroup = natsCfg.group;
  runDir = "/run/hyperhive-nats";
  authConf = hlib.authConfFile cfg.stateDir;
  credentialsUnit = [ "hive-credentials.service" ];

  baseConf = (pkgs.formats.json { }).generate "nats.conf" natsCfg.settings;
  topConf = pkgs.writeText "hyperhive-nats.conf" ''
    # hyperhive: services.nats.settings (base.conf) + generated users (auth.conf).
    include "base.conf"
    include "auth.conf"
  '';

  # Runs as root ("+") before nats-server starts and on every reload: installs
  # the three files where the nats user (PrivateUsers, ProtectSystem=strict) can
  # read them, then checks the result.
  prepare = pkgs.writeShellScript "hyperhive-nats-prepare" ''
    set -eu
    umask 077
    if [ ! -s ${authConf} ]; then
      echo "hyperhive: ${authConf} is missing or empty: hive-credentials.service generates it" >&2
      exit 1
    fi
    ${pkgs.coreutils}/bin/install -d -m 0750 -o ${natsUser} -g ${natsGroup} ${runDir}
    for f in base.conf:${baseConf} nats.conf:${topConf} auth.conf:${authConf}; do
      ${pkgs.coreutils}/bin/install -m 0440 -o ${natsUser} -g ${natsGroup} "''${f#*:}" ${runDir}/"''${f%%:*}".new
      ${pkgs.coreutils}/bin/mv -f ${runDir}/"''${f%%:*}".new ${runDir}/"''${f%%:*}"
    done
    ${pkgs.nats-server}/bin/nats-server -c ${runDir}/nats.conf -t
  '';
in
{
  config = lib.mkIf (cfg.enable && cfg.nats.enable) {
    services.nats = {
      enable = true;
      # Explicit: nixpkgs' default (false) leaves JetStream unconfigured.
      jetstream = true;
      dataDir = hlib.jetstreamDir cfg.stateDir;
    }
    // lib.optionalAttrs (cfg.nats.cluster.name != null) {
      # One node of a cluster: JetStream needs a name per server (nixpkgs puts
      # serverName into settings.server_name; setting that directly would clash).
      serverName = config.networking.hostName;
    }
    // {
      settings = {
        host = "127.0.0.1";
        http = "127.0.0.1:${toString cfg.nats.monitorPort}";
      }
      // lib.optionalAttrs (cfg.nats.cluster.name != null) {
        cluster = {
          inherit (cfg.nats.cluster) name port routes;
        };
      };
    };

    systemd.services.nats = {
      after = credentialsUnit;
      requires = credentialsUnit;
      serviceConfig = {
        ExecStartPre = [ "+${prepare}" ];
        ExecStart = lib.mkForce "${pkgs.nats-server}/bin/nats-server -c ${runDir}/nats.conf";
        ExecReload = lib.mkForce [
          "+${prepare}"
          "${pkgs.coreutils}/bin/kill -HUP $MAINPID"
        ];
      };
    };

    # c0re adds an agent's credentials at spawn time (rewriting auth.conf):
    # reload nats-server so the new user exists, without dropping connections.
    systemd.paths.hive-nats-auth = {
      description = "hyperhive: watch the NATS authorization block";
      wantedBy = [ "multi-user.target" ];
      pathConfig = {
        PathChanged = authConf;
        Unit = "hive-nats-auth.service";
      };
    };
    systemd.services.hive-nats-auth = {
      description = "hyperhive: reload nats-server after its users changed";
      after = [ "nats.service" ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${config.systemd.package}/bin/systemctl try-reload-or-restart nats.service";
      };
    };
  };
}
