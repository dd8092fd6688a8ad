"""What the operator types: `@agent message` in the dashboard, `/commands` on an agent's page.

Pure parsing; the refusals are `InvalidInput` with one line saying what to type.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyperhive.errors import HyperhiveError, InvalidName
from hyperhive.names import check_agent

OPERATOR_INBOX = "operator"


class InvalidInput(HyperhiveError):
    """What the operator typed is not something the dashboard can do."""


@dataclass(frozen=True)
class SendMessage:
    to: str
    body: str


@dataclass(frozen=True)
class SlashCommand:
    """A `/command` typed on an agent's page."""

    name: str  # help | clear | cancel | compact | model
    arg: str = ""


SLASH_HELP: tuple[tuple[str, str], ...] = (
    ("/help", "this list"),
    ("/clear", "start the agent's next turn in a new Claude session"),
    ("/cancel", "cancel the running turn"),
    ("/compact", "compact the agent's session now (a turn of its own)"),
    ("/model <name>", "the model for the agent's next turns (e.g. sonnet, opus)"),
    ("//text", "send a message that starts with '/'"),
)
SLASH_NAMES = frozenset({"help", "clear", "cancel", "compact", "model"})


def parse_compose(text: str) -> SendMessage:
    """`@alice hello there` → a message to alice (`@operator` is refused: that is you)."""
    stripped = text.strip()
    if not stripped.startswith("@"):
        raise InvalidInput("start with @<agent>, e.g. '@alice please look at the build'")
    head, _, body = stripped[1:].partition(" ")
    head = head.rstrip(":,")
    try:
        to = check_agent(head)
    except InvalidName as exc:
        raise InvalidInput(f"@{head}: {exc}") from None
    if to == OPERATOR_INBOX:
        raise InvalidInput("@operator is your own inbox: write to an agent")
    if not body.strip():
        raise InvalidInput(f"nothing to send to {to}: write the message after @{to}")
    return SendMessage(to=to, body=body.strip())


def parse_agent_input(agent: str, text: str) -> SendMessage | SlashCommand:
    """A line typed on `agent`'s page: a slash command, or a message to the agent."""
    stripped = text.strip()
    if not stripped:
        raise InvalidInput("nothing to send")
    if stripped.startswith("//"):
        return SendMessage(to=agent, body=stripped[1:])
    if not stripped.startswith("/"):
        return SendMessage(to=agent, body=stripped)
    name, _, arg = stripped[1:].partition(" ")
    name, arg = name.lower(), arg.strip()
    if name not in SLASH_NAMES:
        raise InvalidInput(f"unknown command /{name[:40]}: /help lists them")
    if name == "model" and not arg:
        raise InvalidInput("/model needs a model name, e.g. /model opus")
    if name != "model" and arg:
        raise InvalidInput(f"/{name} takes no argument")
    return SlashCommand(name=name, arg=arg)
