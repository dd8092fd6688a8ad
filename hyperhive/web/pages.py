"""The pages: sign-in, the hive, one agent; and the fragments the pages fetch.

A page is rendered from one state (captured with its sequence, `seq`), and its
live stream starts right after that sequence: nothing is missed between the
render and the first update, nothing shown twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.records import Record
from hyperhive.bus.tail import HiveStream, last_matching
from hyperhive.core.state import HiveState
from hyperhive.errors import HyperhiveError, InvalidName, NotConnected
from hyperhive.web import present, tokens
from hyperhive.web.deps import AgentDep, HubDep, StateDirDep, ViewDep
from hyperhive.web.hives import Hub
from hyperhive.web.hub import HiveView
from hyperhive.web.security import safe_next

LOAD_WAIT = 5.0  # a page waits at most this long for its hive's first load to end
TERMINAL_LINES = 400
AGENT_MESSAGES = 40
FEED_PAGE = 100
LOGIN_LIMIT = RateLimitConfig(rate_limit=("minute", 30))


class LoginForm(msgspec.Struct):
    token: str = ""
    next: str = "/"


async def _loaded(view: ViewDep) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LOAD_WAIT):
            await view.tried.wait()  # loaded, or failed (shown as a banner)


# ---------------------------------------------------------------- signing in


@get("/login", exclude_from_auth=True, sync_to_thread=False, include_in_schema=False)
def login_page(next_url: Annotated[str | None, QueryParameter(name="next")] = None) -> Template:
    return Template("login.html", context={"error": None, "next_url": safe_next(next_url)})


@post(
    "/login",
    exclude_from_auth=True,
    include_in_schema=False,
    middleware=[LOGIN_LIMIT.middleware],
    status_code=303,
)
async def login(
    request: Request[Any, Any, Any],
    state_dir: StateDirDep,
    data: URLEncodedBody[LoginForm],
) -> Redirect | Template:
    record = await asyncio.to_thread(tokens.verify, state_dir, data.token.strip())
    if record is None:
        return Template(
            "login.html",
            context={"error": "That is not the operator token.", "next_url": safe_next(data.next)},
            status_code=401,
        )
    request.set_session({"gen": record.generation})
    return Redirect(safe_next(data.next), status_code=303)


@post("/logout", status_code=303, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    request.clear_session()
    return Redirect("/login", status_code=303)


# ---------------------------------------------------------------- pages


@get("/", sync_to_thread=False, include_in_schema=False)
def home(hub: HubDep) -> Redirect:
    hive = hub.default_hive
    if not hive:
        raise NotFoundException("no hive found on this NATS yet")
    return Redirect(f"/h/{hive}", status_code=303)


@get("/h/{hive:str}", include_in_schema=False)
async def hive_page(hub: HubDep, view: ViewDep) -> Template:
    await _loaded(view)
    state = view.state  # one state for the whole page
    return Template(
        "hive.html",
        context={
            "hive": view.hive,
            "hives": hub.hives,
            "seq": state.position,
            "connected": view.connected,
            "problem": view.problem,
            "agents": present.agent_views(state, view.default_model),
            "kept": present.kept_views(state),
            "collisions": present.port_collisions(state),
            "questions": present.open_questions(state),
            "approvals": present.pending_approvals(state),
            "inbox": list(reversed(view.operator_inbox)),
            "feed": [e for e in reversed(view.feed) if e.seq <= state.position][:FEED_PAGE],
            "default_model": view.default_model,
        },
    )


async def _agent_history(
    hub: Hub, view: HiveView, name: str, upto: int
) -> tuple[list[present.TermLine], list[present.MessageView]]:
    """An agent's recent turns and messages, from the stream up to `upto`."""
    nc = hub.nc
    if nc is None or not nc.is_connected or upto < 1:
        return [], []
    hs = HiveStream(view.hive, view.stream, 1, upto)
    turns = await last_matching(
        nc, hs, EventFilter(hive=view.hive, agents=(name,), kinds=("turn.*",)), TERMINAL_LINES
    )
    lines = [t for t in (present.term_line(r.seq, r.event) for r in turns if r.event) if t]
    received = await last_matching(
        nc,
        hs,
        EventFilter(hive=view.hive, kinds=(subjects.EVENT_MESSAGE_SENT,)),
        AGENT_MESSAGES,
        on_subjects=[subjects.inbox_subject(view.hive, name)],
    )
    messages = [
        present.message_view(r.seq, r.event)
        for r in reversed(received)
        if isinstance(r.event, ev.MessageSent)
    ]
    return lines, messages


def _agent_or_404(state: HiveState, name: str) -> None:
    if name not in state.agents:
        kept = " (destroyed; its state was kept)" if name in state.kept else ""
        raise NotFoundException(f"no agent {name!r} in this hive{kept}")


@get("/h/{hive:str}/agents/{name:str}", include_in_schema=False)
async def agent_page(hub: HubDep, view: ViewDep, agent: AgentDep) -> Template:
    await _loaded(view)
    state = view.state
    _agent_or_404(state, agent)
    try:
        lines, messages = await _agent_history(hub, view, agent, state.position)
    except (HyperhiveError, TimeoutError):
        lines, messages = [], []
    a = present.agent_view(state, state.agents[agent], view.default_model)
    return Template(
        "agent.html",
        context={
            "hive": view.hive,
            "seq": state.position,
            "connected": view.connected,
            "problem": view.problem,
            "agent": a,
            "lines": lines,
            "messages": messages,
        },
    )


# ---------------------------------------------------------------- fragments


class Snapshot(msgspec.Struct, frozen=True):
    """Every live section as it is at `seq`: what a browser that lost track morphs in."""

    seq: int
    ops: list[tuple[str, str, str]]


@get("/ui/h/{hive:str}/snapshot", include_in_schema=False)
async def snapshot(
    hub: HubDep,
    view: ViewDep,
    agent_name: Annotated[str | None, QueryParameter(name="agent")] = None,
) -> Snapshot:
    await _loaded(view)
    state = view.state
    ops = view.snapshot_ops(agent_name if agent_name in state.agents else None)
    if agent_name is not None and agent_name in state.agents:
        with contextlib.suppress(HyperhiveError, TimeoutError):
            lines, messages = await _agent_history(hub, view, agent_name, state.position)
            p = view.parts
            ops.append(("morph", f"term-{agent_name}", p.terminal(agent_name, lines)))
            ops.append(("morph", f"agent-msgs-{agent_name}", p.agent_msgs(agent_name, messages)))
    return Snapshot(seq=state.position, ops=ops)


class FeedPage(msgspec.Struct, frozen=True):
    """Feed rows (newest first) older than `before`, matching the filter."""

    html: str
    oldest: int | None
    count: int


@get("/ui/h/{hive:str}/feed", include_in_schema=False)
async def feed_page(
    hub: HubDep,
    view: ViewDep,
    agent_filter: Annotated[str | None, QueryParameter(name="agent", max_length=64)] = None,
    kind_filter: Annotated[str | None, QueryParameter(name="kind", max_length=64)] = None,
    before: Annotated[int | None, QueryParameter(name="before", ge=1)] = None,
) -> FeedPage:
    agents = (agent_filter.strip(),) if agent_filter and agent_filter.strip() else ()
    kinds = (kind_filter.strip(),) if kind_filter and kind_filter.strip() else ()
    try:
        flt = EventFilter(hive=view.hive, agents=agents, kinds=kinds)
    except InvalidName as exc:
        raise InvalidName(f"filter: {exc}") from None
    upto = min(view.position, (before - 1) if before else view.position)
    nc = hub.nc
    if nc is None or not nc.is_connected:
        raise NotConnected("the dashboard is not connected to NATS right now")
    records: list[Record] = []
    if upto >= 1:
        records = await last_matching(
            nc, HiveStream(view.hive, view.stream, 1, upto), flt, FEED_PAGE
        )
    rows = [present.event_view(r) for r in reversed(records)]
    return FeedPage(
        html="".join(view.parts.feed_row(e) for e in rows),
        oldest=rows[-1].seq if rows else None,
        count=len(rows),
    )


PAGE_HANDLERS: list[ControllerRouterHandler] = [
    login_page,
    login,
    logout,
    home,
    hive_page,
    agent_page,
    snapshot,
    feed_page,
]
