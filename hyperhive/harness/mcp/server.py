"""The agent's MCP tool server (stdio). Being written: see the harness issue."""

from __future__ import annotations

from hyperhive.config import HiveConfig
from hyperhive.errors import HyperhiveError


async def run_mcp(cfg: HiveConfig, agent: str) -> None:
    raise HyperhiveError("hyperhive mcp is not built yet")
