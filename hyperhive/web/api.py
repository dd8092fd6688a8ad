"""The JSON API behind the pages: reads from the dashboard's folded state, actions as c0re
commands sent as the operator. Its OpenAPI schema is at `/schema/openapi.json`.

Every answer is `{"ok": true, "result": {...}}` or `{"ok": false, "error": "..."}`
(see `errors`). Names in the URL are checked before anything is done: a hive
this dashboard does not serve is 404, an agent name that is not one is 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler

from hyperhive.bus.filters import EventFilter
from hyperhive.bus.tail import HiveStream, last_matching
from hyperhive.commands import Command, CommandRefused
from hyperhive.commands import verbs as v
from hyperhive.core import configrepo
from hyperhive.core.decide import agent_row, approval_row, question_row
from hyperhive.core.ports import collisions as port_collisions
from hyperhive.errors import BackendError, InvalidName, NotConnected
from hyperhive.events.envelope import MAX_TEXT
from hyperhive.web import compose, login, present
from hyperhive.web.deps import AgentDep, CfgDep, HubDep, LoginsDep, StateDirDep, ViewDep
from hyperhive.web.hives import Hub
from hyperhive.web.hub import HiveView

MAX_DIFF = 256 * 1024
EVENTS_LIMIT = 1000


class Reply(msgspec.Struct, frozen=True):
    """A successful answer: what came of it."""

    result: dict[str, Any]
    ok: bool = True


def ok(result: dict[str, Any] | None = None) -> Reply:
    return Reply(result=msgspec.to_builtins(result or {}))


Action = Literal[
    "start",
    "stop",
    "restart",
    "rebuild",
    "pause",
    "resume",
    "destroy",
    "purge",
    "kick",
    "cancel-turn",
    "revive",
]


class Note(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An optional note or reason for an action."""

    note: Annotated[str, msgspec.Meta(max_length=4096)] = ""


class SpawnBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=64)]
    model: Annotated[str, msgspec.Meta(max_length=128)] = ""


class ModelBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class SendBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    to: Annotated[str, msgspec.Meta(max_length=64)]
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]


class TextBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the operator typed: `@agent message`, or a line on an agent's page."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT + 128)]


class AnswerBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The picked options (if the question had any) and free text; at least one of them."""

    options: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=1024)]], msgspec.Meta(max_length=32)
    ] = []
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] = ""


class ApiKeyBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    api_key: Annotated[str, msgspec.Meta(max_length=512)]


class CodeBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(max_length=512)]


ACTIONS: dict[str, Callable[[str, str], Command]] = {
    "start": lambda name, _: v.Start(name=name),
    "stop": lambda name, _: v.Stop(name=name),
    "restart": lambda name, _: v.Restart(name=name),
    "rebuild": lambda name, _: v.Rebuild(name=name),
    "pause": lambda name, _: v.Pause(name=name),
    "resume": lambda name, _: v.Resume(name=name),
    "destroy": lambda name, _: v.Destroy(name=name),
    "purge": lambda name, _: v.Destroy(name=name, purge=True),
    "kick": lambda name, note: v.Kick(name=name, reason=note[:1024]),
    "cancel-turn": lambda name, _: v.CancelTurn(name=name),
    # a kept name spawned again gets its state back
    "revive": lambda name, _: v.Spawn(name=name),
}


def _local(hub: Hub, view: HiveView) -> None:
    if not hub.local(view.hive):
        raise CommandRefused(f"hive {view.hive}'s files are not on this host")


class HiveApi(Controller):
    """One hive: its state, and what the operator may do to it."""

    path = "/api/h/{hive:str}"
    tags = ["hive"]

    # ------------------------------------------------------------ reads

    @get("/agents")
    async def agents(self, view: ViewDep) -> Reply:
        """Every agent with its state, and the kept ones (as `hivectl agents -o json`)."""
        s = view.state
        rows = [agent_row(s, a, view.default_model) for _, a in sorted(s.agents.items())]
        kept = [msgspec.to_builtins(k) for _, k in sorted(s.kept.items())]
        return ok({"agents": rows, "kept": kept, "seq": s.position})

    @get("/questions")
    async def questions(
        self, view: ViewDep, show_all: Annotated[bool, QueryParameter(name="all")] = False
    ) -> Reply:
        """Open questions (with `all`, the resolved ones too)."""
        qs = sorted(view.state.questions.values(), key=lambda q: (q.status != "open", q.expires_at))
        return ok({"questions": [question_row(q) for q in qs if show_all or q.status == "open"]})

    @get("/approvals")
    async def approvals(
        self, view: ViewDep, show_all: Annotated[bool, QueryParameter(name="all")] = False
    ) -> Reply:
        """Pending approvals (with `all`, the settled ones too)."""
        rows = sorted(
            view.state.approvals.values(), key=lambda a: (a.status != "pending", a.requested_at)
        )
        return ok(
            {"approvals": [approval_row(a) for a in rows if show_all or a.status == "pending"]}
        )

    @get("/ports")
    async def ports(self, view: ViewDep) -> Reply:
        """The agents' web UI ports, and the collisions among them."""
        clashes = {str(p): names for p, names in port_collisions(view.state.agents).items()}
        return ok({"collisions": clashes})

    @get("/events")
    async def events(
        self,
        hub: HubDep,
        view: ViewDep,
        agent_filter: Annotated[str | None, QueryParameter(name="agent", max_length=64)] = None,
        kind_filter: Annotated[str | None, QueryParameter(name="kind", max_length=64)] = None,
        before: Annotated[int | None, QueryParameter(name="before", ge=1)] = None,
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=EVENTS_LIMIT)] = 100,
    ) -> Reply:
        """The last `limit` events (before sequence `before`), as stored, oldest first."""
        agents = (agent_filter,) if agent_filter else ()
        kinds = (kind_filter,) if kind_filter else ()
        flt = EventFilter(hive=view.hive, agents=agents, kinds=kinds)
        nc = hub.nc
        if nc is None or not nc.is_connected:
            raise NotConnected("the dashboard is not connected to NATS right now")
        upto = min(view.position, (before - 1) if before else view.position)
        recs = []
        if upto >= 1:
            recs = await last_matching(nc, HiveStream(view.hive, view.stream, 1, upto), flt, limit)
        out = []
        for r in recs:
            try:
                stored: Any = msgspec.json.decode(r.data)
            except msgspec.DecodeError:
                stored = None
            out.append({"seq": r.seq, "subject": r.subject, "event": stored, "error": r.error})
        return ok({"events": out})

    @get("/agents/{name:str}/logs")
    async def logs(
        self,
        hub: HubDep,
        view: ViewDep,
        agent: AgentDep,
        lines: Annotated[int, QueryParameter(name="lines", ge=1, le=v.MAX_LOG_LINES)] = 200,
    ) -> Reply:
        """An agent's last log lines (harness.log, or its container's journal), via c0re."""
        return ok(await hub.command(view.hive, v.Logs(name=agent, lines=lines)))

    @get("/approvals/{approval_id:str}/diff")
    async def diff(
        self,
        hub: HubDep,
        view: ViewDep,
        cfg: CfgDep,
        state_dir: StateDirDep,
        approval_id: FromPath[str],
    ) -> Reply:
        """What approving an `apply_commit` would change in the agent's config (a unified diff)."""
        a = view.state.approvals.get(approval_id[:64])
        if a is None:
            raise CommandRefused(f"unknown approval {approval_id[:64]!r}")
        if a.approval_kind != "apply_commit":
            raise CommandRefused(f"approval {a.approval_id} is a {a.approval_kind}: it has no diff")
        _local(hub, view)
        target, ref = str(a.payload.get("agent", "")), str(a.payload.get("commit_ref", ""))
        try:
            text = await configrepo.diff(cfg.git, state_dir, target, ref)
        except (BackendError, InvalidName, OSError) as exc:
            raise CommandRefused(f"no diff for {a.approval_id}: {exc}") from None
        cut = len(text) > MAX_DIFF
        return ok({"diff": text[:MAX_DIFF], "truncated": cut})

    # ------------------------------------------------------------ actions

    @post("/agents", status_code=200)
    async def spawn(self, hub: HubDep, view: ViewDep, data: JSONBody[SpawnBody]) -> Reply:
        """Spawn an agent now (a kept name is revived)."""
        cmd = v.Spawn(name=data.name.strip(), model=data.model.strip() or None)
        return ok(await hub.command(view.hive, cmd))

    @post("/agents/{name:str}/{action:str}", status_code=200)
    async def act(
        self,
        hub: HubDep,
        view: ViewDep,
        agent: AgentDep,
        action: FromPath[Action],
        data: JSONBody[Note | None] = None,
    ) -> Reply:
        """A lifecycle action on an agent: start, stop, restart, rebuild, pause, resume,
        destroy, purge, kick, cancel-turn, revive."""
        cmd = ACTIONS[action](agent, data.note if data else "")
        return ok(await hub.command(view.hive, cmd))

    @post("/agents/{name:str}/model", status_code=200)
    async def model(
        self, hub: HubDep, view: ViewDep, agent: AgentDep, data: JSONBody[ModelBody]
    ) -> Reply:
        """The model the agent uses from its next turn."""
        return ok(await hub.command(view.hive, v.SetModel(name=agent, model=data.model.strip())))

    @post("/agents/{name:str}/say", status_code=200)
    async def say(
        self, hub: HubDep, view: ViewDep, agent: AgentDep, data: JSONBody[TextBody]
    ) -> Reply:
        """A line typed on the agent's page: a message to it, or a slash command."""
        what = compose.parse_agent_input(agent, data.text)
        if isinstance(what, compose.SendMessage):
            result = await hub.command(view.hive, v.Send(to=what.to, body=what.body))
            return ok({**result, "output": f"sent to {what.to}"})
        if what.name == "help":
            text = "\n".join(f"{cmd:<16} {meaning}" for cmd, meaning in compose.SLASH_HELP)
            return ok({"output": text})
        if what.name == "cancel":
            result = await hub.command(view.hive, v.CancelTurn(name=agent))
            said = "cancelling the turn" if result.get("turn_id") else "no turn is running"
            return ok({**result, "output": said})
        if what.name == "model":
            result = await hub.command(view.hive, v.SetModel(name=agent, model=what.arg))
            return ok({**result, "output": f"{agent} uses {what.arg} from its next turn"})
        result = await hub.harness(view.hive, agent, what.name)
        told = {"clear": "the next turn starts a new session", "compact": "compacting"}
        return ok({**result, "output": told[what.name], "clear_terminal": what.name == "clear"})

    @post("/send", status_code=200)
    async def send(self, hub: HubDep, view: ViewDep, data: JSONBody[SendBody]) -> Reply:
        """A message from the operator into an agent's inbox."""
        return ok(await hub.command(view.hive, v.Send(to=data.to, body=data.body)))

    @post("/compose", status_code=200)
    async def compose(self, hub: HubDep, view: ViewDep, data: JSONBody[TextBody]) -> Reply:
        """`@agent message`: a message from the operator."""
        msg = compose.parse_compose(data.text)
        return ok(await hub.command(view.hive, v.Send(to=msg.to, body=msg.body)))

    @post("/questions/{question_id:str}/answer", status_code=200)
    async def answer(
        self, hub: HubDep, view: ViewDep, question_id: FromPath[str], data: JSONBody[AnswerBody]
    ) -> Reply:
        """Answer an open question with the picked options and/or free text."""
        text = present.answer_text(data.options, data.text)
        if not text:
            raise CommandRefused("an answer needs a picked option or some text")
        return ok(await hub.command(view.hive, v.Answer(question_id=question_id[:64], answer=text)))

    @post("/questions/{question_id:str}/cancel", status_code=200)
    async def cancel_question(
        self,
        hub: HubDep,
        view: ViewDep,
        question_id: FromPath[str],
        data: JSONBody[Note | None] = None,
    ) -> Reply:
        """Withdraw an open question; the asker is told `[cancelled]`."""
        reason = (data.note if data else "")[:1024] or None
        cmd = v.CancelQuestion(question_id=question_id[:64], reason=reason)
        return ok(await hub.command(view.hive, cmd))

    @post("/approvals/{approval_id:str}/{decision:str}", status_code=200)
    async def decide(
        self,
        hub: HubDep,
        view: ViewDep,
        approval_id: FromPath[str],
        decision: FromPath[Literal["approve", "deny"]],
        data: JSONBody[Note | None] = None,
    ) -> Reply:
        """Approve (carried out at once) or deny a pending request, with an optional note."""
        note = (data.note if data else "") or None
        aid = approval_id[:64]
        cmd: Command = (
            v.Approve(approval_id=aid, note=note)
            if decision == "approve"
            else v.Deny(approval_id=aid, note=note)
        )
        return ok(await hub.command(view.hive, cmd))

    # ------------------------------------------------------------ Claude login

    @get("/agents/{name:str}/login")
    async def login_status(self, view: ViewDep, agent: AgentDep, logins: LoginsDep) -> Reply:
        """The agent's Claude sign-in in progress, if any."""
        a = view.state.agents.get(agent)
        return ok({**logins.status(agent), "needs_login": bool(a and a.needs_login)})

    @post("/agents/{name:str}/login/api-key", status_code=200)
    async def login_key(
        self,
        hub: HubDep,
        view: ViewDep,
        agent: AgentDep,
        state_dir: StateDirDep,
        data: JSONBody[ApiKeyBody],
    ) -> Reply:
        """Give the agent an Anthropic API key (kept in its own Claude settings), then kick it."""
        _local(hub, view)
        self._agent(view, agent)
        login.save_api_key(state_dir, agent, data.api_key)
        await hub.command(view.hive, v.Kick(name=agent, reason="new Claude credentials"))
        return ok({"saved": True})

    @post("/agents/{name:str}/login/start", status_code=200)
    async def login_start(
        self, hub: HubDep, view: ViewDep, agent: AgentDep, logins: LoginsDep
    ) -> Reply:
        """Start a Claude account sign-in for the agent: the answer has the URL to open."""
        _local(hub, view)
        self._agent(view, agent)
        return ok(await logins.start(agent))

    @post("/agents/{name:str}/login/code", status_code=200)
    async def login_code(
        self,
        hub: HubDep,
        view: ViewDep,
        agent: AgentDep,
        logins: LoginsDep,
        data: JSONBody[CodeBody],
    ) -> Reply:
        """Finish the sign-in with the code the sign-in page showed; the agent is kicked."""
        result = await logins.code(agent, data.code)
        if result["state"] == "done":
            await hub.command(view.hive, v.Kick(name=agent, reason="new Claude credentials"))
        return ok(result)

    @post("/agents/{name:str}/login/cancel", status_code=200)
    async def login_cancel(self, agent: AgentDep, logins: LoginsDep) -> Reply:
        """Abandon the sign-in in progress."""
        await logins.cancel(agent)
        return ok({"cancelled": True})

    @staticmethod
    def _agent(view: HiveView, agent: str) -> None:
        if agent not in view.state.agents:
            raise CommandRefused(f"unknown agent {agent!r}")


@get("/api/hives", tags=["hives"])
async def hives(hub: HubDep) -> Reply:
    """The hives this dashboard serves."""
    return ok({"hives": hub.hives, "default": hub.default_hive})


API_HANDLERS: list[ControllerRouterHandler] = [HiveApi, hives]
