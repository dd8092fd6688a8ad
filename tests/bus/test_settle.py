"""`settle`: when it returns, the server has what the connection sent before it.

A recording proxy sits between a client and the real session server and keeps
the bytes the client sent, in order. The server answers PINGs in order, so
`settle` is right when the subscription's SUB is on the wire ahead of the last
PING it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from hyperhive.bus import auth
from hyperhive.bus.server import EmbeddedServer
from hyperhive.bus.settle import settle
from tests.helpers import connect_as

PING = b"PING\r\n"


class RecordingProxy:
    """Loopback TCP proxy to `upstream`; `sent` is what clients wrote, in order."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 4222
        self.sent = bytearray()
        self.pipes: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"nats://127.0.0.1:{port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.pipes:
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        pipes = [
            asyncio.ensure_future(self._pipe(reader, up_writer, record=True)),
            asyncio.ensure_future(self._pipe(up_reader, writer, record=False)),
        ]
        self.pipes.update(pipes)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if record:
                    self.sent += data
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@pytest.fixture
async def proxy(server: EmbeddedServer) -> AsyncIterator[RecordingProxy]:
    p = RecordingProxy(server.url)
    await p.start()
    yield p
    await p.stop()


async def test_a_settled_subscription_went_to_the_server_before_the_last_ping(
    server: EmbeddedServer, proxy: RecordingProxy
) -> None:
    nc = await connect_as(proxy.url, server.state_dir, auth.ADMIN)

    async def ignore(_msg: object) -> None:
        return None

    try:
        for n in range(20):
            sub = f"SUB settle.check.{n} ".encode()
            await nc.subscribe(f"settle.check.{n}", cb=ignore)

            await settle(nc)

            sent = bytes(proxy.sent)
            assert sub in sent, f"subscription {n} had not reached the server at all"
            assert sent.index(sub) < sent.rindex(PING), (
                f"subscription {n} went out after the last PING: the server may answer "
                "before it has the subscription"
            )
    finally:
        await nc.close()
