"""The templates: one jinja2 environment (autoescaped, strict) for pages and live updates.

    env = environment()
    parts = Parts(env)
    html = parts.agent_row("default", view)

Pages and updates are built from the same macros (`templates/_parts.html`), so
an update renders exactly what a fresh page would show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2

TEMPLATES = "templates"
STATIC = "static"


def when(iso: str) -> str:
    """An ISO timestamp as the pages show it: `2026-03-01 12:00 UTC`."""
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hyperhive.web", TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        enable_async=False,
    )
    env.filters["when"] = when
    return env


class Parts:
    """The macros of `_parts.html` as functions returning HTML strings."""

    def __init__(self, env: jinja2.Environment) -> None:
        self._module: Any = env.get_template("_parts.html").module

    def __getattr__(self, name: str) -> Callable[..., str]:
        macro = getattr(self._module, name)

        def render(*args: Any, **kwargs: Any) -> str:
            return str(macro(*args, **kwargs))

        return render
