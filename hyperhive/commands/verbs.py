"""One struct per verb: the agents', the manager's and the operator's.

Names and ids in a body are checked by c0re (`names`) before anything is done
with them; the struct only bounds their size. TTLs and waits are range-checked
here, so a TTL of -1 or 10^12 never reaches a decision.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from hyperhive.commands.base import AgentName, Command, Id, Note
from hyperhive.events.catalogue.operator import MAX_TTL_SECONDS, MIN_TTL_SECONDS
from hyperhive.events.envelope import Line, Text

Ttl = Annotated[int, msgspec.Meta(ge=MIN_TTL_SECONDS, le=MAX_TTL_SECONDS)]
Model = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\[\]-]+$")
]
CommitRef = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._/-]+$")
]
DEFAULT_QUESTION_TTL = 3600
MAX_LOG_LINES = 500
LogLines = Annotated[int, msgspec.Meta(ge=1, le=MAX_LOG_LINES)]

AGENT = "agent"
MANAGER = "manager"
OPERATOR = "operator"


# ---------------------------------------------------------------- every agent


class Send(Command, frozen=True, kw_only=True, tag="send"):
    """Put a message in an agent's inbox (`to`: an agent, `manager` or `operator`)."""

    to: AgentName
    body: Text

    callers: ClassVar[tuple[str, ...]] = (AGENT, OPERATOR)


class AskOperator(Command, frozen=True, kw_only=True, tag="ask_operator"):
    """Ask the operator a question; the answer arrives later in the asker's inbox."""

    question: Annotated[str, msgspec.Meta(min_length=1, max_length=16 * 1024)]
    options: Annotated[list[Line], msgspec.Meta(max_length=32)] = []
    multi: bool = False
    ttl_seconds: Ttl = DEFAULT_QUESTION_TTL

    callers: ClassVar[tuple[str, ...]] = (AGENT,)


class SetStatus(Command, frozen=True, kw_only=True, tag="set_status"):
    """Set the agent's one-line status text (shown on the dashboard)."""

    text: Line

    callers: ClassVar[tuple[str, ...]] = (AGENT,)


class GetSelf(Command, frozen=True, kw_only=True, tag="self"):
    """The calling agent's own row: model, paused, state (the harness reads it every turn)."""

    callers: ClassVar[tuple[str, ...]] = (AGENT,)


# ---------------------------------------------------------------- the manager


class RequestSpawn(Command, frozen=True, kw_only=True, tag="request_spawn"):
    """Ask the operator to approve a new agent `name`."""

    name: AgentName

    callers: ClassVar[tuple[str, ...]] = (MANAGER,)


class RequestApplyCommit(Command, frozen=True, kw_only=True, tag="request_apply_commit"):
    """Ask the operator to approve applying `commit_ref` of an agent's proposed config."""

    agent: AgentName
    commit_ref: CommitRef

    callers: ClassVar[tuple[str, ...]] = (MANAGER,)


class Start(Command, frozen=True, kw_only=True, tag="start"):
    """Start a stopped agent."""

    name: AgentName

    callers: ClassVar[tuple[str, ...]] = (MANAGER, OPERATOR)


class Stop(Command, frozen=True, kw_only=True, tag="stop"):
    """Stop a running agent."""

    name: AgentName

    callers: ClassVar[tuple[str, ...]] = (MANAGER, OPERATOR)


class Restart(Command, frozen=True, kw_only=True, tag="restart"):
    """Stop and start an agent."""

    name: AgentName

    callers: ClassVar[tuple[str, ...]] = (MANAGER, OPERATOR)


# ---------------------------------------------------------------- the operator


class ListAgents(Command, frozen=True, kw_only=True, tag="agents"):
    """Every agent of the hive, with its state."""

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Spawn(Command, frozen=True, kw_only=True, tag="spawn"):
    """Create an agent now (a name whose state was kept is revived)."""

    name: AgentName
    model: Model | None = None

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Rebuild(Command, frozen=True, kw_only=True, tag="rebuild"):
    """Rebuild an agent's container from its applied config, and restart it."""

    name: AgentName

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Pause(Command, frozen=True, kw_only=True, tag="pause"):
    """Pause an agent: its harness takes no new turns (a stopped one too)."""

    name: AgentName

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Resume(Command, frozen=True, kw_only=True, tag="resume"):
    """Resume a paused agent."""

    name: AgentName

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Destroy(Command, frozen=True, kw_only=True, tag="destroy"):
    """Remove an agent; its state and credentials are kept unless `purge`."""

    name: AgentName
    purge: bool = False

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Kick(Command, frozen=True, kw_only=True, tag="kick"):
    """Nudge an agent to take a turn (a system message in its inbox)."""

    name: AgentName
    reason: Line = ""

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class SetModel(Command, frozen=True, kw_only=True, tag="model"):
    """Change an agent's model; it applies from the agent's next turn."""

    name: AgentName
    model: Model

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class ListApprovals(Command, frozen=True, kw_only=True, tag="approvals"):
    """The approvals: pending ones, then the settled (with `all`)."""

    all: bool = False

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Approve(Command, frozen=True, kw_only=True, tag="approve"):
    """Approve a pending request; it is carried out at once."""

    approval_id: Id
    note: Note | None = None

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Deny(Command, frozen=True, kw_only=True, tag="deny"):
    """Deny a pending request."""

    approval_id: Id
    note: Note | None = None

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class ListQuestions(Command, frozen=True, kw_only=True, tag="questions"):
    """The operator questions: open ones, then the resolved (with `all`)."""

    all: bool = False

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Answer(Command, frozen=True, kw_only=True, tag="answer"):
    """Answer an open question (options are advisory: any text is an answer)."""

    question_id: Id
    answer: Text

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class CancelQuestion(Command, frozen=True, kw_only=True, tag="cancel_question"):
    """Withdraw an open question; the asker is told `[cancelled]`."""

    question_id: Id
    reason: Line | None = None

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class CancelTurn(Command, frozen=True, kw_only=True, tag="cancel_turn"):
    """Cancel an agent's running turn (its harness interrupts claude)."""

    name: AgentName

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class Logs(Command, frozen=True, kw_only=True, tag="logs"):
    """An agent's last log lines: its harness.log, or its container's journal."""

    name: AgentName
    lines: LogLines = 200

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)


class ListPorts(Command, frozen=True, kw_only=True, tag="ports"):
    """Every agent's web UI port, and the collisions among them."""

    callers: ClassVar[tuple[str, ...]] = (OPERATOR,)
