# The stand-in nixpkgs the tests evaluate hyperhive's NixOS side with (see pkgs.nix).
import ./pkgs.nix {
  channel = "stable";
  path = ./.;
}
