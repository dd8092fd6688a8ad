"""The walls: what nats-py, JetStream and sqlite do with nothing of ours in the way.

Every function measures one thing and returns a `Rate`. Payloads are encoded
before the clock starts, so these are transport and storage rates only.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api as js_api

from bench.common import PUBLISH_WINDOW, READ_BATCH, SQLITE_TXN, Payload, Rate, timed
from hyperhive import events as ev
from hyperhive import names
from hyperhive.events.envelope import Event
from hyperhive.ids import new_id

RAW_STREAM = "BENCH_RAW"
RAW_SUBJECT = "benchraw"


async def ensure_raw_stream(nc: Client) -> None:
    """A scratch stream shaped like a hive's (file storage, duplicate window)."""
    js = nc.jetstream()
    await js.add_stream(
        js_api.StreamConfig(
            name=RAW_STREAM,
            subjects=[f"{RAW_SUBJECT}.>"],
            storage=js_api.StorageType.FILE,
            retention=js_api.RetentionPolicy.LIMITS,
            discard=js_api.DiscardPolicy.OLD,
            duplicate_window=120.0,
        )
    )


async def purge_raw_stream(nc: Client) -> None:
    await nc.jetstream().purge_stream(RAW_STREAM)


def _raw_subject(p: Payload) -> str:
    return f"{RAW_SUBJECT}.{p.subject}"


# ------------------------------------------------------------------ publish


async def publish_async(
    nc: Client, items: list[Payload], window: int = PUBLISH_WINDOW, msg_id: bool = False
) -> Rate:
    """`js.publish_async`, at most `window` acks outstanding; all acks awaited."""
    js = nc.jetstream(publish_async_max_pending=window)
    futures: list[asyncio.Future[js_api.PubAck]] = []
    with timed() as t:
        for p in items:
            headers = {"Nats-Msg-Id": p.id} if msg_id else None
            futures.append(await js.publish_async(_raw_subject(p), p.data, headers=headers))
        acks = await asyncio.gather(*futures)
    assert len(acks) == len(items)
    return Rate(len(items), t.seconds)


async def publish_sync(nc: Client, items: list[Payload]) -> Rate:
    """`await js.publish(...)` one after the other: one round trip per event."""
    js = nc.jetstream()
    with timed() as t:
        for p in items:
            await js.publish(_raw_subject(p), p.data)
    return Rate(len(items), t.seconds)


# ------------------------------------------------------------------ consume


def _read_config(name: str) -> js_api.ConsumerConfig:
    return js_api.ConsumerConfig(
        name=name,
        ack_policy=js_api.AckPolicy.NONE,
        deliver_policy=js_api.DeliverPolicy.ALL,
        inactive_threshold=30.0,
        mem_storage=True,
    )


async def consume_fetch(nc: Client, stream: str, n: int, batch: int = READ_BATCH) -> Rate:
    """nats-py's `pull_subscribe` + `fetch(batch)`, until `n` messages are in."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        "", stream=stream, config=_read_config(f"bench-fetch-{new_id().lower()}")
    )
    got = 0
    with timed() as t:
        while got < n:
            msgs = await sub.fetch(batch, timeout=5)
            got += len(msgs)
    await sub.unsubscribe()
    return Rate(got, t.seconds, f"batch {batch}")


async def consume_ordered_push(nc: Client, stream: str, subject: str, n: int) -> Rate:
    """nats-py's ordered push consumer (`js.subscribe(ordered_consumer=True)`)."""
    js = nc.jetstream()
    done = asyncio.Event()
    got = 0

    async def on_msg(_msg: Msg) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    with timed() as t:
        sub = await js.subscribe(
            subject,
            stream=stream,
            cb=on_msg,
            ordered_consumer=True,
            deliver_policy=js_api.DeliverPolicy.ALL,
        )
        await asyncio.wait_for(done.wait(), 120)
    await sub.unsubscribe()
    return Rate(got, t.seconds)


async def consume_raw_pull(nc: Client, stream: str, n: int, batch: int = READ_BATCH) -> Rate:
    """The wall: one `$JS.API.CONSUMER.MSG.NEXT` request of `batch` at a time, a bare callback.

    The next request goes out when the previous one is fully delivered, as
    `PullConsumer` does; no buffering, no ordering checks, no metadata parsing.
    """
    js = nc.jetstream()
    name = f"bench-pull-{new_id().lower()}"
    await js.add_consumer(stream, _read_config(name))
    inbox = nc.new_inbox()
    api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"
    req = json.dumps({"batch": batch, "expires": 5_000_000_000}).encode()
    done = asyncio.Event()
    got = 0
    in_request = 0

    async def on_msg(msg: Msg) -> None:
        nonlocal got, in_request
        if not msg.reply:  # a status message: 404/408 ends the request
            status = msg.headers.get("Status") if msg.headers else None
            if status in ("404", "408", "409"):
                in_request = 0
                await nc.publish(api, req, reply=inbox)
            return
        got += 1
        in_request += 1
        if got >= n:
            done.set()
        elif in_request >= batch:
            in_request = 0
            await nc.publish(api, req, reply=inbox)

    sub = await nc.subscribe(inbox, cb=on_msg)
    with timed() as t:
        await nc.publish(api, req, reply=inbox)
        await asyncio.wait_for(done.wait(), 120)
    await sub.unsubscribe()
    await js.delete_consumer(stream, name)
    return Rate(got, t.seconds, f"batch {batch}")


# ------------------------------------------------------------------ sqlite


def sqlite_inserts(path: Path, ids: list[str], blobs: list[bytes], txn: int = SQLITE_TXN) -> Rate:
    """stdlib sqlite3, WAL: integer pk, unique text id index, a blob; `txn` rows a commit."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, raw BLOB NOT NULL)"
    )
    conn.execute("CREATE UNIQUE INDEX events_id ON events(id)")
    rows = [(i + 1, ids[i], blobs[i % len(blobs)]) for i in range(len(ids))]
    with timed() as t:
        for start in range(0, len(rows), txn):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO events VALUES (?,?,?)", rows[start : start + txn])
            conn.execute("COMMIT")
    conn.close()
    return Rate(len(rows), t.seconds, f"{txn} rows/txn")


def random_ids(n: int) -> list[str]:
    """Ids that do not sort by time (uuid4), to show what time-ordered ids save."""
    return [str(uuid.uuid4()) for _ in range(n)]


# ------------------------------------------------------------------ msgspec


def decode_only(items: list[Payload]) -> Rate:
    """msgspec: typed decode of every payload into the event union, nothing else."""
    with timed() as t:
        for p in items:
            ev.decode_event(p.data)
    return Rate(len(items), t.seconds)


def encode_only(events: list[Event]) -> Rate:
    with timed() as t:
        for e in events:
            ev.encode_event(e)
    return Rate(len(events), t.seconds)


def hive_subject_filter(hive: str) -> str:
    """One filter covering the whole hive stream (push consumers take a single subject)."""
    return f"hive.{names.check_hive(hive)}.>"
