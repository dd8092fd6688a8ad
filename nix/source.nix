# The hyperhive source tree as the store sees it: only what building the package
# and the agents' containers needs, so editing docs, tests or the VM test never
# changes a container system (and never triggers a rebuild of one).
#
# Deterministic: filtering an already-filtered tree yields the same store path,
# which is what lets the module, the flake's lib and c0re's builder agree on it.
root:
let
  rootStr = toString root;
  keep = [
    "pyproject.toml"
    "README.md"
    "LICENSE"
    "hyperhive"
    "nix"
  ];
  filter =
    path: type:
    let
      p = toString path;
      rel = builtins.substring (builtins.stringLength rootStr + 1) (builtins.stringLength p) p;
      top = builtins.head (builtins.split "/" rel);
      base = baseNameOf p;
    in
    builtins.elem top keep
    && rel != "nix/tests"
    && base != "__pycache__"
    && builtins.match ".*\\.py[co]" base == null;
in
builtins.path {
  path = root;
  name = "hyperhive-src";
  inherit filter;
}
