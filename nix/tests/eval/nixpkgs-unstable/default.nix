# The stand-in of a second nixpkgs (the flake's nixpkgs-unstable, where claude-code
# comes from): the same package set, with its own claude-code version.
import ../nixpkgs/pkgs.nix {
  channel = "unstable";
  path = ./.;
}
