"""`hyperhive dashboard`: the operator dashboard as a service (built in the next commits)."""

from __future__ import annotations

from collections.abc import Callable

from hyperhive.config import HiveConfig
from hyperhive.errors import ServerError


async def run_dashboard(cfg: HiveConfig, on_listening: Callable[[str], None] | None = None) -> None:
    """Serve the dashboard until cancelled."""
    raise ServerError("the dashboard is not built yet")
