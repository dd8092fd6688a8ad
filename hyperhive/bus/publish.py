"""Publishing events: `Nats-Msg-Id` = event id, optional first-writer-wins.

A republished event (same id) inside the stream's duplicate window is stored
once. With `expected_last_subject_seq`, the publish only lands if the subject's
last sequence is still the one the caller saw: the loser gets `PublishConflict`.

With `retry_for`, a publish that got no ack (the stream's leader died and a new
one is being elected, the connection is failing over) is sent again, with the
same id, until it is acked or the time is up: services publish with
`publish_budget(cfg.stream)`, which stays inside the duplicate window, so an
event whose ack was lost is still stored once.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js import errors as js_errors
from nats.js.api import PubAck

from hyperhive.bus import subjects
from hyperhive.bus.records import subject_for
from hyperhive.bus.retry import ATTEMPT_TIMEOUT, ELECTION_BUDGET, through_election
from hyperhive.config import StreamConfig
from hyperhive.errors import NotConnected, PublishConflict, PublishRefused
from hyperhive.events import Event, encode_event
from hyperhive.timefmt import parse_duration

WRONG_LAST_SEQUENCE = 10071
PUBLISH_TIMEOUT = 5.0


def publish_budget(limits: StreamConfig) -> float:
    """How long a service retries a publish: through an election, within the duplicate
    window (a retry after it could store an event twice)."""
    return min(ELECTION_BUDGET, 0.8 * parse_duration(limits.duplicate_window))


@dataclass(frozen=True, slots=True)
class Published:
    """Where an event landed."""

    seq: int
    duplicate: bool
    subject: str


async def publish_event(
    js: JetStreamContext,
    event: Event,
    expected_last_subject_seq: int | None = None,
    timeout: float = PUBLISH_TIMEOUT,
    retry_for: float = 0.0,
) -> Published:
    """Publish one event to its subject and wait for JetStream's ack.

    With `retry_for`, an unacked publish is sent again (same id) for that long.
    """
    subject = subject_for(event)
    data = encode_event(event)
    headers = {"Nats-Msg-Id": event.id}
    if expected_last_subject_seq is not None:
        headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_subject_seq)
    attempt = min(timeout, ATTEMPT_TIMEOUT) if retry_for > 0 else timeout

    async def once() -> PubAck:
        ack: PubAck = await js.publish(subject, data, timeout=attempt, headers=headers)
        return ack

    try:
        if retry_for > 0:
            ack = await through_election(once, f"publishing {event.kind}", retry_for)
        else:
            ack = await once()
    except js_errors.APIError as exc:
        if exc.err_code == WRONG_LAST_SEQUENCE:
            raise PublishConflict(
                f"{event.kind} not published: {subject} moved past sequence "
                f"{expected_last_subject_seq} (someone else wrote first)"
            ) from exc
        raise PublishRefused(f"{event.kind} not published on {subject}: {exc.description}") from exc
    except js_errors.NoStreamResponseError as exc:
        raise NotConnected(
            f"no JetStream stream answered on {subject}: is the hive's bus up?"
        ) from exc
    if ack.stream != subjects.stream_name(event.hive):
        # Checked here rather than with `Nats-Expected-Stream`, which the server
        # would store on every event for every reader to parse again.
        raise NotConnected(f"{subject} is captured by stream {ack.stream}, not the hive's")
    return Published(seq=ack.seq, duplicate=bool(ack.duplicate), subject=subject)
