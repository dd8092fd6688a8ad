"""hyperhive: a control plane for a hive of Claude Code agents, event-sourced on NATS."""

__version__ = "0.1.0"
