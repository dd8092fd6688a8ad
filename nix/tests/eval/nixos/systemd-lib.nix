# The types and rendering of NixOS' systemd units (nixos/lib/systemd-lib.nix,
# systemd-unit-options.nix), restated for the stand-in: the checks a unit's
# definitions must pass there must pass here.
{ lib }:
let
  inherit (lib) types;
in
rec {
  # The PATH entries NixOS appends to every service's own `path`.
  defaultPath = pkgs: [
    pkgs.coreutils
    pkgs.findutils
    pkgs.gnugrep
    pkgs.gnused
    pkgs.systemd
  ];

  unitNameType = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";

  # One [Section] key: list definitions are concatenated (repeatable keys),
  # anything else must be defined once or identically everywhere.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if lib.any (def: lib.isList def.value) defs' then
        lib.concatMap (def: lib.toList def.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };

  assertValueOneOf =
    name: values: group: attrs:
    lib.optional (
      attrs ? ${name} && !lib.elem attrs.${name} values
    ) "Systemd ${group} field `${name}' cannot have value `${toString attrs.${name}}'.";

  checkUnitConfig =
    group: checks: attrs:
    let
      plain = lib.mapAttrs (
        _: v: if lib.elem (v._type or "") [ "override" "if" ] then v.content else v
      ) attrs;
      errors = lib.concatMap (c: c group plain) checks;
    in
    if errors == [ ] then true else lib.trace (lib.concatStringsSep "\n" errors) false;

  checkService = checkUnitConfig "Service" [
    (assertValueOneOf "Type" [
      "exec"
      "simple"
      "forking"
      "oneshot"
      "dbus"
      "notify"
      "notify-reload"
      "idle"
    ])
    (assertValueOneOf "Restart" [
      "no"
      "on-success"
      "on-failure"
      "on-abnormal"
      "on-abort"
      "always"
    ])
  ];

  # How a value becomes the right-hand side of `Key=`: a set that is not a
  # package (or a string-like) cannot, and fails here as it would in NixOS.
  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;

  attrsToSection =
    attrs:
    lib.concatStrings (
      lib.concatLists (
        lib.mapAttrsToList (
          name: value: map (x: "${name}=${toOption x}\n") (if lib.isList value then value else [ value ])
        ) attrs
      )
    );

  environmentLines =
    env:
    lib.concatMapStrings (
      n: lib.optionalString (env.${n} != null) "Environment=${builtins.toJSON "${n}=${env.${n}}"}\n"
    ) (lib.attrNames env);
}
