# The options a NixOS module file declares, without nixpkgs.
#
#   nix-instantiate --eval --strict --json nix/tests/options.nix --argstr file /abs/module.nix
#
# Calls the module with a stand-in `lib` that only records what mkOption was
# given, and walks `options` (into submodules: attrsOf -> `<name>`, listOf -> `*`).
# Nothing under `config` is evaluated. Each option comes out as
# { name; default ? <JSON value>; defaultText ? <text>; readOnly; }.
# A default that isn't plain data must come with a defaultText (good practice
# anyway): the stand-in has no pkgs to evaluate it with.
{ file }:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    isAttrs
    isFunction
    isString
    ;

  option = attrs: attrs // { _type = "option"; };
  stubType = kind: extra: { _stubType = kind; } // extra;
  simple = kind: stubType kind { };

  types = {
    bool = simple "bool";
    str = simple "str";
    lines = simple "lines";
    int = simple "int";
    float = simple "float";
    port = simple "port";
    path = simple "path";
    package = simple "package";
    anything = simple "anything";
    raw = simple "raw";
    unspecified = simple "unspecified";
    attrs = simple "attrs";
    ints = {
      positive = simple "int";
      unsigned = simple "int";
      u16 = simple "int";
      u32 = simple "int";
    };
    listOf = elem: stubType "listOf" { inherit elem; };
    attrsOf = elem: stubType "attrsOf" { inherit elem; };
    lazyAttrsOf = elem: stubType "attrsOf" { inherit elem; };
    nullOr = elem: stubType "nullOr" { inherit elem; };
    either = a: b: stubType "either" { alternatives = [ a b ]; };
    oneOf = alternatives: stubType "either" { inherit alternatives; };
    enum = values: stubType "enum" { inherit values; };
    strMatching = regex: stubType "strMatching" { inherit regex; };
    submodule = module: stubType "submodule" { inherit module; };
    functionTo = elem: stubType "functionTo" { inherit elem; };
  };

  lib = {
    inherit types;
    mkOption = option;
    mkEnableOption =
      what:
      option {
        type = types.bool;
        default = false;
        description = "Whether to enable ${what}.";
      };
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    literalMD = text: {
      _type = "literalMD";
      inherit text;
    };
    mdDoc = text: text;
  };

  moduleArgs = {
    inherit lib;
    config = { };
    options = { };
    pkgs = { };
    name = "<name>";
    modulesPath = "";
  };

  optionsOf = module: (if isFunction module then module moduleArgs else module).options or { };

  isOption = v: isAttrs v && (v._type or null) == "option";

  describe =
    path: o:
    {
      name = concatStringsSep "." path;
      readOnly = o.readOnly or false;
    }
    // (
      if o ? defaultText then
        { defaultText = if isString o.defaultText then o.defaultText else o.defaultText.text; }
      else if o ? default then
        { inherit (o) default; }
      else
        { }
    );

  nested =
    path: type:
    if !(isAttrs type) || !(type ? _stubType) then
      [ ]
    else if type._stubType == "submodule" then
      walk path (optionsOf type.module)
    else if type._stubType == "attrsOf" then
      nested (path ++ [ "<name>" ]) type.elem
    else if type._stubType == "listOf" then
      nested (path ++ [ "*" ]) type.elem
    else if type._stubType == "nullOr" then
      nested path type.elem
    else
      [ ];

  walk =
    path: attrs:
    concatLists (
      map (
        key:
        let
          v = attrs.${key};
          p = path ++ [ key ];
        in
        if isOption v then
          [ (describe p v) ] ++ nested p (v.type or null)
        else if isAttrs v then
          walk p v
        else
          [ ]
      ) (attrNames attrs)
    );
in
walk [ ] (optionsOf (import file))
