"""The commands: the twin of `events/`, one struct per verb, and the reply. Pure: no I/O.

cmd = decode_command("send", body)     # a verbs.Send, or InvalidCommand
data = encode_reply(done(msg_id=...))  # {"ok": true, "result": {...}}
"""

from __future__ import annotations

from hyperhive.commands.base import (
    MAX_COMMAND_BYTES,
    Command,
    CommandRefused,
    Done,
    InvalidCommand,
    Refused,
    Reply,
    decode_reply,
    done,
    encode_reply,
    refused,
)
from hyperhive.commands.registry import (
    ALL_COMMANDS,
    VERBS,
    AnyCommand,
    decode_command,
    encode_command,
    verb,
    verb_of,
)
from hyperhive.commands.verbs import AGENT, MANAGER, OPERATOR

__all__ = [
    "AGENT",
    "ALL_COMMANDS",
    "MANAGER",
    "MAX_COMMAND_BYTES",
    "OPERATOR",
    "VERBS",
    "AnyCommand",
    "Command",
    "CommandRefused",
    "Done",
    "InvalidCommand",
    "Refused",
    "Reply",
    "decode_command",
    "decode_reply",
    "done",
    "encode_command",
    "encode_reply",
    "refused",
    "verb",
    "verb_of",
]
