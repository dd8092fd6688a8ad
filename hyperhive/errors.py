"""The error hierarchy: one root, one typed error per kind of refusal.

Every refusal carries a message a user can act on. The CLI maps any
`HyperhiveError` to exit code 1 with its message on one line of stderr; the web
layer maps them to 4xx statuses.
"""

from __future__ import annotations


class HyperhiveError(Exception):
    """Root of every error hyperhive raises on purpose."""

    http_status = 400

    def __str__(self) -> str:
        # One line, always: a refusal is read on a terminal or in a log line.
        return " ".join(super().__str__().split())


class InvalidName(HyperhiveError):
    """A hive, agent or kind name that is not allowed (it may become a subject or a path)."""


class InvalidSubject(HyperhiveError):
    """A subject string that is not one of ours."""


class MalformedEvent(HyperhiveError):
    """Bytes that do not decode as an event envelope."""


class ConfigError(HyperhiveError):
    """The configuration file, an environment variable or a flag is wrong."""


class NotConnected(HyperhiveError):
    """No NATS server could be reached, or none is configured."""

    http_status = 503


class PublishConflict(HyperhiveError):
    """An expected-last-subject-sequence publish lost the race: someone wrote first."""

    http_status = 409


class PublishRefused(HyperhiveError):
    """JetStream refused to store an event (too large, no permission, stream limits)."""


class ServerError(HyperhiveError):
    """The embedded nats-server could not be started or stopped."""


class EventLogError(HyperhiveError):
    """The sqlite event log is not usable (wrong hive, altered, unreadable)."""
