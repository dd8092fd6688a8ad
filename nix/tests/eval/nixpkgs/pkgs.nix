# A stand-in for a nixpkgs package set: only what hyperhive's Nix files read.
#
# `import <nixpkgs> { localSystem; config; overlays; }` as nixpkgs takes it. Every
# package is a real `derivation` (never built: the tests evaluate against the
# dummy:// store), so store paths, string context and `${pkg}` behave as they do
# with nixpkgs. What nixpkgs would only find out at build time and the tests
# care about is checked at evaluation instead:
#   - an unfree package that config.allowUnfree / allowUnfreePredicate does not
#     admit refuses to evaluate (its outPath throws, as nixpkgs' meta check does);
#   - formats.toml refuses a null anywhere in the value (TOML has none);
#   - formats.json / formats.toml / writeText / writeShellScript / symlinkJoin
#     keep what they were given (generatedValue, text, postBuild), so a test can
#     read the file a module generates without building it.
# The nixpkgs library itself is the real one: `<hyperhive-nixpkgs-lib>`, put on
# the search path by the tests (-I hyperhive-nixpkgs-lib=<nixpkgs>/lib).
{
  # Which stand-in this is ("stable", "unstable"): claude-code's version says it.
  channel,
  # What pkgs.path is (the nixpkgs source tree).
  path,
}:
{
  localSystem ? null,
  system ? null,
  config ? { },
  overlays ? [ ],
  ...
}:
let
  lib = import <hyperhive-nixpkgs-lib>;

  hostSystem =
    if system != null then
      system
    else if localSystem == null then
      "x86_64-linux"
    else if builtins.isString localSystem then
      localSystem
    else
      localSystem.system;

  allowUnfree = config.allowUnfree or false;
  allowUnfreePredicate = config.allowUnfreePredicate or (_: false);

  stub =
    name: env:
    derivation (
      {
        inherit name;
        system = hostSystem;
        builder = "/bin/sh";
        args = [
          "-c"
          "echo stand-in derivation, never built >&2; exit 1"
        ];
      }
      // env
    );

  unfreeLicense = {
    shortName = "unfree";
    fullName = "Unfree";
    free = false;
  };
  freeLicense = {
    shortName = "mit";
    fullName = "MIT License";
    free = true;
  };

  package =
    {
      pname,
      version,
      unfree ? false,
      mainProgram ? pname,
    }:
    let
      drv = stub "${pname}-${version}" { inherit channel; };
      candidate = drv // {
        inherit pname version;
        meta = {
          license = if unfree then unfreeLicense else freeLicense;
          inherit mainProgram;
        };
      };
      allowed = !unfree || allowUnfree || allowUnfreePredicate candidate;
      refused = throw "Package ‘${pname}-${version}’ in the stand-in nixpkgs (${channel}) has an unfree license (‘unfree’), refusing to evaluate.";
    in
    if allowed then
      candidate
    else
      candidate
      // {
        outPath = refused;
        drvPath = refused;
      };

  containsNull =
    v:
    if v == null then
      true
    else if builtins.isAttrs v then
      builtins.any containsNull (builtins.attrValues v)
    else if builtins.isList v then
      builtins.any containsNull v
    else
      false;

  # pkgs/pkgs-lib/formats.nix: the value types of the JSON and TOML formats.
  jsonType =
    let
      valueType =
        lib.types.nullOr (
          lib.types.oneOf [
            lib.types.bool
            lib.types.int
            lib.types.float
            lib.types.str
            lib.types.path
            (lib.types.attrsOf valueType)
            (lib.types.listOf valueType)
          ]
        )
        // {
          description = "JSON value";
        };
    in
    valueType;
  tomlType =
    let
      valueType =
        lib.types.oneOf [
          lib.types.bool
          lib.types.int
          lib.types.float
          lib.types.str
          lib.types.path
          (lib.types.attrsOf valueType)
          (lib.types.listOf valueType)
        ]
        // {
          description = "TOML value";
        };
    in
    valueType;

  base = final: {
    inherit lib path config;
    stdenv.hostPlatform = {
      system = hostSystem;
      isLinux = true;
    };

    callPackage = lib.callPackageWith final;

    writeText =
      name: text:
      stub name { inherit text; }
      // {
        inherit text;
      };
    writeShellScript =
      name: text:
      stub name {
        text = "#!/bin/sh\n" + text;
        executable = "1";
      }
      // {
        inherit text;
      };
    symlinkJoin =
      {
        name,
        paths,
        postBuild ? "",
        ...
      }:
      stub name {
        paths = map toString paths;
        inherit postBuild;
      }
      // {
        inherit paths postBuild;
      };

    formats = {
      json =
        { }:
        {
          type = jsonType;
          generate =
            name: value:
            stub name { json = builtins.toJSON value; }
            // {
              generatedValue = value;
            };
        };
      toml =
        { }:
        {
          type = tomlType;
          generate =
            name: value:
            if containsNull value then
              throw "formats.toml: ${name}: TOML has no null, and the value holds one"
            else
              stub name { json = builtins.toJSON value; }
              // {
                generatedValue = value;
              };
        };
    };

    makeWrapper = package {
      pname = "make-wrapper-hook";
      version = "1";
    };
    coreutils = package {
      pname = "coreutils";
      version = "9.5";
    };
    findutils = package {
      pname = "findutils";
      version = "4.10.0";
    };
    gnugrep = package {
      pname = "gnugrep";
      version = "3.11";
    };
    gnused = package {
      pname = "gnused";
      version = "4.9";
    };
    systemd = package {
      pname = "systemd";
      version = "257.5";
    };
    git = package {
      pname = "git";
      version = "2.50.1";
    };
    nats-server = package {
      pname = "nats-server";
      version = "2.11.6";
    };
    ripgrep = package {
      pname = "ripgrep";
      version = "14.1.1";
      mainProgram = "rg";
    };
    jq = package {
      pname = "jq";
      version = "1.8.1";
    };
    curl = package {
      pname = "curl";
      version = "8.14.1";
    };
    claude-code = package {
      pname = "claude-code";
      version = if channel == "unstable" then "2.1.0" else "1.0.0";
      unfree = true;
      mainProgram = "claude";
    };
    # Another unfree package: nothing of hyperhive's may let it in.
    vscode = package {
      pname = "vscode";
      version = "1.102.0";
      unfree = true;
      mainProgram = "code";
    };

    python3Packages =
      let
        py =
          pname:
          package {
            inherit pname;
            version = "0";
          };
      in
      {
        buildPythonApplication =
          attrs:
          stub "${attrs.pname}-${attrs.version}" { inherit (attrs) src; }
          // (attrs.passthru or { })
          // {
            inherit (attrs) pname version src;
            meta = attrs.meta or { };
          };
        hatchling = py "hatchling";
        nats-py = py "nats-py";
        msgspec = py "msgspec";
        litestar = py "litestar";
        aiosqlite = py "aiosqlite";
        jinja2 = py "jinja2";
        click = py "click";
        mcp = py "mcp";
        requests = py "requests";
      };
  };
in
lib.fix (lib.foldl' (acc: overlay: lib.extends overlay acc) base overlays)
