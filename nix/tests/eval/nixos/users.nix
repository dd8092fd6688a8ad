# Stand-in for NixOS' users.users and users.groups.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  user =
    { name, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = name;
        };
        description = mkOption {
          type = types.str;
          default = "";
        };
        isSystemUser = mkOption {
          type = types.bool;
          default = false;
        };
        isNormalUser = mkOption {
          type = types.bool;
          default = false;
        };
        group = mkOption {
          type = types.str;
          default = "";
        };
        extraGroups = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        home = mkOption {
          type = types.path;
          default = "/var/empty";
        };
      };
    };
  group =
    { name, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = name;
        };
        members = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
      };
    };
in
{
  options.users = {
    users = mkOption {
      type = types.attrsOf (types.submodule user);
      default = { };
    };
    groups = mkOption {
      type = types.attrsOf (types.submodule group);
      default = { };
    };
  };
}
