"""hyperhive: a control plane for a hive of Claude Code agents, event-sourced on NATS."""

from hyperhive import waitfor

__version__ = "0.1.0"

waitfor.install()  # before nats-py waits on anything: see hyperhive.waitfor
