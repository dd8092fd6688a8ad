"""What the NixOS units' environment holds, and why, as the tests check it.

Every `HYPERHIVE_*` variable a unit sets must be one `hyperhive.config` reads
(`ENV_VARS`); every other variable is listed in `NOT_OURS` with who reads it.
"""

from __future__ import annotations

# Runtime settings that the common environment of the host services
# (nix/lib.nix serviceEnvironment) leaves out, and why.
NOT_IN_SERVICE_ENVIRONMENT = {
    "HYPERHIVE_NATS_PORT": "configures only the embedded nats-server of `hyperhive up` and "
    "`hyperhive nats`; NixOS runs services.nats and gives every service HYPERHIVE_NATS_URL",
    "HYPERHIVE_HARNESS_COMMAND": "the process backend's command; NixOS runs agents in "
    "nixos-containers, and hive.toml still carries the setting",
    "HYPERHIVE_CLAUDE": "on the host only hive-dashboard runs claude (an agent's Claude "
    "login), so it alone gets it (UNIT_EXTRAS); inside each container claude-code is on the "
    "harness's PATH, and hive.toml says `claude`",
    "HYPERHIVE_NATS_STATE_DIR": "one hive per host: services.nats loads the users of stateDir "
    "itself, so the hive's own state dir is the NATS state dir",
}

# Host units that get settings beyond the common environment.
UNIT_EXTRAS = {
    "hive-dashboard": {"HYPERHIVE_CLAUDE"},
}

# Settings whose value in a unit's environment legitimately differs from hive.toml's.
PER_SERVICE = {
    "nats_credentials": "each service gets its own role's file; hive.toml leaves it empty",
    "claude": "hive-dashboard's is the host's claude-code (services.hyperhive.claudePackage); "
    "hive.toml's is for the harness inside the containers",
}

# Variables the units set that hyperhive's own code does not read, and who does.
NOT_OURS = {
    "PATH": "NixOS writes it from the unit's `path` (git, /run/current-system/sw, its defaults)",
    "HOME": "the harness's home inside the container, where claude and git look",
    "CLAUDE_CONFIG_DIR": "claude-code's: keeps its ~/.claude.json in the per-agent bind mount",
}
