"""`docs/events.md` (the event catalogue) and `docs/events.schema.json`, from the structs.

The catalogue is read from the one registry (`hyperhive.events.registry`);
types, defaults and constraints come from `msgspec.inspect`, so a field added
to a struct shows up in the docs the next time `python -m hyperhive.docgen`
runs, and the test suite fails until it has.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import msgspec
import msgspec.inspect as mi

from hyperhive import events
from hyperhive.bus import subjects
from hyperhive.docgen.fields import (
    GENERATED_NOTE,
    code,
    field_rows,
    first_line,
    nested_structs,
    struct_info,
    table,
)
from hyperhive.errors import DocgenError
from hyperhive.events import SCHEMA_VERSION, Event, RawEvent, kind_of

# What the envelope's fields mean: the structs can't say it, so it is said here.
# Rendering fails if the envelope grows a field this table does not describe.
ENVELOPE_MEANINGS: dict[str, str] = {
    "kind": "The event's kind, dotted lowercase (`turn.finished`): the union's tag.",
    "id": "Sortable unique id (ULID); also the `Nats-Msg-Id`, so a republished event "
    "is stored once.",
    "ts": "When it happened, UTC, RFC 3339.",
    "hive": "The hive it happened in.",
    "agent": "The agent it concerns; `null` for hive-wide facts (subject token `_`).",
    "source": "Who emitted it: `c0re`, `harness`, `dashboard`, `bus` or `operator:<name>`.",
    "v": "Schema version of the kind's fields.",
    "correlation_id": "Groups the events of one conversation or operation.",
    "causation_id": "The id of the event or command that caused this one.",
}


# ---------------------------------------------------------------- events.md

ENVELOPE_FIELDS: tuple[str, ...] = tuple(f.name for f in struct_info(Event).fields)
FILLED_WHEN_MADE = ("id", "ts")  # defaulted in code, required when decoded


def event_fields(cls: type[Event]) -> tuple[mi.Field, ...]:
    """A kind's own fields: everything beyond the envelope, in declaration order."""
    return tuple(f for f in struct_info(cls).fields if f.name not in ENVELOPE_FIELDS)


def subject_template(cls: type[Event]) -> str:
    """The subject a kind is published on, with placeholders (mirrors `subject_for`)."""
    if issubclass(cls, events.MessageSent):
        return subjects.inbox_subject_template()
    return subjects.event_subject_template(kind_of(cls))


def domains() -> list[tuple[ModuleType, list[type[Event]]]]:
    """The catalogue's domain modules in `ALL_EVENTS` order, each with its kinds."""
    grouped: dict[str, list[type[Event]]] = {}
    for cls in events.ALL_EVENTS:
        grouped.setdefault(cls.__module__, []).append(cls)
    return [(sys.modules[name], classes) for name, classes in grouped.items()]


def _envelope_section() -> list[str]:
    info = struct_info(Event)
    tag_field = Event.__struct_config__.tag_field
    assert tag_field is not None
    missing = [n for n in (tag_field, *ENVELOPE_FIELDS) if n not in ENVELOPE_MEANINGS]
    if missing:
        raise DocgenError(f"envelope fields without a meaning in docgen: {', '.join(missing)}")
    rows = [[code(tag_field), "string", "required", "", ENVELOPE_MEANINGS[tag_field]]]
    for f, row in zip(info.fields, field_rows(info.fields), strict=True):
        if f.name in FILLED_WHEN_MADE:
            row[2] = "required (filled when an event is made)"
        rows.append([*row, ENVELOPE_MEANINGS[f.name]])
    return [
        "## Envelope",
        "",
        "Every event is one JSON object: the envelope's fields, then its kind's own "
        "fields, side by side. Field names are as on the wire.",
        "",
        *table(("field", "type", "default", "constraints", "meaning"), rows),
        "",
        f"Free-text fields are limited (see each kind), and a whole event may not exceed "
        f"{events.MAX_EVENT_BYTES} bytes of JSON: `encode_event` refuses a larger one and "
        "`decode_event` rejects it as malformed.",
        "",
    ]


def _compat_section() -> list[str]:
    raw_fields = ", ".join(code(f.encode_name) for f in struct_info(RawEvent).fields)
    return [
        "## Unknown kinds and newer versions",
        "",
        f"The current schema version is `v = {SCHEMA_VERSION}`. Kinds evolve only by "
        "adding fields with defaults, and decoding ignores fields it does not know, so an "
        "event written by a newer hyperhive still decodes here as its known kind.",
        "",
        "- An event whose `kind` this build does not know decodes to `RawEvent` "
        f"({raw_fields}) with `reason` `unknown kind`: its own fields are kept in `data`, "
        "and it is shown and stored like any other event. No subscriber crashes on it.",
        "- A known kind at a newer version (`v` greater than the current one) that no "
        "longer fits its struct also decodes to `RawEvent`, with `reason` "
        "`newer version v<N>`.",
        "- A known kind at the current version (or older) that does not fit its struct "
        "(a required field missing, a constraint broken), and bytes that are not even an "
        "envelope (not JSON, not an object, too large, nested too deeply, without `id` or "
        "`ts`, a `ts` without a zone or with no UTC equivalent), raise `MalformedEvent`. "
        "Decoding is deterministic: the same bytes always give the same event.",
        "",
        "`docs/events.schema.json` is the JSON schema of every known kind, generated from "
        "the same structs.",
        "",
    ]


def _kind_section(cls: type[Event]) -> list[str]:
    kind = kind_of(cls)
    out = [
        f"### `{kind}`",
        "",
        first_line(cls.__doc__, f"event class {cls.__name__}"),
        "",
        f"Class `{cls.__name__}`, published on `{subject_template(cls)}`.",
        "",
    ]
    fields = event_fields(cls)
    if not fields:
        return [*out, "No fields beyond the envelope.", ""]
    out += [*table(("field", "type", "default", "constraints"), field_rows(fields)), ""]
    seen: set[type[Any]] = set()
    for f in fields:
        for nested in nested_structs(f.type):
            if nested.cls in seen:
                continue
            seen.add(nested.cls)
            doc = first_line(nested.cls.__doc__, f"struct {nested.cls.__name__}")
            out += [f"`{nested.cls.__name__}`: {doc}", ""]
            header = ("field", "type", "default", "constraints")
            out += [*table(header, field_rows(nested.fields)), ""]
    return out


def render_events_md() -> str:
    """The event catalogue as Markdown."""
    groups = domains()
    lines = [
        GENERATED_NOTE,
        "",
        "# Event catalogue",
        "",
        "Every fact in a hive is an immutable event on a NATS subject, captured by the "
        "hive's JetStream stream `HIVE_<HIVE>`. Events are JSON objects, one msgspec "
        "struct per kind, told apart by their `kind` field.",
        "",
        "Subjects:",
        "",
        "- `hive.<hive>.evt.<agent>.<kind>`: every event except messages; `<agent>` is "
        "`_` for hive-wide facts (`agent` is `null`).",
        "- `hive.<hive>.inbox.<to>`: `message.sent`, on the recipient's inbox.",
        "",
        "## Kinds",
        "",
    ]
    index_rows = []
    for module, classes in groups:
        short = module.__name__.rsplit(".", 1)[-1]
        for cls in classes:
            doc = first_line(cls.__doc__, f"event class {cls.__name__}")
            index_rows.append([f"[`{kind_of(cls)}`](#{_anchor(kind_of(cls))})", short, doc])
    lines += [*table(("kind", "domain", "what happened"), index_rows), ""]
    lines += _envelope_section()
    lines += _compat_section()
    for module, classes in groups:
        short = module.__name__.rsplit(".", 1)[-1]
        lines += [
            f"## `{short}` events",
            "",
            first_line(module.__doc__, f"module {module.__name__}"),
            "",
        ]
        for cls in classes:
            lines += _kind_section(cls)
    return "\n".join(lines).rstrip("\n") + "\n"


def _anchor(kind: str) -> str:
    """GitHub's heading anchor for "### `agent.spawned`"."""
    return "".join(ch for ch in kind if ch.isalnum() or ch in "-_")


# ---------------------------------------------------------------- events.schema.json


def render_events_schema() -> str:
    """The JSON schema of every known kind, pretty-printed with sorted keys."""
    schema = msgspec.json.schema(events.KnownEvent)
    for definition in schema.get("$defs", {}).values():
        props = definition.get("properties", {})
        if definition.get("type") != "object" or not all(f in props for f in FILLED_WHEN_MADE):
            continue
        # Defaulted in code (filled when an event is made), required on the wire.
        for name in FILLED_WHEN_MADE:
            props[name].pop("default", None)
        definition["required"] = sorted({*definition.get("required", ()), *FILLED_WHEN_MADE})
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


GENERATED: dict[str, Callable[[], str]] = {
    "docs/events.md": render_events_md,
    "docs/events.schema.json": render_events_schema,
}
