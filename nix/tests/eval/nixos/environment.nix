# Stand-in for NixOS' environment.etc and environment.systemPackages.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  etcEntry =
    { name, config, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        target = mkOption { type = types.str; };
        text = mkOption {
          type = types.nullOr types.lines;
          default = null;
        };
        source = mkOption { type = types.path; };
        mode = mkOption {
          type = types.str;
          default = "symlink";
        };
        user = mkOption {
          type = types.str;
          default = "+0";
        };
        group = mkOption {
          type = types.str;
          default = "+0";
        };
      };
      config = {
        target = lib.mkDefault name;
        source = lib.mkIf (config.text != null) (
          lib.mkDefault (pkgs.writeText "etc-${baseNameOf name}" config.text)
        );
      };
    };
in
{
  options.environment = {
    etc = mkOption {
      type = types.attrsOf (types.submodule etcEntry);
      default = { };
    };
    systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
  };
}
