"""JSON-like data as TOML text: what `pkgs.formats.toml` makes of a Nix value.

nixpkgs renders the value with remarshal at build time; the tests have the value
(evaluated to JSON) and need the file, to read it as hyperhive reads hive.toml.
Tables, arrays, strings, integers, floats and booleans; None has no TOML form and
is refused, as the build would refuse it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(value: str) -> str:
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")


def _value(value: Any, where: str) -> str:
    if value is None:
        raise ValueError(f"{where}: TOML has no null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, Mapping):
        body = ", ".join(f"{_key(k)} = {_value(v, f'{where}.{k}')}" for k, v in value.items())
        return "{" + (f" {body} " if body else "") + "}"
    raise ValueError(f"{where}: {type(value).__name__} has no TOML form")


def dumps(table: Mapping[str, Any], where: str = "") -> str:
    """A document: plain keys first, then one [section] per nested table."""
    lines: list[str] = []
    sections: list[str] = []
    for key, value in table.items():
        path = f"{where}.{_key(key)}" if where else _key(key)
        if isinstance(value, Mapping):
            sections.append(f"\n[{path}]\n" + dumps(value, path))
        else:
            lines.append(f"{_key(key)} = {_value(value, path)}\n")
    return "".join(lines) + "".join(sections)
