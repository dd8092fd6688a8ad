"""Reading the stream: a durable pull consumer for services, ordered reads for readers.

`PullConsumer` issues raw JetStream pull requests (`$JS.API.CONSUMER.MSG.NEXT`)
on its own reply subject instead of nats-py's `fetch`, which costs a round trip
and a future per call; messages stream into a buffer as they arrive and come out
in batches. An expired request is "nothing yet", never an error; a request lost
to a server restart is noticed by its deadline and re-issued.

`read_ordered` reads a range, or follows the live end, through an ephemeral
`PullConsumer` too: raw pulls read at least as fast as nats-py's ordered push
consumer, more steadily (its flow-control replies wait for a 250 ms poll when
the reader is behind), and give one code path for order and gap handling.

On a cluster, a consumer lives on one node (an ephemeral) or is led by one (a
durable of a replicated stream), and a pull request dies with that node. Every
pull asks for idle heartbeats: a request that goes silent is lost, and is
asked again at once; an ephemeral consumer is then made anew on a live node,
starting just after the last message handed out, and a durable's new leader
serves the next request. Either way the caller sees every message once, in
order: `follow=True` readers (c0re, `hive-events tail -f`, a dashboard) go on
across a node's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js import errors as js_errors

from hyperhive.backoff import Backoff
from hyperhive.bus import subjects
from hyperhive.bus.retry import ATTEMPT_TIMEOUT, through_election
from hyperhive.ids import new_id

log = logging.getLogger("hyperhive.bus")

STATUS = "Status"
DESCRIPTION = "Description"
HEARTBEAT = "100"  # idle heartbeat; any other status (404, 408, 409) ends a pull request
EXPIRED = "408"  # a pull request that ran its time: "nothing yet"
RECONNECT_CHECK = 0.5  # how often a waiting consumer looks for a reconnect
IDLE_HEARTBEAT = 1.0  # a waiting pull request hears from the server this often
SILENCE = 2 * IDLE_HEARTBEAT + 1.0  # without a word for this long, a request is lost


def ack_info(msg: Msg) -> subjects.AckInfo:
    """The stream and consumer sequences and pending count of one delivery.

    nats-py's `Msg.metadata` builds a datetime and three dataclasses per message,
    a fifth of the projector's time in a profile; this reads the three integers
    from the reply subject, and leaves anything unusual to nats-py (which raises).
    """
    info = subjects.parse_ack_reply(msg.reply)
    if info is not None:
        return info
    meta = msg.metadata
    return subjects.AckInfo(
        int(meta.sequence.stream), int(meta.sequence.consumer), int(meta.num_pending)
    )


LAST_START_TIME = datetime(2262, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StartAt:
    """Where a read begins: a stream sequence, a time, the live end, or the start."""

    seq: int | None = None
    time: datetime | None = None
    new_only: bool = False

    def apply(self, cfg: js_api.ConsumerConfig) -> None:
        if self.new_only or (self.time is not None and self.time >= LAST_START_TIME):
            # JetStream counts start times in int64 nanoseconds: a time past 2262
            # would wrap around to the distant past. Nothing is stored after it.
            cfg.deliver_policy = js_api.DeliverPolicy.NEW
        elif self.seq is not None and self.seq > 1:
            cfg.deliver_policy = js_api.DeliverPolicy.BY_START_SEQUENCE
            cfg.opt_start_seq = self.seq
        elif self.time is not None:
            cfg.deliver_policy = js_api.DeliverPolicy.BY_START_TIME
            cfg.opt_start_time = self.time
        else:
            cfg.deliver_policy = js_api.DeliverPolicy.ALL


class PullConsumer:
    """A JetStream pull consumer read with raw pull requests, in batches, in order.

    Durable (`durable=True`, services) or ephemeral (readers: `tail`, `replay`;
    removed by the server once idle). The caller acks: with `AckPolicy.ALL` (the
    projector) acking the last message of a committed batch acks them all; with
    `EXPLICIT` (`run_handler_loop`) each message is acked, nak'd or terminated by
    its own outcome; readers use `NONE`.

    With `ALL` or `NONE`, deliveries lost in transit (a server restart mid-batch)
    show up as a jump in the consumer sequence: the consumer is then recreated
    just after the last stream sequence handed out, so callers see every message
    once, in order. With `EXPLICIT`, every delivery is handed out, redeliveries
    included: that is what nak and ack-wait are for.
    """

    def __init__(
        self,
        nc: Client,
        stream: str,
        name: str,
        filter_subjects: list[str] | None = None,
        ack_policy: js_api.AckPolicy = js_api.AckPolicy.ALL,
        durable: bool = True,
        ack_wait: float = 30.0,
        max_ack_pending: int = 20_000,
    ) -> None:
        self.nc = nc
        # Short API timeouts: a request lost to a dying node is asked again
        # (`through_election`) rather than waited for.
        self.js: JetStreamContext = nc.jetstream(timeout=ATTEMPT_TIMEOUT)
        self.stream = stream
        self.name = name
        self._base = name  # an ephemeral made anew is `<base>-<n>`
        self._remade = 0
        self.durable = durable
        self.filter_subjects = filter_subjects
        self.ack_policy = ack_policy
        self.ack_wait = ack_wait
        self.max_ack_pending = max_ack_pending
        self.start = StartAt()
        self.last_seq = 0  # last stream sequence handed to the caller
        self._next_dseq = 1  # consumer sequence expected next
        self._buffer: list[Msg] = []
        self._arrived = asyncio.Event()
        self._request_done = True
        self._received = 0
        self._requested = 0
        self._reconnects = 0
        self._refused: str | None = None  # why the last pull ended early and empty
        self._heard = 0.0  # loop time of the last word (message, heartbeat) on the request
        self._clock = time.monotonic  # the event loop's clock once reading (per message: cheap)
        self._sub: Subscription | None = None

    def _config(self, start: StartAt) -> js_api.ConsumerConfig:
        cfg = js_api.ConsumerConfig(
            name=self.name,
            durable_name=self.name if self.durable else None,
            ack_policy=self.ack_policy,
            max_waiting=16,
        )
        if self.ack_policy != js_api.AckPolicy.NONE:
            cfg.ack_wait = self.ack_wait
            cfg.max_ack_pending = self.max_ack_pending
        if not self.durable:
            cfg.inactive_threshold = 30.0
            cfg.mem_storage = True
        start.apply(cfg)
        if self.filter_subjects and len(self.filter_subjects) == 1:
            cfg.filter_subject = self.filter_subjects[0]
        elif self.filter_subjects:
            cfg.filter_subjects = self.filter_subjects
        return cfg

    async def info(self) -> js_api.ConsumerInfo | None:
        try:
            info: js_api.ConsumerInfo = await self.js.consumer_info(self.stream, self.name)
            return info
        except js_errors.NotFoundError:
            return None

    async def ensure(self, start: StartAt | None = None) -> js_api.ConsumerInfo:
        """Make sure the consumer exists and will deliver from `start` on.

        The caller's store is the truth about its position: if an existing
        consumer has delivered or acked past `start.seq` (a batch delivered but
        never committed, or a store rebuilt), it is recreated at `start.seq`.
        """
        self.start = start or StartAt()
        info = await through_election(self.info, f"consumer {self.name}")
        if info is not None and self.start.seq is not None:
            delivered = info.delivered.stream_seq if info.delivered else 0
            acked = info.ack_floor.stream_seq if info.ack_floor else 0
            if delivered >= self.start.seq or acked >= self.start.seq:
                log.info(
                    "consumer %s is past %d (delivered %d); recreating",
                    self.name,
                    self.start.seq,
                    delivered,
                )
                await self._delete()
                info = None
        if info is None:
            info = await self._add(self.start)
        self._adopt(info)
        if self.start.seq:
            self.last_seq = self.start.seq - 1
        return info

    def _adopt(self, info: js_api.ConsumerInfo) -> None:
        """Expect deliveries right after what the (new or found) consumer has delivered."""
        self._next_dseq = (info.delivered.consumer_seq if info.delivered else 0) + 1

    async def _add(self, start: StartAt) -> js_api.ConsumerInfo:
        config = self._config(start)
        info: js_api.ConsumerInfo = await through_election(
            lambda: self.js.add_consumer(self.stream, config), f"creating consumer {self.name}"
        )
        return info

    async def _delete(self) -> None:
        name = self.name
        with contextlib.suppress(js_errors.NotFoundError):
            await through_election(
                lambda: self.js.delete_consumer(self.stream, name), f"deleting consumer {name}"
            )

    async def reset(self) -> None:
        """Recreate the consumer just after the last message handed out.

        A durable is deleted and made again under its name. An ephemeral is made
        anew under a new name, and the old one is only asked to go: it may be on
        a node that died (the server removes it once idle anyway).
        """
        log.info("consumer %s: restarting after stream sequence %d", self.name, self.last_seq)
        self._buffer.clear()
        if self.durable:
            await self._delete()
        else:
            old = self.name
            self._remade += 1
            self.name = f"{self._base}-{self._remade}"
            with contextlib.suppress(Exception):
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    await self.js.delete_consumer(self.stream, old)
        start = StartAt(seq=self.last_seq + 1) if self.last_seq else self.start
        info = await self._add(start)
        self._adopt(info)
        self._request_done = True

    async def _lost(self) -> None:
        """A pull request went silent: its node died, or the connection failed over.

        An ephemeral is made anew on a live node; a durable that still exists is
        asked again (its new leader answers), one that vanished is recreated.
        """
        log.info("consumer %s: the pull request went silent; asking again", self.name)
        if not self.durable:
            await self._reset_until_done()
            return
        try:
            if await self.info() is None:
                await self._reset_until_done()
        except (TimeoutError, nats.errors.Error) as exc:
            log.info("consumer %s: %s; asking again", self.name, exc)

    async def _check_refused(self, backoff: Backoff) -> None:
        """A pull ended early and empty: recreate a vanished consumer, else back off.

        Without this a deleted consumer turns the pull loop into a busy loop (every
        request is refused at once, and is sent again at once).
        """
        why, self._refused = self._refused, None
        try:
            info = await self.info()
        except (TimeoutError, nats.errors.Error) as exc:
            if not self.durable:
                # Nobody answers for it: it lived on a node that died. A new one,
                # on a live node, from just after the last message handed out.
                log.info("consumer %s unreachable (%s, %s); making it anew", self.name, why, exc)
                await self._reset_until_done()
                return
            log.warning("consumer %s: %s; retrying", self.name, exc)  # an election
            await backoff.sleep()
            return
        if info is None:
            log.warning(
                "consumer %s vanished (%s); recreating it after stream sequence %d",
                self.name,
                why,
                self.last_seq,
            )
            await self._reset_until_done()
            return
        delay = await backoff.sleep()
        log.debug("consumer %s: pull refused (%s); retried after %.1fs", self.name, why, delay)

    async def _reset_until_done(self) -> None:
        backoff = Backoff(first=0.1, cap=5.0)
        while True:
            try:
                await self.reset()
                return
            except (TimeoutError, nats.errors.Error) as exc:
                log.warning("consumer %s: reset failed (%s); retrying", self.name, exc)
                await backoff.sleep()

    def wake(self) -> None:
        """Make a waiting `batches(idle_tick=...)` yield now (the caller has work to finish)."""
        self._arrived.set()

    async def _on_msg(self, msg: Msg) -> None:
        self._heard = self._clock()
        status = msg.headers.get(STATUS) if msg.headers else None
        if status is not None:
            if status != HEARTBEAT:
                self._request_done = True  # 404/408/409: this pull request is over
                if status != EXPIRED and not self._received:
                    # Over before its time with nothing delivered (the consumer was
                    # deleted, or the server refuses it): look before pulling again.
                    self._refused = f"{status} {(msg.headers or {}).get(DESCRIPTION, '')}".strip()
                self._arrived.set()
            return
        if not subjects.is_js_ack(msg.reply):
            return
        self._buffer.append(msg)
        self._received += 1
        if self._received >= self._requested:
            self._request_done = True
        self._arrived.set()

    async def _pull(self, batch: int, expires: float) -> None:
        assert self._sub is not None
        self._requested = batch
        self._received = 0
        self._request_done = False
        self._heard = self._clock()
        heartbeat = min(IDLE_HEARTBEAT, expires / 2)
        req = json.dumps(
            {"batch": batch, "expires": int(expires * 1e9), "idle_heartbeat": int(heartbeat * 1e9)}
        ).encode()
        await self.nc.publish(
            subjects.js_msg_next(self.stream, self.name), req, reply=self._sub.subject
        )

    def _in_order(self, msgs: list[Msg]) -> tuple[list[Msg], bool]:
        """Drop redeliveries of what was handed out; report a gap in deliveries."""
        out: list[Msg] = []
        for msg in msgs:
            sseq, dseq, _pending = ack_info(msg)
            if dseq > self._next_dseq:
                return out, True
            self._next_dseq = dseq + 1
            if sseq <= self.last_seq:
                continue
            self.last_seq = sseq
            out.append(msg)
        return out, False

    async def batches(
        self, batch: int = 1000, expires: float = 5.0, idle_tick: float | None = None
    ) -> AsyncGenerator[list[Msg], None]:
        """Yield lists of messages, in stream order, as they arrive.

        Idle time yields nothing, or, with `idle_tick`, an empty list every
        `idle_tick` seconds (for callers with work of their own to finish).
        """
        self._clock = asyncio.get_running_loop().time
        self._sub = await self.nc.subscribe(self.nc.new_inbox(), cb=self._on_msg)
        refusals = Backoff(first=0.05, cap=2.0)
        silence = min(SILENCE, expires + 2.0)
        try:
            loop = asyncio.get_running_loop()
            while True:
                if self._refused is not None and not self._buffer:
                    await self._check_refused(refusals)
                    continue
                if not self._request_done and loop.time() - self._heard > silence:
                    # Neither a message nor a heartbeat: the request died with its node
                    # (or a restarted server lost it, maybe with the consumer).
                    await self._lost()
                    self._request_done = True
                if self._request_done:
                    await self._pull(batch, expires)
                if not self._buffer:
                    self._arrived.clear()
                    wait = min(max(0.05, self._heard + silence - loop.time()), RECONNECT_CHECK)
                    if idle_tick is not None:
                        wait = min(wait, idle_tick)
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancel that lands as the wait ends, and the consumer runs on.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._arrived.wait()
                    reconnects = self.nc.stats["reconnects"]
                    if reconnects != self._reconnects:
                        # Back after a disconnect: whatever we asked for died with the
                        # old connection (or server). Ask again now, not after the silence.
                        self._reconnects = reconnects
                        self._request_done = True
                    if not self._buffer and idle_tick is not None:
                        yield []
                        continue
                if self._buffer:
                    refusals.reset()
                    got, self._buffer = self._buffer, []
                    if self.ack_policy == js_api.AckPolicy.EXPLICIT:
                        # Per-message acks: a nak'd or timed-out message coming back is
                        # the point, and JetStream redelivers anything lost in transit.
                        yield got
                        continue
                    msgs, gap = self._in_order(got)
                    if msgs:
                        yield msgs
                    if gap:
                        await self._reset_until_done()
        finally:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None


# ---------------------------------------------------------------- ordered reads


async def read_ordered(
    nc: Client,
    stream: str,
    filter_subjects: list[str],
    start: StartAt,
    follow: bool,
    end_seq: int | None = None,
    batch: int = 1000,
) -> AsyncGenerator[Msg, None]:
    """Yield stream messages matching `filter_subjects`, in order, from `start`.

    Without `follow`, stops at the stream's end as it was when reading started
    (or at `end_seq`). With `follow`, goes on with new messages until cancelled.
    """
    js = nc.jetstream(timeout=ATTEMPT_TIMEOUT)
    if end_seq is None and not follow:
        info_ = await through_election(lambda: js.stream_info(stream), f"stream {stream}")
        end_seq = info_.state.last_seq
    consumer = PullConsumer(
        nc,
        stream,
        f"read-{new_id().lower()}",
        filter_subjects,
        ack_policy=js_api.AckPolicy.NONE,
        durable=False,
    )
    info = await consumer.ensure(start)
    try:
        if not follow and (
            info.num_pending == 0 or (end_seq is not None and end_seq < (start.seq or 0))
        ):
            return
        async for msgs in consumer.batches(batch=batch, expires=2.0 if not follow else 5.0):
            for msg in msgs:
                seq, _dseq, pending = ack_info(msg)
                if end_seq is not None and seq > end_seq:
                    return
                yield msg
                if not follow and (pending == 0 or (end_seq is not None and seq >= end_seq)):
                    return
    finally:
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, consumer.name)
