# Pure helpers shared by the NixOS module, the container base and the tests.
#
# Builtins only (no nixpkgs lib), so the test suite can evaluate every function
# here with a bare `nix-instantiate --eval` and compare it with the Python side:
# the name rules with `hyperhive.bus.subjects`, the port hash with FNV-1a, the
# environment with `hyperhive.config.ENV_VARS`, hive.toml with `HiveConfig`.
let
  inherit (builtins)
    bitXor
    concatStringsSep
    foldl'
    genList
    listToAttrs
    match
    stringLength
    substring
    ;

  mod = a: b: a - (a / b) * b;

  chars = s: genList (i: substring i 1 s) (stringLength s);

  # Byte values of the only characters a valid agent name can hold.
  codeTable =
    alphabet: first:
    genList (i: {
      name = substring i 1 alphabet;
      value = first + i;
    }) (stringLength alphabet);
  charCodes = listToAttrs (
    codeTable "0123456789" 48
    ++ codeTable "abcdefghijklmnopqrstuvwxyz" 97
    ++ [
      {
        name = "-";
        value = 45;
      }
    ]
  );
in
rec {
  # hyperhive.bus.subjects.HIVE_RE / AGENT_RE (builtins.match anchors the whole string).
  hiveNameRegex = "[a-z0-9][a-z0-9-]{0,31}";
  agentNameRegex = "[a-z][a-z0-9-]{0,30}";
  isValidHiveName = name: builtins.isString name && match hiveNameRegex name != null;
  isValidAgentName = name: builtins.isString name && match agentNameRegex name != null;
  agentNameRule = "1-31 of a-z, 0-9, '-', starting with a letter";
  hiveNameRule = "1-32 of a-z, 0-9, '-', starting with a letter or digit";

  # Web UI ports: the manager is fixed, every other agent hashes its name into
  # 8100..8999. Deterministic, no probing: c0re refuses a spawn that collides
  # with a live agent, the module refuses declared agents that collide.
  managerName = "manager";
  managerPort = 8000;
  agentPortBase = 8100;
  agentPortRange = 900;

  # FNV-1a, 32 bit, over the name's bytes. Products stay below 2^57, well inside
  # Nix's signed 64-bit integers.
  fnv1a32 =
    s:
    foldl' (
      hash: c:
      let
        code = charCodes.${c} or (throw "hyperhive: cannot hash '${s}': only a-z, 0-9 and '-' are allowed");
      in
      mod ((bitXor hash code) * 16777619) 4294967296
    ) 2166136261 (chars s);

  agentPort =
    name:
    if !(isValidAgentName name) then
      throw "hyperhive: invalid agent name '${name}': use ${agentNameRule}"
    else if name == managerName then
      managerPort
    else
      agentPortBase + mod (fnv1a32 name) agentPortRange;

  # The nixos-container backend runs agent NAME in container `h-NAME`, and
  # nixos-container allows 11 characters (hyperhive.core.lifecycle.container.
  # AGENT_NAME_MAX): on NixOS an agent's name has at most 9.
  containerPrefix = "h-";
  containerAgentNameMax = 9;

  # hyperhive.core.lifecycle.container._BIND_PATH_RE: what may go into the
  # unquoted EXTRA_NSPAWN_FLAGS (no whitespace, ':' or shell pattern characters).
  bindPathRegex = "/[A-Za-z0-9_./@+=,-]*";

  # An agent's container's host name: its name without trailing '-' (which
  # NixOS' networking.hostName refuses, and an agent name may end with).
  hostNameOf =
    name:
    let
      trimmed = match "(.*[^-])-*" name;
    in
    if trimmed == null then name else builtins.head trimmed;

  # The agents a host declares: services.hyperhive.agents plus the manager.
  declaredAgents =
    cfg:
    cfg.agents
    // (
      if cfg.manager.enable then
        {
          ${managerName} = {
            inherit (cfg.manager) model packages extraConfig;
          };
        }
      else
        { }
    );

  # The host's hive.toml, as the operator's CLIs and the containers see it.
  hostConfigFile = "/etc/hyperhive/hive.toml";

  # NATS roles and where their credentials live (hyperhive.bus.auth).
  agentRole = name: "agent-${name}";
  credentialsFile = stateDir: role: "${stateDir}/nats/credentials/${role}.json";
  # A hive's own roles (its agents, its operator) have a dir per hive.
  hiveCredentialsFile = stateDir: hive: role: "${stateDir}/nats/credentials/${hive}/${role}.json";
  authConfFile = stateDir: "${stateDir}/nats/auth.conf";
  jetstreamDir = stateDir: "${stateDir}/nats/jetstream";

  # Where things are inside an agent's container.
  containerPaths = {
    stateDir = "/state";
    claudeDir = "/root/.claude";
    configFile = "/etc/hyperhive/hive.toml";
    credentialsFile = "/etc/hyperhive/nats-credentials.json";
  };

  # The bind mounts c0re puts in EXTRA_NSPAWN_FLAGS of /etc/nixos-containers/<name>.conf
  # (nixos-container has no --bind; /run/systemd/nspawn/*.nspawn files are ignored).
  containerBinds =
    {
      stateDir,
      hostConfigFile,
      hive,
      name,
    }:
    [
      {
        source = "${stateDir}/agents/${name}/state";
        target = containerPaths.stateDir;
        readOnly = false;
      }
      {
        source = "${stateDir}/agents/${name}/claude";
        target = containerPaths.claudeDir;
        readOnly = false;
      }
      {
        source = hiveCredentialsFile stateDir hive (agentRole name);
        target = containerPaths.credentialsFile;
        readOnly = true;
      }
      {
        source = hostConfigFile;
        target = containerPaths.configFile;
        readOnly = true;
      }
    ];

  # EXTRA_NSPAWN_FLAGS is expanded unquoted by the container's start script, so
  # no path in it may hold whitespace (the module asserts that of stateDir).
  nspawnFlags =
    args:
    concatStringsSep " " (
      map (
        b: (if b.readOnly then "--bind-ro=" else "--bind=") + "${b.source}:${b.target}"
      ) (containerBinds args)
    );

  # `nixos-container create` writes these into the .conf; any of them set makes
  # the start script add --network-veth (a private netns: the agent's web UI and
  # the host's loopback NATS become unreachable). c0re empties them all and sets
  # PRIVATE_NETWORK=0.
  containerConfCleared = [
    "HOST_ADDRESS"
    "LOCAL_ADDRESS"
    "HOST_ADDRESS6"
    "LOCAL_ADDRESS6"
    "HOST_BRIDGE"
    "HOST_PORT"
  ];
  containerConfSet = {
    PRIVATE_NETWORK = "0";
  };

  # The environment of the host services (hive-c0re, hive-projector,
  # hive-dashboard, hive-credentials). One entry per hyperhive.config.SETTINGS
  # env var plus HYPERHIVE_CONFIG; HYPERHIVE_NATS_PORT is left out on purpose: it
  # only configures the embedded server, and NixOS runs services.nats instead.
  serviceEnvironment =
    {
      hive,
      natsUrl,
      stateDir,
      configFile,
      credentials,
      dashboardPort,
      dashboardAddress,
      logLevel,
      git,
      defaultModel ? "sonnet",
      restartCrashed ? false,
      restartMax ? 5,
    }:
    {
      HYPERHIVE_HIVE = hive;
      HYPERHIVE_NATS_URL = natsUrl;
      HYPERHIVE_STATE_DIR = stateDir;
      HYPERHIVE_CONFIG = configFile;
      HYPERHIVE_NATS_CREDENTIALS = credentials;
      HYPERHIVE_DASHBOARD_PORT = toString dashboardPort;
      HYPERHIVE_DASHBOARD_ADDRESS = dashboardAddress;
      HYPERHIVE_LOG_LEVEL = logLevel;
      HYPERHIVE_GIT = git;
      HYPERHIVE_BACKEND = "nixos-container";
      HYPERHIVE_DEFAULT_MODEL = defaultModel;
      HYPERHIVE_RESTART_CRASHED = if restartCrashed then "True" else "False";
      HYPERHIVE_RESTART_MAX = toString restartMax;
    };

  # The harness's environment inside the container. Hive name, NATS URL and log
  # level come from the host's hive.toml, bind-mounted read-only, so the
  # container's system never depends on host settings.
  harnessEnvironment =
    { git }:
    {
      HYPERHIVE_CONFIG = containerPaths.configFile;
      HYPERHIVE_STATE_DIR = containerPaths.stateDir;
      HYPERHIVE_NATS_CREDENTIALS = containerPaths.credentialsFile;
      HYPERHIVE_GIT = git;
      HOME = "/root";
      # Keeps claude's own ~/.claude.json inside the bind-mounted, per-agent dir.
      CLAUDE_CONFIG_DIR = containerPaths.claudeDir;
    };

  # hive.toml as an attribute set: exactly the fields of hyperhive.config.HiveConfig.
  hiveToml =
    {
      hive,
      natsUrl,
      stateDir,
      dashboardPort,
      dashboardAddress,
      logLevel,
      git,
      stream,
      agents,
      defaultModel ? "sonnet",
      restartCrashed ? false,
      restartMax ? 5,
    }:
    {
      inherit hive;
      nats_url = natsUrl;
      # Only the embedded server reads nats_port; services.nats listens instead.
      nats_port = 0;
      # Each service gets its role's file through HYPERHIVE_NATS_CREDENTIALS.
      nats_credentials = "";
      # services.nats here loads the users of stateDir itself.
      nats_state_dir = "";
      state_dir = stateDir;
      dashboard_port = dashboardPort;
      dashboard_address = dashboardAddress;
      log_level = logLevel;
      inherit git;
      # Agents run in nixos-containers here; the process backend's command is unused.
      backend = "nixos-container";
      harness_command = [
        "hyperhive"
        "harness"
        "--agent"
        "{agent}"
      ];
      default_model = defaultModel;
      # Inside each agent's container claude-code is on the harness's PATH.
      claude = "claude";
      restart_crashed = restartCrashed;
      restart_max = restartMax;
      stream = {
        max_bytes = stream.maxBytes;
        max_age = stream.maxAge;
        max_msg_size = stream.maxMsgSize;
        duplicate_window = stream.duplicateWindow;
        inherit (stream) replicas;
      };
      agents = builtins.mapAttrs (
        _: a:
        (if a.model == null then { } else { inherit (a) model; })
        // {
          backend = "nixos-container";
          inherit (a) packages;
          extra_config = a.extraConfig;
        }
      ) agents;
    };

  # hive.toml's extra_config is the body of an attribute set (`services.x.enable = true;`);
  # this is the NixOS module it becomes inside the agent's container.
  extraConfigModule = text: ''
    { config, lib, pkgs, modulesPath, ... }:
    {
    ${text}
    }
  '';
}
