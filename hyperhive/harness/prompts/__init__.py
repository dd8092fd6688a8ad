"""The agent's prompts, as jinja2 templates: who it is (system), why it woke (wake)."""

from __future__ import annotations

from typing import Any

import jinja2

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("hyperhive.harness", "prompts"),
    autoescape=False,  # plain text for the model, never HTML
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, **values: Any) -> str:
    return _env.get_template(name).render(**values)


def system_prompt(agent: str, hive: str, others: list[str], manager: bool, notes: str) -> str:
    """Who the agent is: the manager's or a sub-agent's variant."""
    template = "system_manager.j2" if manager else "system_agent.j2"
    return render(template, agent=agent, hive=hive, others=others, notes=notes)


def wake_prompt(messages: list[dict[str, Any]], unread: int, trigger: str) -> str:
    """Why the agent woke: the message(s), how many more wait, system messages plainly."""
    return render("wake.j2", messages=messages, unread=unread, trigger=trigger)
