# Stand-in for nixos/modules/misc/nixpkgs.nix: nixpkgs.{config,overlays,hostPlatform}
# and the `pkgs` every module receives, imported from the stand-in nixpkgs with
# them (so an unfree package needs this system's own nixpkgs.config to admit it).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;

  # Later definitions win, recursively, as in NixOS (mergeConfig).
  configType = lib.mkOptionType {
    name = "nixpkgs-config";
    description = "nixpkgs config";
    check = x: builtins.isAttrs x || lib.isFunction x;
    merge = _loc: defs: lib.foldr (def: acc: lib.recursiveUpdate def.value acc) { } defs;
  };
  overlayType = lib.mkOptionType {
    name = "nixpkgs-overlay";
    description = "nixpkgs overlay";
    check = lib.isFunction;
    merge = lib.mergeOneOption;
  };
in
{
  options.nixpkgs = {
    config = mkOption {
      type = configType;
      default = { };
    };
    overlays = mkOption {
      type = types.listOf overlayType;
      default = [ ];
    };
    hostPlatform = mkOption {
      type = types.either types.str types.attrs;
      description = "The platform the system runs on (no default, as in NixOS).";
    };
  };

  config._module.args.pkgs = import ../nixpkgs {
    localSystem = config.nixpkgs.hostPlatform;
    inherit (config.nixpkgs) config overlays;
  };
}
