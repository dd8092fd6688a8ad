"""`hyperhive mcp --agent NAME`: the agent's tools as a stdio MCP server for Claude Code.

    await run_mcp(cfg, "alice")    # serves stdin/stdout until stdin closes

stdout carries the protocol and nothing else: logs go to stderr, and while it
serves, the SDK points fd 1 at stderr so a stray print cannot corrupt a frame.
The server answers `initialize` and `tools/list` at once; the NATS connection
(as `agent-<name>`) is made in the background and retried until it is up, and a
tool called before that waits a few seconds, then says the bus is not there.
Tools are `tools.Tools`: one c0re command each, with the agent as caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from nats.aio.client import Client

from hyperhive import __version__
from hyperhive.backoff import Backoff
from hyperhive.bus.connect import open_nats
from hyperhive.config import HiveConfig
from hyperhive.errors import HyperhiveError, NotConnected
from hyperhive.harness.mcp.tools import Outcome, Tools, error
from hyperhive.names import agent_role
from hyperhive.service import stop_if_cancelled

log = logging.getLogger("hyperhive.mcp")

SERVER_NAME = "hyperhive"  # Claude Code names the tools mcp__hyperhive__<tool>


class HiveLink:
    """The agent's NATS connection, made in the background and kept until `close`."""

    def __init__(self, cfg: HiveConfig, agent: str) -> None:
        self.cfg = cfg
        self.agent = agent
        self._nc: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._last_error = "still connecting"

    async def run(self) -> None:
        """Connect (retrying forever), then hold the connection until cancelled."""
        backoff = Backoff(0.2, 5.0)
        while True:
            try:
                async with open_nats(
                    self.cfg, agent_role(self.agent), f"hyperhive-mcp-{self.agent}", wait=True
                ) as nc:
                    self._nc.set_result(nc)
                    await asyncio.Event().wait()
            except HyperhiveError as exc:  # no server info yet, unreadable credentials
                stop_if_cancelled(exc)
                self._last_error = str(exc)
                delay = backoff.next_delay()
                log.warning("mcp: cannot reach the hive yet (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def client(self, timeout: float) -> Client:
        """The connection, waiting up to `timeout` for it; `NotConnected` if it is not up."""
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._nc)
        except TimeoutError:
            raise NotConnected(
                f"not connected to the hive's NATS as agent-{self.agent} after {timeout:g}s "
                f"({self._last_error}); it keeps trying: call the tool again shortly"
            ) from None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HiveLink]:
        task = asyncio.create_task(self.run(), name=f"mcp-nats-{self.agent}")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _result(out: Outcome) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=out.text)], is_error=out.is_error
    )


def instructions(agent: str, hive: str, manager: bool) -> str:
    more = (
        " As the manager you may also ask for new agents (request_spawn), start, stop and "
        "restart the others, and ask to apply an agent's config commit (request_apply_commit)."
        if manager
        else ""
    )
    return (
        f"You are agent {agent} of the hive {hive!r}. These tools are how you talk to the "
        "hive: send messages to other agents or the operator, recv the messages sent to you, "
        "ask the operator a question (the answer comes to your inbox), and set the status "
        f"line the operator sees.{more}"
    )


def build_server(tools: Tools) -> Server[Any]:
    """The low-level MCP server over `tools` (arguments are validated by `tools`, not the SDK)."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=t.name, description=t.description, input_schema=t.input_schema)
                for t in tools.listed()
            ]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return _result(await tools.call(params.name, params.arguments))

    server: Server[Any] = Server(
        SERVER_NAME,
        version=__version__,
        instructions=instructions(tools.agent, tools.hive, tools.is_manager),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    server.middleware.append(_shapeless_calls_are_tool_errors)
    return server


async def _shapeless_calls_are_tool_errors(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """A `tools/call` whose name or arguments are not the right JSON gets a tool error.

    The SDK would answer it with a protocol error (invalid params), which a model
    cannot act on; this says what is wrong, in the tool's result, like any other.
    """
    params = ctx.params
    if ctx.method == "tools/call" and isinstance(params, Mapping):
        name = params.get("name")
        arguments = params.get("arguments")
        reason = None
        if not isinstance(name, str):
            reason = "the tool name must be a string"
        elif arguments is not None and not isinstance(arguments, Mapping):
            reason = f"{name[:64]}: the arguments must be a JSON object"
        if reason is not None:
            out = error(reason)
            return {"content": [{"type": "text", "text": out.text}], "isError": True}
    return await call_next(ctx)


async def run_mcp(cfg: HiveConfig, agent: str) -> None:
    """Serve `agent`'s tools on stdin/stdout until stdin closes."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("mcp").setLevel(logging.WARNING)  # no line per request
    async with HiveLink(cfg, agent).running() as link:
        tools = Tools(agent=agent, hive=cfg.hive, client=link.client)
        server = build_server(tools)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    log.debug("mcp: stdin closed, %s's tool server stops", agent)
