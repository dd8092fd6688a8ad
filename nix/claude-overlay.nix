# overlays.claude-unstable: claude-code from a newer nixpkgs (stable lags too far).
#
# claude-code is unfree. The import below allows exactly that one package, so
# nothing is needed on the operator's side, and nothing else becomes allowed.
# The agents' containers evaluate their own nixpkgs, so harness-base.nix repeats
# the same scoped predicate there: a host-level allowUnfree never reaches them.
{ nixpkgs }:
final: prev: {
  claude-code =
    (import nixpkgs {
      localSystem = prev.stdenv.hostPlatform.system;
      config.allowUnfreePredicate = pkg: builtins.elem (prev.lib.getName pkg) [ "claude-code" ];
      # Explicit, so an impure evaluation never picks up ~/.config/nixpkgs/overlays.
      overlays = [ ];
    }).claude-code;
}
