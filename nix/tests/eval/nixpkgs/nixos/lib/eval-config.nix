# nixpkgs' nixos/lib/eval-config.nix, as nix/container.nix calls it: the modules
# given, over the stand-in NixOS options (../../../nixos), with the real module
# system of nixpkgs' lib.
{
  system ? null,
  modules,
  specialArgs ? { },
  ...
}:
let
  lib = import <hyperhive-nixpkgs-lib>;
  nixos = ../../../nixos;
in
lib.evalModules {
  class = "nixos";
  modules = [
    nixos
  ]
  ++ modules
  ++ lib.optional (system != null) { nixpkgs.hostPlatform = lib.mkDefault system; };
  specialArgs = {
    modulesPath = toString nixos;
  }
  // specialArgs;
}
