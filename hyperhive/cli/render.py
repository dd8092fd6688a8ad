"""How records look on a terminal (`text`) and to programs (`json`, one object a line).

Text: one line per event, columns separated by two spaces:

    2026-01-31T12:00:00.123Z  alice         turn.finished       turn_id=t1 duration_ms=5200
    2026-01-31T12:00:01.004Z  _             future.thing (unknown)  data={"x":1}
    2026-01-31T12:00:02.310Z  ! malformed   seq=42 subject=hive.dev.evt.bob.turn.started ...

Times are always full UTC timestamps with milliseconds (the same form as the
event log's `ts` column), so lines from different days never look alike. With
several hives the hive is the second column. The fields shown after the kind
are the event class's `summary_fields`; long strings are shortened and control
characters escaped, so an event can never drive the terminal.

JSON: the event exactly as it was stored (every field, also those a newer
producer added that this build does not know; wire names, `from` not `from_`)
plus the stream's `seq` and `subject` (and `raw_reason` for a kind or version
this build does not know). A malformed message is `{seq, subject, hive,
agent, kind, error, raw}`; a duplicate row in the log has its event's fields and
`error`.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any

import click
import msgspec

from hyperhive import events as ev
from hyperhive.bus.records import Record
from hyperhive.errors import OutputClosed, OutputFailed
from hyperhive.timefmt import format_ts

AGENT_WIDTH = 12
KIND_WIDTH = 18
MAX_VALUE = 60
MAX_EXCERPT = 80
NO_TIME = "-" * len("2026-01-31T12:00:00.000Z")
_BARE = re.compile(r"^[A-Za-z0-9_.:/@+,=-]+$")

_json = msgspec.json.Encoder()


def use_colour(stream: IO[str] | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org)."""
    env = os.environ if env is None else env
    if "NO_COLOR" in env:
        return False
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def escape(text: str) -> str:
    """Escape control, format and unassigned characters (ANSI escapes, bidi overrides, ...)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif unicodedata.category(ch) == "Zs":
            out.append(" ")
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def shorten(text: str, width: int = MAX_VALUE) -> str:
    """One line, at most `width` characters (an ellipsis says something was cut)."""
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _quote(text: str) -> str:
    """Bare if it is one plain token, else double-quoted with `\\`, `"` and controls escaped."""
    if text and _BARE.match(text):
        return text
    return '"' + escape(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def format_value(value: Any) -> str:
    """A field value as it appears after `name=`: short, one line, escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quote(shorten(value))
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return _quote(shorten(",".join(value)))
    return _quote(shorten(_json.encode(msgspec.to_builtins(value)).decode()))


def _wire_names(cls: type[Any]) -> dict[str, str]:
    return {f.name: f.encode_name for f in msgspec.structs.fields(cls)}


def summary(event: ev.AnyEvent) -> str:
    """The few fields that matter, as `name=value` pairs."""
    if isinstance(event, ev.RawEvent):
        data = _json.encode(event.data).decode()
        return "data=" + _quote(shorten(data, MAX_EXCERPT))
    names = _wire_names(type(event))
    parts = []
    for name in type(event).summary_fields:
        value = getattr(event, name, None)
        if value is None or value == "" or value == []:
            continue
        parts.append(f"{names.get(name, name)}={format_value(value)}")
    return " ".join(parts)


def kind_label(event: ev.AnyEvent) -> str:
    if isinstance(event, ev.RawEvent):
        note = f"v{event.v}, newer" if event.kind in ev.KINDS else "unknown"
        return f"{escape(event.kind)} ({note})"
    return event.kind


def _kind_colour(kind: str) -> str | None:
    last = kind.rsplit(".", 1)[-1]
    if last in ("failed", "crashed", "denied", "dead_lettered"):
        return "red"
    if last in ("expired", "cancelled", "timed_out", "stopped", "paused", "destroyed"):
        return "yellow"
    if last in ("finished", "approved", "answered", "applied", "started", "delivered"):
        return "green"
    if kind.startswith(("question.", "approval.")):
        return "magenta"
    return None


def text_line(rec: Record, show_hive: bool = False, colour: bool = False) -> str:
    """One readable line for a record."""

    def paint(text: str, **style: Any) -> str:
        return click.style(text, **style) if colour else text

    ts = rec.ts
    cols = [paint(format_ts(ts) if ts is not None else NO_TIME, dim=True)]
    if show_hive:
        cols.append(paint(rec.hive, fg="blue"))
    if rec.event is None:
        why = _quote(shorten(rec.error or "?", MAX_EXCERPT))
        raw = _quote(shorten(rec.data.decode("utf-8", "replace"), MAX_EXCERPT))
        cols.append(paint("! malformed".ljust(AGENT_WIDTH), fg="red", bold=True))
        cols.append(f"seq={rec.seq} subject={_quote(rec.subject)} reason={why} data={raw}")
        return "  ".join(cols)
    event = rec.event
    agent = escape(event.agent or "_")
    label = kind_label(event)
    kind_col = label.ljust(KIND_WIDTH)
    kind_fg = "red" if isinstance(event, ev.RawEvent) else _kind_colour(event.kind)
    cols.append(paint(agent.ljust(AGENT_WIDTH), fg="cyan"))
    cols.append(paint(kind_col, fg=kind_fg, bold=kind_fg == "red"))
    text = summary(event)
    if rec.error:  # a duplicate row of the log
        text = (text + " " if text else "") + "error=" + _quote(shorten(rec.error))
    if text:
        cols.append(text)
    return "  ".join(cols).rstrip()


_stored_decoder = msgspec.json.Decoder(dict[str, Any])


def stored_fields(rec: Record) -> dict[str, Any]:
    """The event's fields exactly as stored: what this build does not know included."""
    assert rec.event is not None
    try:
        return _stored_decoder.decode(rec.data)
    except (msgspec.DecodeError, RecursionError):  # decoded once already; cannot happen
        return ev.event_to_dict(rec.event)


def record_dict(rec: Record) -> dict[str, Any]:
    """The JSON object of a record (see the module docstring)."""
    if rec.event is not None:
        out = stored_fields(rec)
        if isinstance(rec.event, ev.RawEvent):
            out["raw_reason"] = rec.event.reason
        out["seq"] = rec.seq
        out["subject"] = rec.subject
        if rec.error:
            out["error"] = rec.error
        return out
    return {
        "seq": rec.seq,
        "subject": rec.subject,
        "hive": rec.hive,
        "agent": rec.agent,
        "kind": rec.kind,
        "error": rec.error,
        "raw": rec.data.decode("utf-8", "replace"),
    }


def json_line(rec: Record) -> str:
    return _json.encode(record_dict(rec)).decode()


def dumps(value: Any) -> str:
    """Any builtin value as one line of JSON."""
    return _json.encode(value).decode()


def write_line(out: IO[str], line: str, flush: bool = True) -> None:
    """Write one line; a closed reader is `OutputClosed`, any other failure `OutputFailed`."""
    try:
        out.write(line + "\n")
        if flush:
            out.flush()
    except BrokenPipeError:
        raise OutputClosed() from None
    except OSError as exc:
        raise OutputFailed(f"cannot write the output: {exc.strerror or exc}") from None


def flush(out: IO[str]) -> None:
    """Flush, with the failures of `write_line`."""
    try:
        out.flush()
    except BrokenPipeError:
        raise OutputClosed() from None
    except OSError as exc:
        raise OutputFailed(f"cannot write the output: {exc.strerror or exc}") from None


class Printer:
    """Writes records as text or ndjson lines, counting them against `--count`."""

    def __init__(
        self,
        fmt: str,
        show_hive: bool = False,
        limit: int | None = None,
        out: IO[str] | None = None,
        flush: bool = True,
    ) -> None:
        self.out = out or sys.stdout
        self.fmt = fmt
        self.show_hive = show_hive
        self.colour = fmt == "text" and use_colour(self.out)
        self.limit = limit
        self.flush = flush
        self.printed = 0

    @property
    def done(self) -> bool:
        return self.limit is not None and self.printed >= self.limit

    def emit(self, rec: Record) -> bool:
        """Print one record; False once `--count` is reached."""
        if self.done:
            return False
        text = self.fmt == "text"
        line = text_line(rec, self.show_hive, self.colour) if text else json_line(rec)
        write_line(self.out, line, self.flush)
        self.printed += 1
        return not self.done


def stats_lines(s: dict[str, Any], durable: str) -> list[str]:
    """`hive-events stats` as text."""
    lines = [f"hive        {s['hive']}"]
    log = s["log"]
    if log is None:
        lines.append("event log   none yet (run the projector or `hive-events replay`)")
    else:
        span = f"seq {log['first_seq']}..{log['last_seq']}" if log["rows"] else "empty"
        lines.append(f"event log   {log['path']}")
        lines.append(
            f"            {log['rows']} rows ({span}), position {log['position']}, "
            f"{log['malformed']} with an error"
        )
        lines.append(f"            events from {log['first_ts'] or '-'} to {log['last_ts'] or '-'}")
    st = s["stream"]
    if st is None:
        lines.append("stream      none on this NATS")
    else:
        lines.append(
            f"stream      {st['name']}: {st['messages']} messages, {st['bytes']} bytes, "
            f"seq {st['first_seq']}..{st['last_seq']}"
        )
    if s["lag"] is not None:
        lines.append(f"lag         {s['lag']} (stream last seq - log position)")
    pj = s["projector"]
    if pj is None:
        lines.append(f"projector   no consumer {durable}")
    else:
        lines.append(
            f"projector   {pj['name']}: {pj['num_pending']} pending, "
            f"{pj['num_ack_pending']} awaiting ack"
        )
    if log is not None:
        for title, counts in (("by kind", log["by_kind"]), ("by agent", log["by_agent"])):
            lines.append(title)
            width = max((len(k) for k in counts), default=0)
            lines.extend(f"  {escape(k).ljust(width)}  {v}" for k, v in counts.items())
    return lines
