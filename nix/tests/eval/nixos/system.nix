# Stand-in for NixOS' assertions, warnings, system.* and documentation.*, and a
# system.build.toplevel that, as NixOS's, refuses to exist while an assertion
# fails and depends on every unit, /etc file and system package (so evaluating
# it forces them all, an unfree package included).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  etc = lib.filterAttrs (_: e: e.enable) config.environment.etc;
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
      internal = true;
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
      internal = true;
    };
    system.stateVersion = mkOption {
      type = types.str;
      default = "25.11";
    };
    system.extraDependencies = mkOption {
      type = types.listOf types.pathInStore;
      default = [ ];
    };
    system.build = mkOption {
      type = types.submoduleWith {
        modules = [ { freeformType = types.lazyAttrsOf types.unspecified; } ];
      };
      default = { };
    };
    documentation.enable = mkOption {
      type = types.bool;
      default = true;
    };
    documentation.nixos.enable = mkOption {
      type = types.bool;
      default = true;
    };
  };

  config.system.build.toplevel =
    if failed != [ ] then
      throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
    else
      lib.showWarnings config.warnings (
        pkgs.writeText "nixos-system-${config.networking.hostName}" (
          builtins.toJSON {
            units = lib.mapAttrs (_: u: u.text) config.systemd.units;
            etc = lib.mapAttrs (_: e: "${e.source}") etc;
            packages = map toString config.environment.systemPackages;
            dependencies = map toString config.system.extraDependencies;
          }
        )
      );
}
