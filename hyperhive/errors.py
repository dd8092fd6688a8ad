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


class WrongHive(EventLogError):
    """An event log file that holds another hive's events."""


class NoStream(HyperhiveError):
    """The hive has no JetStream stream on this NATS (nothing published yet, or a typo)."""

    http_status = 404


class BackendError(HyperhiveError):
    """A lifecycle backend could not carry out an action (the command failed, a limit)."""


class DocgenError(HyperhiveError):
    """The code says something the generated docs can't render (an undocumented field)."""


class OutputFailed(HyperhiveError):
    """Writing a command's output failed (a full disk, an unwritable file)."""


class OutputClosed(Exception):
    """Whoever read our standard output went away (`| head`): not an error, stop quietly."""


# ---------------------------------------------------------------- handler signals
# Raised by a message handler to steer the consumer loop (bus.handlers): not
# refusals a person reads, but they carry a message for the log line.


class Retry(HyperhiveError):
    """Not now: nak the message and have it redelivered after `delay` seconds."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class Poison(HyperhiveError):
    """This message can never be processed: terminate and dead-letter it."""
