# Stand-in for nixos/modules/virtualisation/nixos-containers.nix (and the nspawn
# container profile): boot.isContainer, boot.isNspawnContainer (which implies
# isContainer), boot.enableContainers (off unless declarative `containers` are
# declared, as in NixOS 25.11) and the declarative `containers` themselves.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    boot.isContainer = mkOption {
      type = types.bool;
      default = false;
    };
    boot.isNspawnContainer = mkOption {
      type = types.bool;
      default = false;
    };
    boot.enableContainers = mkOption {
      type = types.bool;
      default = config.containers != { };
    };
    containers = mkOption {
      type = types.attrsOf (
        types.submodule {
          options = {
            autoStart = mkOption {
              type = types.bool;
              default = false;
            };
            path = mkOption {
              type = types.nullOr types.path;
              default = null;
            };
            config = mkOption {
              type = types.unspecified;
              default = { };
            };
            privateNetwork = mkOption {
              type = types.bool;
              default = false;
            };
          };
        }
      );
      default = { };
    };
  };

  config = lib.mkIf config.boot.isNspawnContainer { boot.isContainer = lib.mkDefault true; };
}
