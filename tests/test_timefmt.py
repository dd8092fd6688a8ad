"""Durations and timestamps are parsed one way everywhere, and absurd ones are refused."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hyperhive.errors import ConfigError
from hyperhive.timefmt import MAX_DURATION_SECONDS, format_ts, parse_duration, parse_time

NOW = datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("7d", 7 * 86400),
        ("1w", 7 * 86400),
        ("30", 30),
        ("0", 0),
        ("1.5h", 5400),
        (" 5 m ", 300),
        ("36500d", MAX_DURATION_SECONDS),
    ],
)
def test_a_duration_is_read_in_each_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", [0, 45, 2.5])
def test_a_bare_number_is_seconds(value: float) -> None:
    assert parse_duration(value) == value


@pytest.mark.parametrize(
    "text",
    ["", " ", "abc", "-5s", "5x", "s", "5 minutes", "1e3s", "5s5m", "5m ago", ".5s", "5.s", "10M"],
    ids=repr,
)
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "value",
    [f"{10**12}d", "36501d", f"{10**12}w", "9" * 400 + "d", 10**12 * 86400, -1, math.nan, math.inf],
    ids=lambda v: repr(v)[:20],
)
def test_an_absurd_duration_is_refused(value: str | float) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(value)


def test_a_bool_is_not_a_duration() -> None:
    with pytest.raises(ConfigError):
        parse_duration(True)


def test_a_time_without_a_zone_is_utc() -> None:
    assert parse_time("2026-01-31T12:00") == NOW
    assert parse_time("2026-01-31T12:00").tzinfo is not None


@pytest.mark.parametrize(
    "text", ["2026-01-31T12:00:00Z", "2026-01-31T12:00:00+00:00", "2026-01-31T14:00:00+02:00"]
)
def test_a_time_with_a_zone_is_the_same_instant(text: str) -> None:
    assert parse_time(text) == NOW


def test_a_duration_as_a_time_means_that_long_ago() -> None:
    assert parse_time("10m", now=NOW) == NOW - timedelta(minutes=10)
    assert parse_time("2d", now=NOW) == NOW - timedelta(days=2)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "12:00 tomorrow", ""], ids=repr)
def test_a_bad_time_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid time"):
        parse_time(text)


def test_format_ts_is_utc_with_milliseconds_and_z() -> None:
    ts = datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
    assert format_ts(ts) == "2026-01-31T12:00:00.123Z"


def test_format_ts_converts_other_zones_to_utc() -> None:
    ts = datetime(2026, 1, 31, 14, 0, 5, 7000, tzinfo=timezone(timedelta(hours=2)))
    assert format_ts(ts) == "2026-01-31T12:00:05.007Z"


def test_format_ts_output_parses_back_to_the_same_millisecond() -> None:
    ts = datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
    assert parse_time(format_ts(ts)) == ts.replace(microsecond=123000)
