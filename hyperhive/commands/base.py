"""The command envelope and the reply: what crosses `hive.<hive>.cmd.c0re.<caller>.<verb>`.

A command's body is one JSON object, a msgspec struct per verb (tagged on `verb`,
which the subject carries too, so the body may leave it out); a field the verb
does not know is refused. Every reply is one JSON object:

    {"ok": true, "result": {...}}
    {"ok": false, "error": "<one line a person can act on>"}
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from hyperhive.errors import HyperhiveError

MAX_COMMAND_BYTES = 256 * 1024
NAME_LEN = 31

AgentName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # checked by names
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Note = Annotated[str, msgspec.Meta(max_length=4096)]


class Command(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="verb", forbid_unknown_fields=True
):
    """Fields every command shares (none yet): subclasses add the verb's own."""

    # Who may send it: "agent" (any agent), "manager" (the manager agent), "operator".
    callers: ClassVar[tuple[str, ...]] = ()


class Done(msgspec.Struct, frozen=True, kw_only=True):
    """A command was carried out; `result` says what came of it."""

    ok: bool = True
    result: dict[str, Any] = {}


class Refused(msgspec.Struct, frozen=True, kw_only=True):
    """A command was refused; `error` says why, in one line."""

    ok: bool = False
    error: str


Reply = Done | Refused


class CommandRefused(HyperhiveError):
    """c0re refused a command; the message is the reply's `error`."""

    http_status = 409


class InvalidCommand(HyperhiveError):
    """A command's body is not valid for its verb (a wrong field, a missing one, bad JSON)."""

    http_status = 400


_reply_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def encode_reply(reply: Reply) -> bytes:
    return _encoder.encode(reply)


def done(**result: Any) -> Done:
    return Done(result=msgspec.to_builtins(result))


def refused(error: str) -> Refused:
    return Refused(error=" ".join(str(error).split()) or "refused")


def decode_reply(data: bytes) -> dict[str, Any]:
    """The result of a reply, or `CommandRefused` with its error (`InvalidCommand` if garbled)."""
    try:
        reply = _reply_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidCommand(f"c0re sent an unreadable reply: {exc}") from None
    if reply.get("ok") is True:
        result = reply.get("result", {})
        return result if isinstance(result, dict) else {"value": result}
    raise CommandRefused(str(reply.get("error") or "refused without a reason"))
