# Stand-in for the NixOS networking options hyperhive's modules set.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.networking = {
    hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
    };
    useDHCP = mkOption {
      type = types.bool;
      default = true;
    };
    firewall = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      allowedUDPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
    };
  };
}
