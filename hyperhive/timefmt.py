"""Durations (`90s`, `10m`, `2h`, `7d`) and timestamps (ISO 8601), parsed one way everywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hyperhive.errors import ConfigError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, None: 1}
MAX_DURATION_SECONDS = 100 * 365 * 86400


def parse_duration(text: str | int | float) -> float:
    """Seconds in `text`: a number (seconds) or a number with a unit ms/s/m/h/d/w."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = _DURATION_RE.match(str(text))
        if not m:
            raise ConfigError(f"invalid duration {text!r}: use e.g. 30s, 10m, 2h, 7d")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not 0 <= seconds <= MAX_DURATION_SECONDS:
        raise ConfigError(f"duration {text!r} is out of range (0 to 100 years)")
    return seconds


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """A point in time: an ISO 8601 timestamp (UTC if no zone) or a duration ago (`10m`)."""
    now = now or datetime.now(UTC)
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ConfigError:
        pass
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"invalid time {text!r}: use a duration like 10m or an ISO time like 2026-01-31T12:00"
        ) from exc
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        ts.astimezone(UTC)  # every reader compares in UTC: a time must have a UTC equivalent
    except OverflowError:
        raise ConfigError(
            f"time {text!r} is out of range: it has no UTC equivalent "
            "(between 0001-01-01 and 9999-12-31)"
        ) from None
    return ts


_ZERO = timedelta(0)


def format_ts(ts: datetime, timespec: str = "milliseconds") -> str:
    """`2026-01-31T12:00:00.123Z`: UTC, milliseconds (for people)."""
    if ts.utcoffset() != _ZERO:
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def storage_ts(ts: datetime) -> str:
    """`2026-01-31T12:00:00.123456Z`: UTC, microseconds, sortable as text (the event log).

    Full precision, so `--since` compares exactly. On the projector's hot path.
    """
    return format_ts(ts, "microseconds")
