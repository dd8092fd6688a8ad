"""Publishing events: `Nats-Msg-Id` = event id, optional first-writer-wins.

A republished event (same id) inside the stream's duplicate window is stored
once. With `expected_last_subject_seq`, the publish only lands if the subject's
last sequence is still the one the caller saw: the loser gets `PublishConflict`.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js import errors as js_errors

from hyperhive.bus import subjects
from hyperhive.bus.records import subject_for
from hyperhive.errors import NotConnected, PublishConflict, PublishRefused
from hyperhive.events import Event, encode_event

WRONG_LAST_SEQUENCE = 10071
PUBLISH_TIMEOUT = 5.0


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
) -> Published:
    """Publish one event to its subject and wait for JetStream's ack."""
    subject = subject_for(event)
    headers = {"Nats-Msg-Id": event.id}
    if expected_last_subject_seq is not None:
        headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_subject_seq)
    try:
        ack = await js.publish(
            subject,
            encode_event(event),
            timeout=timeout,
            headers=headers,
        )
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
