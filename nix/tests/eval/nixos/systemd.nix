# Stand-in for NixOS' systemd options: systemd.services, systemd.paths,
# systemd.tmpfiles.rules and systemd.package, typed as NixOS types them, plus
# systemd.units: every unit rendered to its file's text (as NixOS does), so a
# value that cannot be written into a unit fails the evaluation.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  sd = import ./systemd-lib.nix { inherit lib; };
  inherit (sd) unitNameType unitOption;

  unitList =
    description:
    mkOption {
      type = types.listOf unitNameType;
      default = [ ];
      inherit description;
    };

  # commonUnitOptions + the [Unit] keys NixOS derives from them.
  commonUnit =
    { config, options, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        description = mkOption {
          type = types.singleLineStr;
          default = "";
        };
        documentation = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        requires = unitList "Units this one requires (Requires=).";
        wants = unitList "Units this one wants (Wants=).";
        after = unitList "Units this one starts after (After=).";
        before = unitList "Units this one starts before (Before=).";
        bindsTo = unitList "BindsTo=.";
        partOf = unitList "PartOf=.";
        conflicts = unitList "Conflicts=.";
        requisite = unitList "Requisite=.";
        onFailure = unitList "OnFailure=.";
        wantedBy = unitList "Units that want this one ([Install] WantedBy=).";
        requiredBy = unitList "Units that require this one.";
        aliases = unitList "Aliases of the unit.";
        unitConfig = mkOption {
          type = types.attrsOf unitOption;
          default = { };
        };
        restartTriggers = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        reloadTriggers = mkOption {
          type = types.listOf unitOption;
          default = [ ];
        };
        startLimitBurst = mkOption { type = types.int; };
        startLimitIntervalSec = mkOption { type = types.int; };
      };

      config.unitConfig =
        lib.optionalAttrs (config.requires != [ ]) { Requires = toString config.requires; }
        // lib.optionalAttrs (config.wants != [ ]) { Wants = toString config.wants; }
        // lib.optionalAttrs (config.after != [ ]) { After = toString config.after; }
        // lib.optionalAttrs (config.before != [ ]) { Before = toString config.before; }
        // lib.optionalAttrs (config.bindsTo != [ ]) { BindsTo = toString config.bindsTo; }
        // lib.optionalAttrs (config.partOf != [ ]) { PartOf = toString config.partOf; }
        // lib.optionalAttrs (config.conflicts != [ ]) { Conflicts = toString config.conflicts; }
        // lib.optionalAttrs (config.requisite != [ ]) { Requisite = toString config.requisite; }
        // lib.optionalAttrs (config.onFailure != [ ]) { OnFailure = toString config.onFailure; }
        // lib.optionalAttrs (config.description != "") { Description = config.description; }
        // lib.optionalAttrs (config.documentation != [ ]) {
          Documentation = toString config.documentation;
        }
        // lib.optionalAttrs options.startLimitIntervalSec.isDefined {
          StartLimitIntervalSec = toString config.startLimitIntervalSec;
        }
        // lib.optionalAttrs options.startLimitBurst.isDefined {
          StartLimitBurst = toString config.startLimitBurst;
        };
    };

  lines = mkOption {
    type = types.lines;
    default = "";
  };

  serviceUnit =
    { name, config, ... }:
    {
      imports = [ commonUnit ];
      options = {
        environment = mkOption {
          type = types.attrsOf (
            types.nullOr (
              types.oneOf [
                types.str
                types.path
                types.package
              ]
            )
          );
          default = { };
        };
        path = mkOption {
          type = types.listOf (
            types.oneOf [
              types.package
              types.str
            ]
          );
          default = [ ];
        };
        serviceConfig = mkOption {
          type = types.addCheck (types.attrsOf unitOption) sd.checkService;
          default = { };
        };
        script = lines;
        scriptArgs = mkOption {
          type = types.str;
          default = "";
        };
        preStart = lines;
        postStart = lines;
        reload = lines;
        preStop = lines;
        postStop = lines;
        restartIfChanged = mkOption {
          type = types.bool;
          default = true;
        };
        reloadIfChanged = mkOption {
          type = types.bool;
          default = false;
        };
        stopIfChanged = mkOption {
          type = types.bool;
          default = true;
        };
        startAt = mkOption {
          type = types.either types.str (types.listOf types.str);
          default = [ ];
        };
      };

      config = lib.mkMerge [
        {
          # NixOS' minimal default PATH of every service, after the unit's own.
          path = lib.mkAfter (sd.defaultPath pkgs);
          environment.PATH = "${lib.makeBinPath config.path}:${lib.makeSearchPathOutput "bin" "sbin" config.path}";
        }
        (lib.mkIf (config.script != "") {
          serviceConfig.ExecStart =
            "${pkgs.writeShellScript "${name}-start" config.script} " + config.scriptArgs;
        })
        (lib.mkIf (config.preStart != "") {
          serviceConfig.ExecStartPre = [ "${pkgs.writeShellScript "${name}-pre-start" config.preStart}" ];
        })
      ];
    };

  pathUnit = {
    imports = [ commonUnit ];
    options.pathConfig = mkOption {
      type = types.attrsOf unitOption;
      default = { };
    };
  };

  installSection =
    unit:
    sd.attrsToSection (
      lib.optionalAttrs (unit.wantedBy != [ ]) { WantedBy = toString unit.wantedBy; }
      // lib.optionalAttrs (unit.requiredBy != [ ]) { RequiredBy = toString unit.requiredBy; }
    );

  renderService = name: s: ''
    [Unit]
    ${sd.attrsToSection s.unitConfig}
    ${lib.optionalString (
      s.restartTriggers != [ ]
    ) "X-Restart-Triggers=${builtins.hashString "sha256" (builtins.toJSON s.restartTriggers)}"}
    [Service]
    ${sd.environmentLines s.environment}
    ${sd.attrsToSection s.serviceConfig}
    [Install]
    ${installSection s}
  '';

  renderPath = name: p: ''
    [Unit]
    ${sd.attrsToSection p.unitConfig}
    [Path]
    ${sd.attrsToSection p.pathConfig}
    [Install]
    ${installSection p}
  '';
in
{
  options.systemd = {
    package = mkOption {
      type = types.package;
      default = pkgs.systemd;
    };
    services = mkOption {
      type = types.attrsOf (types.submodule serviceUnit);
      default = { };
    };
    paths = mkOption {
      type = types.attrsOf (types.submodule pathUnit);
      default = { };
    };
    tmpfiles.rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    units = mkOption {
      type = types.attrsOf (types.submodule { options.text = mkOption { type = types.str; }; });
      readOnly = true;
      description = "The unit files, as text (stand-in: what NixOS writes to /etc/systemd/system).";
    };
  };

  config.systemd.units =
    lib.mapAttrs' (n: s: lib.nameValuePair "${n}.service" { text = renderService n s; }) (
      lib.filterAttrs (_: s: s.enable) config.systemd.services
    )
    // lib.mapAttrs' (n: p: lib.nameValuePair "${n}.path" { text = renderPath n p; }) (
      lib.filterAttrs (_: p: p.enable) config.systemd.paths
    );
}
