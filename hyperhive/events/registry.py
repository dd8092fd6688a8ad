"""The one registry of event kinds: the `KnownEvent` union.

Adding an event kind = writing its struct in its domain's catalogue module and
adding it to this union; `ALL_EVENTS` and `KINDS` are derived from it, and the
decoder, the docs and the JSON schema are built from those. A test checks that
every event struct in the catalogue is in the union, tags are unique and each
has a docstring.
"""

from __future__ import annotations

import typing
from typing import TypeAlias

from hyperhive.events.catalogue import agent, hive, messaging, operator, turn
from hyperhive.events.envelope import Event, kind_of

KnownEvent: TypeAlias = (
    agent.AgentSpawned
    | agent.AgentStarted
    | agent.AgentStopped
    | agent.AgentPaused
    | agent.AgentResumed
    | agent.AgentDestroyed
    | agent.AgentRebuilt
    | agent.AgentCrashed
    | agent.AgentStatusSet
    | agent.AgentKicked
    | agent.ModelChanged
    | agent.AgentActionStarted
    | agent.AgentActionFailed
    | agent.AgentNeedsLogin
    | turn.TurnStarted
    | turn.TurnFinished
    | turn.TurnFailed
    | turn.TurnCancelled
    | turn.TurnStep
    | messaging.MessageSent
    | messaging.RecvWaiting
    | messaging.RecvDelivered
    | messaging.RecvTimedOut
    | messaging.RecvKicked
    | operator.QuestionAsked
    | operator.QuestionAnswered
    | operator.QuestionExpired
    | operator.QuestionCancelled
    | operator.ApprovalRequested
    | operator.ApprovalApproved
    | operator.ApprovalDenied
    | operator.ApprovalExpired
    | operator.ApprovalFailed
    | operator.ApprovalApplied
    | hive.HiveStarted
    | hive.HiveStopped
    | hive.MessageDeadLettered
)

ALL_EVENTS: tuple[type[Event], ...] = typing.get_args(KnownEvent)
KINDS: dict[str, type[Event]] = {kind_of(cls): cls for cls in ALL_EVENTS}
CATALOGUE_MODULES = (agent, turn, messaging, operator, hive)
