"""The harness's turn loop. Being written: see the harness issue."""

from __future__ import annotations

from hyperhive.config import HiveConfig
from hyperhive.errors import HyperhiveError


async def run_harness(cfg: HiveConfig, agent: str) -> None:
    raise HyperhiveError("hyperhive harness is not built yet")
