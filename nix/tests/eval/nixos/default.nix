# The NixOS options hyperhive's modules set, declared as NixOS declares them
# (names, types, defaults, and what NixOS derives from them), without NixOS.
#
# nixpkgs' lib has the module system and every lib.types but none of NixOS's
# own option declarations; these stand-ins are what a test evaluates
# nix/module.nix and nix/harness-base.nix against. A module that sets an option
# NixOS lacks, or a value of the wrong type, fails here as it would there.
{
  imports = [
    ./nixpkgs.nix
    ./system.nix
    ./systemd.nix
    ./nats.nix
    ./environment.nix
    ./networking.nix
    ./users.nix
    ./containers.nix
  ];
}
