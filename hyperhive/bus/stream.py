"""The per-hive JetStream stream: ensured idempotently, limits from config."""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js import errors as js_errors

from hyperhive.bus import subjects
from hyperhive.bus.retry import through_election
from hyperhive.config import StreamConfig
from hyperhive.timefmt import parse_duration

log = logging.getLogger("hyperhive.bus")


def stream_config(hive: str, limits: StreamConfig) -> js_api.StreamConfig:
    """The JetStream config of a hive's stream."""
    max_age = parse_duration(limits.max_age)
    return js_api.StreamConfig(
        name=subjects.stream_name(hive),
        description=f"hyperhive events of hive {hive}",
        subjects=subjects.stream_subjects(hive),
        storage=js_api.StorageType.FILE,
        retention=js_api.RetentionPolicy.LIMITS,
        discard=js_api.DiscardPolicy.OLD,
        max_bytes=limits.max_bytes,
        max_age=max_age if max_age > 0 else None,
        max_msg_size=limits.max_msg_size,
        duplicate_window=parse_duration(limits.duplicate_window),
        num_replicas=limits.replicas,
        allow_direct=True,
        deny_delete=True,
        deny_purge=False,
    )


async def ensure_stream(js: JetStreamContext, hive: str, limits: StreamConfig) -> js_api.StreamInfo:
    """Create the hive's stream, or bring an existing one's limits in line. Idempotent.

    Requests are retried through a leader election (`bus.retry`).
    """
    want = stream_config(hive, limits)
    name = subjects.stream_name(hive)
    try:
        info = await through_election(lambda: js.stream_info(name), f"stream {name}")
    except js_errors.NotFoundError:
        log.info("creating stream %s", want.name)
        try:
            return await through_election(lambda: js.add_stream(want), f"creating {name}")
        except js_errors.BadRequestError as exc:
            if "already in use" not in (exc.description or ""):
                raise
            # Created meanwhile by another service of the hive (or by our own
            # attempt whose answer a failover lost): take it as it is.
            info = await through_election(lambda: js.stream_info(name), f"stream {name}")
    have = info.config
    if (
        have.subjects != want.subjects
        or have.max_bytes != want.max_bytes
        or (have.max_age or 0) != (want.max_age or 0)
        or have.max_msg_size != want.max_msg_size
        or have.duplicate_window != want.duplicate_window
        or have.num_replicas != want.num_replicas
    ):
        log.info("updating stream %s limits", want.name)
        updated: js_api.StreamInfo = await through_election(
            lambda: js.update_stream(want), f"updating {name}"
        )
        return updated
    return info
