"""The live stream: server-sent events, one per event of the hive, resumable.

    GET /api/h/<hive>/stream?since=<seq>        (the page's own sequence)
    Last-Event-ID: <seq>                        (a browser reconnecting: wins)

`update` events carry the stream sequence as their id and the page fragments
the event changed; `status` tells whether the dashboard is connected to NATS;
`resync` says the browser is too far behind (or the dashboard reloaded its
state): it fetches a snapshot and listens again from the snapshot's sequence.
A comment every `KEEPALIVE` seconds keeps idle connections open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from hyperhive.web.deps import ViewDep
from hyperhive.web.hub import Update

KEEPALIVE = 15.0
RETRY_MS = 1000


def _message(update: Update) -> ServerSentEventMessage:
    data = update.payload.decode()
    if update.event == "status":
        return ServerSentEventMessage(data=data, event="status")
    return ServerSentEventMessage(data=data, event="update", id=update.seq, retry=RETRY_MS)


def _resync(view: ViewDep) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=msgspec.json.encode({"seq": view.position}).decode(), event="resync"
    )


def _last_event_id(request: Request[Any, Any, Any], since: int | None) -> int | None:
    header = request.headers.get("last-event-id")
    if header is not None and header.strip().isdigit():
        return int(header.strip())
    return since


async def _updates(view: ViewDep, after: int | None) -> AsyncIterator[ServerSentEventMessage]:
    listener, backlog = view.listen(after)
    try:
        status = view.status_payload()
        yield ServerSentEventMessage(data=status.decode(), event="status", retry=RETRY_MS)
        if backlog is None:
            yield _resync(view)
            return
        for update in backlog:
            yield _message(update)
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE):
                    next_update = await listener.queue.get()
            except TimeoutError:
                yield ServerSentEventMessage(comment="keepalive")
                continue
            if next_update is None:  # too slow, or the view reloaded: take a snapshot
                yield _resync(view)
                return
            yield _message(next_update)
    finally:
        view.unlisten(listener)


@get("/api/h/{hive:str}/stream", tags=["hive"])
async def stream(
    request: Request[Any, Any, Any],
    view: ViewDep,
    since: Annotated[int | None, QueryParameter(name="since", ge=0)] = None,
) -> ServerSentEvent:
    """The hive's events as they land (server-sent events), from `since` or `Last-Event-ID`."""
    return ServerSentEvent(_updates(view, _last_event_id(request, since)))
