"""The one registry of verbs, and the one decoder of a command body."""

from __future__ import annotations

import typing
from typing import TypeAlias

import msgspec

from hyperhive.commands import verbs
from hyperhive.commands.base import MAX_COMMAND_BYTES, Command, InvalidCommand

AnyCommand: TypeAlias = (
    verbs.Send
    | verbs.AskOperator
    | verbs.SetStatus
    | verbs.GetSelf
    | verbs.RequestSpawn
    | verbs.RequestApplyCommit
    | verbs.Start
    | verbs.Stop
    | verbs.Restart
    | verbs.ListAgents
    | verbs.Spawn
    | verbs.Rebuild
    | verbs.Pause
    | verbs.Resume
    | verbs.Destroy
    | verbs.Kick
    | verbs.SetModel
    | verbs.ListApprovals
    | verbs.Approve
    | verbs.Deny
    | verbs.ListQuestions
    | verbs.Answer
    | verbs.CancelQuestion
    | verbs.CancelTurn
    | verbs.ListPorts
    | verbs.Logs
)

ALL_COMMANDS: tuple[type[Command], ...] = typing.get_args(AnyCommand)


def verb_of(cls: type[Command]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


VERBS: dict[str, type[Command]] = {verb_of(cls): cls for cls in ALL_COMMANDS}
_decoders = {verb: msgspec.json.Decoder(cls) for verb, cls in VERBS.items()}
_encoder = msgspec.json.Encoder()


def decode_command(verb: str, body: bytes) -> Command:
    """The command a body is for `verb`; `InvalidCommand` (one line) for anything else."""
    decoder = _decoders.get(verb)
    if decoder is None:
        raise InvalidCommand(f"unknown verb {verb!r}: use one of {', '.join(sorted(VERBS))}")
    if len(body) > MAX_COMMAND_BYTES:
        raise InvalidCommand(f"{verb}: the body is {len(body)} bytes, over {MAX_COMMAND_BYTES}")
    try:
        command: Command = decoder.decode(body or b"{}")
    except msgspec.ValidationError as exc:
        raise InvalidCommand(f"{verb}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidCommand(f"{verb}: the body is not a JSON object ({exc})") from None
    except RecursionError:
        raise InvalidCommand(f"{verb}: the body is nested too deeply") from None
    return command


def encode_command(command: Command) -> bytes:
    return _encoder.encode(command)


def verb(command: Command) -> str:
    return verb_of(type(command))
