# One agent's container system, from store paths only.
#
# The flake's `lib.agentSystem`, the NixOS module (declared agents, built with the
# host) and the builder c0re runs at spawn time (/etc/hyperhive/agent-system.nix)
# all come through here with the same three sources, so they evaluate to the very
# same system: a spawn of a declared agent finds it built and needs no network.
{
  # nixpkgs source the container evaluates (its own instance, not the host's pkgs).
  nixpkgs,
  # nixpkgs source claude-code is taken from (nixpkgs-unstable); null: `nixpkgs`.
  claudeNixpkgs ? null,
  # The hyperhive source tree (nix/source.nix) the harness package is built from.
  hyperhiveSrc,
}:
let
  hlib = import ./lib.nix;
in
rec {
  agentModules =
    {
      system,
      name,
      packages ? [ ],
      extraConfig ? "",
    }:
    [
      "${hyperhiveSrc}/nix/harness-base.nix"
      {
        nixpkgs.hostPlatform = system;
        hyperhive.agent = {
          inherit name packages claudeNixpkgs;
          source = hyperhiveSrc;
        };
      }
    ]
    ++ (
      if extraConfig == "" then
        [ ]
      else
        [ (builtins.toFile "hyperhive-agent-${name}-extra-config.nix" (hlib.extraConfigModule extraConfig)) ]
    );

  # The evaluated NixOS configuration (what a flake's nixosConfigurations.<name> holds).
  agentSystem =
    args:
    import "${nixpkgs}/nixos/lib/eval-config.nix" {
      # The platform comes from nixpkgs.hostPlatform; null avoids the impure default.
      system = null;
      modules = agentModules args;
    };

  agentToplevel = args: (agentSystem args).config.system.build.toplevel;
}
