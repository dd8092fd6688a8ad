# What the tests read of an evaluated system, as plain data (JSON): a host with
# services.hyperhive, and an agent's container system.
#
# Nothing here may force what the dummy:// store cannot give: the declared
# agents' prebuilt systems (/etc/hyperhive/systems/<name>) import from the
# store, so their entries are listed, not evaluated (the container systems are
# evaluated on their own, through nix/container.nix: `container` below).
{ lib }:
let
  sd = import ./nixos/systemd-lib.nix { inherit lib; };

  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # NixOS only reads `assertion` and `message`: anything else is a bug of ours.
  malformedAssertions =
    config:
    lib.filter (
      a: !(builtins.isAttrs a && builtins.isBool (a.assertion or null) && builtins.isString (a.message or null))
    ) config.assertions;

  service = config: name: s: {
    inherit (s)
      description
      after
      before
      wants
      requires
      wantedBy
      path
      environment
      serviceConfig
      unitConfig
      script
      ;
    restartTriggers = map toString s.restartTriggers;
    text = config.systemd.units."${name}.service".text;
  };

  package = p: {
    inherit (p) name;
    path = "${p}";
    postBuild = p.postBuild or null;
  };

  etcEntry =
    name: e:
    if lib.hasPrefix "hyperhive/systems/" name then
      {
        deferred = true;
        inherit (e) enable;
      }
    else
      {
        deferred = false;
        inherit (e) enable;
        source = "${e.source}";
        text = e.source.text or null;
        value = e.source.generatedValue or null;
      };

  # Who defines an option, by file: NixOS' own defaults come from the stand-ins.
  definedIn = option: lib.unique option.files;
in
rec {
  inherit failedAssertions;

  host =
    system:
    let
      c = system.config;
      pkgs = system._module.args.pkgs;
      cfg = c.services.hyperhive;
    in
    {
      assertions = failedAssertions c;
      malformedAssertions = builtins.length (malformedAssertions c);
      inherit (c) warnings;
      services = lib.mapAttrs (service c) (lib.filterAttrs (_: s: s.enable) c.systemd.services);
      paths = lib.mapAttrs (name: p: {
        inherit (p) description wantedBy pathConfig;
        text = c.systemd.units."${name}.path".text;
      }) (lib.filterAttrs (_: p: p.enable) c.systemd.paths);
      tmpfiles = c.systemd.tmpfiles.rules;
      nats = {
        inherit (c.services.nats)
          enable
          jetstream
          port
          dataDir
          settings
          user
          group
          ;
      };
      users = builtins.attrNames c.users.users;
      groups = builtins.attrNames c.users.groups;
      etc = lib.mapAttrs etcEntry c.environment.etc;
      systemPackages = map package c.environment.systemPackages;
      extraDependencies = map toString c.system.extraDependencies;
      firewall = {
        inherit (c.networking.firewall) enable allowedTCPPorts;
      };
      boot = {
        inherit (c.boot) enableContainers isContainer isNspawnContainer;
      };
      containers = builtins.attrNames c.containers;
      hyperhive =
        if cfg.enable then
          {
            package = "${cfg.package}";
            claudePackage = {
              inherit (cfg.claudePackage) name;
              path = "${cfg.claudePackage}";
            };
            inherit (cfg) agentPorts stateDir;
          }
        else
          null;
      pkgs = {
        # What NixOS appends to every service's `path`.
        defaultServicePath = map toString (sd.defaultPath pkgs);
        git = "${pkgs.git}";
        nats-server = "${pkgs.nats-server}";
        coreutils = "${pkgs.coreutils}";
      };
    };

  # With `catch`, what may fail to evaluate (a refused package, the toplevel of a
  # system whose assertions fail) is null. Without, only the toplevel is asked
  # for, so the failure is the one building the system would show (a failed
  # assertion comes first, as in NixOS).
  container =
    args:
    if args.catch then
      containerView args
    else
      { toplevel = "${args.system.config.system.build.toplevel}"; };

  containerView =
    { system, probes, ... }:
    let
      c = system.config;
      attempt =
        v:
        let
          r = builtins.tryEval (builtins.deepSeq v v);
        in
        if r.success then r.value else null;
    in
    {
      assertions = failedAssertions c;
      malformedAssertions = builtins.length (malformedAssertions c);
      inherit (c) warnings;
      boot = {
        inherit (c.boot) isNspawnContainer isContainer;
        isContainerDefinedIn = definedIn system.options.boot.isContainer;
        isNspawnContainerDefinedIn = definedIn system.options.boot.isNspawnContainer;
      };
      # The container's own predicate, asked about each probe (a package-like set);
      # none at all admits nothing, as in nixpkgs.
      unfreeAdmits = map (p: (c.nixpkgs.config.allowUnfreePredicate or (_: false)) p) probes;
      services = lib.mapAttrs (service c) (lib.filterAttrs (_: s: s.enable) c.systemd.services);
      # null: the package refused to evaluate (an unfree one nothing admits).
      systemPackages = map (p: {
        inherit (p) name;
        path = attempt "${p}";
      }) c.environment.systemPackages;
      networking = {
        hostName = attempt c.networking.hostName;
        inherit (c.networking) useDHCP;
        firewall = c.networking.firewall.enable;
      };
      etc = builtins.attrNames c.environment.etc;
      package = "${c.hyperhive.agent.package}";
      # null: the system refused to exist (a failed assertion, a refused package).
      toplevel = attempt "${c.system.build.toplevel}";
    };
}
