"""hive-c0re: the command service. It folds the stream, decides, publishes, answers.

    await run_c0re(cfg)

On start the state comes from the projector's tables plus the stream after
their position; then a live reader keeps folding every event (c0re's own
included: its decisions take effect by being read back, one path for all).
Commands arrive on `hive.<hive>.cmd.c0re.<caller>.<verb>`, only from callers
whose reply inbox is their own (`bus.rpc.trusted`); each caller has a small
queue and the queues are served round-robin, one command at a time, so a
flooding agent slows only itself and two decisions never interleave: of two
concurrent answers to one question, the second sees the first and is refused.
Every decision's events are published, and read back into the state, before
the reply goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from hyperhive import events as ev
from hyperhive import names
from hyperhive.backoff import Backoff
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import nats_state, open_nats
from hyperhive.bus.consume import StartAt, ack_info, read_ordered
from hyperhive.bus.inbox import delete_inbox, ensure_inbox
from hyperhive.bus.publish import publish_budget, publish_event
from hyperhive.bus.records import decode_message
from hyperhive.bus.retry import ELECTION_BUDGET, through_election
from hyperhive.bus.rpc import Call, Replies, trusted
from hyperhive.bus.server import reload_running, running_urls
from hyperhive.bus.settle import settle
from hyperhive.bus.stream import ensure_stream
from hyperhive.commands import (
    CommandRefused,
    InvalidCommand,
    Reply,
    decode_command,
    done,
    encode_reply,
    refused,
)
from hyperhive.config import HiveConfig
from hyperhive.core import configrepo, deadlines, ports
from hyperhive.core.decide import (
    KICK_TEXT,
    MANAGER_NAME,
    ApplyCommit,
    CancelTurn,
    Context,
    Effect,
    Lifecycle,
    ReadLogs,
    Wake,
    decide,
    system_message,
)
from hyperhive.core.lifecycle import AgentSpec, Backend, Exit, make_backend
from hyperhive.core.projection import read_state
from hyperhive.core.state import HiveState, evolve
from hyperhive.errors import BackendError, EventLogError, HyperhiveError, MalformedEvent
from hyperhive.ids import new_id
from hyperhive.names import ROLE_ADMIN, agent_role
from hyperhive.service import announce, cancel_and_wait, keep_running, started, stopped
from hyperhive.statedir import StateDir

log = logging.getLogger("hyperhive.c0re")

SERVICE = "c0re"
QUEUE_PER_CALLER = 64  # commands waiting per agent; one more is refused at once
QUEUE_OPERATOR = 4096  # the operator (hivectl, the dashboard) is trusted with more
HARNESS_TIMEOUT = 3.0
LOG_TIMEOUT = 30.0  # reading a container's journal
LOG_READERS = 4  # log reads at once, off the command loop
MAX_LOG_LINE = 1000  # characters kept of one log line (a reply stays far below max_payload)


@dataclass(frozen=True)
class Deferred:
    """A decided read whose answer comes later: `result` plus what `work` returns."""

    result: dict[str, Any]
    work: Callable[[], Awaitable[dict[str, Any]]]


class C0re:
    """One hive's decision-maker on one connection."""

    def __init__(self, cfg: HiveConfig, nc: Client, backend: Backend) -> None:
        self.cfg = cfg
        self.hive = cfg.hive
        self.nc = nc
        self.js = nc.jetstream()
        self.backend = backend
        self.paths = StateDir.at(cfg.state_dir)
        self.nats_paths = nats_state(cfg)  # where the NATS users live (often the same)
        self.state = HiveState(hive=cfg.hive)
        self.changed = asyncio.Condition()
        self.queues: dict[str, deque[Call]] = {}
        self.replies = Replies()  # a retried command (same request id) runs once
        self.pending = asyncio.Event()
        self.lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[Any]] = []
        self.restarts: dict[str, Backoff] = {}
        self.nats_url = cfg.nats_url
        self.readers = asyncio.Semaphore(LOG_READERS)
        self.reads: set[asyncio.Task[None]] = set()
        self.publish_budget = publish_budget(cfg.stream)

    # ------------------------------------------------------------ the fold

    async def load(self) -> None:
        """The projector's tables, then the stream after their position.

        Tables that can't be read (the projector is just creating the log, or it
        is unusable) are no reason to stop: the whole stream is folded instead.
        """
        try:
            self.state = await asyncio.to_thread(read_state, self.paths.events_db, self.hive)
        except EventLogError as exc:
            log.warning("c0re: no state tables to start from (%s); folding the stream", exc)
            self.state = HiveState(hive=self.hive)
        name = subjects.stream_name(self.hive)
        info = await through_election(lambda: self.js.stream_info(name), f"stream {name}")
        last = info.state.last_seq
        if last > self.state.position:
            msgs = read_ordered(
                self.nc,
                subjects.stream_name(self.hive),
                subjects.stream_subjects(self.hive),
                StartAt(seq=self.state.position + 1),
                follow=False,
                end_seq=last,
            )
            async for msg in msgs:
                self._fold(msg)
        log.info("c0re: state at seq %d (%d agents)", self.state.position, len(self.state.agents))

    def _fold(self, msg: Msg) -> None:
        seq = ack_info(msg).stream_seq
        try:
            event = decode_message(msg.subject, msg.data)
        except MalformedEvent:
            self.state = _advance(self.state, seq)
            return
        self.state = evolve(self.state, seq, event)

    async def follow(self) -> None:
        """Fold every event as it lands, forever; wake whoever waits for a sequence."""
        start = StartAt(seq=self.state.position + 1)
        stream = subjects.stream_name(self.hive)
        async for msg in read_ordered(
            self.nc, stream, subjects.stream_subjects(self.hive), start, follow=True
        ):
            self._fold(msg)
            async with self.changed:
                self.changed.notify_all()

    async def caught_up(self, seq: int, timeout: float = ELECTION_BUDGET) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: self.state.position >= seq)

    async def publish(self, events: list[ev.Event]) -> int:
        """Publish `events` in order and wait until the state has folded them in."""
        last = 0
        for e in events:
            # Through a failover too: retried with the same id, stored once.
            last = (await publish_event(self.js, e, retry_for=self.publish_budget)).seq
        if last:
            await self.caught_up(last)
        return last

    def ctx(self) -> Context:
        return Context(
            hive=self.hive,
            now=datetime.now(UTC),
            new_id=new_id,
            default_model=self.cfg.default_model,
            backend=self.cfg.backend,
        )

    # ------------------------------------------------------------ commands

    async def on_command(self, msg: Msg) -> None:
        """Queue a trusted command under its caller; refuse at once what can't be queued."""
        call = trusted(msg)
        if call is None:
            return  # not from whom the subject says (or not a request): never answered
        seen = self.replies.begin(call)
        if seen is False:
            return  # a retry of a command under way: answered with it
        if isinstance(seen, bytes):
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(seen)  # a retry of one answered already: the same answer
            return
        queue = self.queues.setdefault(call.caller, deque())
        limit = QUEUE_OPERATOR if call.caller == names.OPERATOR else QUEUE_PER_CALLER
        if len(queue) >= limit:
            busy = refused(f"too many commands from {call.caller} waiting: slow down")
            await self._answer(call, busy)
            return
        queue.append(call)
        self.pending.set()

    async def dispatch(self) -> None:
        """Serve the callers' queues round-robin, one command at a time."""
        while True:
            await self.pending.wait()
            self.pending.clear()
            while any(self.queues.values()):
                for caller in list(self.queues):
                    queue = self.queues.get(caller)
                    if not queue:
                        self.queues.pop(caller, None)
                        continue
                    call = queue.popleft()
                    reply = await self.handle(call)
                    if isinstance(reply, Deferred):
                        task = asyncio.create_task(self._respond_later(call, reply))
                        self.reads.add(task)
                        task.add_done_callback(self.reads.discard)
                    else:
                        await self._answer(call, reply)

    async def _answer(self, call: Call, reply: Reply) -> None:
        """Answer every attempt of `call` (a retried command has several reply subjects)."""
        answer = encode_reply(reply)
        for attempt in self.replies.finish(call, answer):
            with contextlib.suppress(nats.errors.Error):
                await attempt.respond(answer)

    async def _respond_later(self, call: Call, deferred: Deferred) -> None:
        """Carry out a read off the command loop (a journal can be slow), then answer."""
        async with self.readers:
            try:
                async with asyncio.timeout(LOG_TIMEOUT):
                    result = await deferred.work()
                reply: Reply = done(**{**deferred.result, **result})
            except TimeoutError:
                reply = refused(f"{call.verb}: no answer from the backend within {LOG_TIMEOUT:g}s")
            except (HyperhiveError, OSError) as exc:
                reply = refused(f"{call.verb}: {exc}")
            except Exception as exc:
                log.exception("c0re: %s %s failed", call.caller, call.verb)
                reply = refused(f"c0re failed on {call.verb}: {type(exc).__name__}: {exc}")
        await self._answer(call, reply)

    async def read_logs(self, effect: ReadLogs) -> dict[str, Any]:
        lines = await self.backend.log_lines(effect.name, effect.lines)
        return {"lines": [line[:MAX_LOG_LINE] for line in lines[-effect.lines :]]}

    async def handle(self, call: Call) -> Reply | Deferred:
        """One command: decode, decide, publish, carry out; never raises.

        A read (an agent's logs) is decided here and handed back as `Deferred`:
        the dispatcher carries it out beside the command loop.
        """
        if call.hive != self.hive:
            return refused(f"this c0re serves hive {self.hive!r}, not {call.hive!r}")
        try:
            command = decode_command(call.verb, call.body)
        except InvalidCommand as exc:
            return refused(str(exc))
        async with self.lock:
            try:
                decision = decide(self.state, call.caller, command, self.ctx())
                await self.publish(decision.events)
                result = dict(decision.result)
                if isinstance(decision.effect, ReadLogs):
                    effect = decision.effect
                    return Deferred(result, lambda: self.read_logs(effect))
                if decision.effect is not None:
                    result.update(await self.carry_out(decision.effect, call.caller))
                return done(**result)
            except CommandRefused as exc:
                return refused(str(exc))
            except HyperhiveError as exc:
                log.warning("c0re: %s %s failed: %s", call.caller, call.verb, exc)
                return refused(str(exc))
            except Exception as exc:
                log.exception("c0re: %s %s failed", call.caller, call.verb)
                return refused(f"c0re failed on {call.verb}: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------ effects

    def spec(self, name: str, model: str | None = None) -> AgentSpec:
        agent = self.state.agents.get(name)
        return AgentSpec(
            name=name,
            hive=self.hive,
            state=self.paths,
            nats_url=self.nats_url,
            port=ports.agent_port(name),
            model=model or (agent.model if agent else None) or self.cfg.default_model,
            nats_state=self.nats_paths if self.nats_paths != self.paths else None,
        )

    async def carry_out(self, effect: Effect, by: str) -> dict[str, Any]:
        if isinstance(effect, Lifecycle):
            return await self.lifecycle(effect, by)
        if isinstance(effect, ApplyCommit):
            return await self.apply_commit(effect, by)
        if isinstance(effect, Wake):
            await self.wake(effect.name)
            return {}
        if isinstance(effect, ReadLogs):
            return await self.read_logs(effect)
        return await self.cancel_turn(effect)

    async def wake(self, name: str) -> None:
        """Ask the agent's harness to look again now; it also looks on its own, soon."""
        subject = subjects.harness_command_subject(self.hive, name, "wake")
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self.nc.request(subject, b"{}", timeout=1.0)

    async def act(self, effect: Lifecycle, by: str = "c0re") -> dict[str, Any]:
        """A lifecycle action c0re takes of its own accord: marked in flight, then done."""
        await self.publish(
            [
                ev.AgentActionStarted(
                    hive=self.hive,
                    agent=effect.name,
                    source=ev.SOURCE_C0RE,
                    action=effect.action,  # type: ignore[arg-type]
                    by=by,
                )
            ]
        )
        return await self.lifecycle(effect, by)

    async def lifecycle(self, effect: Lifecycle, by: str) -> dict[str, Any]:
        name, action = effect.name, effect.action
        try:
            if action == "spawn":
                await self.spawn(name, effect.model)
            elif action == "start":
                await self.start(name)
            elif action == "stop":
                await self.stop(name, by)
            elif action == "restart":
                await self.stop(name, by)
                await self.start(name)
            elif action == "rebuild":
                await self.rebuild(name)
            elif action == "destroy":
                await self.destroy(name, effect.purge)
        except (BackendError, OSError, HyperhiveError) as exc:
            await self._action_failed(name, action, str(exc), effect.approval_id)
            raise BackendError(f"{action} {name} failed: {exc}") from None
        if effect.approval_id is not None:
            await self.publish([self._applied(effect.approval_id, name)])
        return {"state": self.state.agents[name].state if name in self.state.agents else None}

    def _applied(self, approval_id: str, name: str) -> ev.ApprovalApplied:
        return ev.ApprovalApplied(
            hive=self.hive, agent=name, source=ev.SOURCE_C0RE, approval_id=approval_id, by="c0re"
        )

    async def _action_failed(
        self, name: str, action: str, error: str, approval_id: str | None
    ) -> None:
        out: list[ev.Event] = []
        if name in self.state.agents:
            out.append(
                ev.AgentActionFailed(
                    hive=self.hive,
                    agent=name,
                    source=ev.SOURCE_C0RE,
                    action=action,  # type: ignore[arg-type]
                    error=error[:4000],
                )
            )
        if approval_id is not None:
            out.append(
                ev.ApprovalFailed(
                    hive=self.hive,
                    agent=name,
                    source=ev.SOURCE_C0RE,
                    approval_id=approval_id,
                    by="c0re",
                    note=error[:4000],
                )
            )
        with contextlib.suppress(HyperhiveError, nats.errors.Error, TimeoutError):
            await self.publish(out)

    def _credentials(self, name: str) -> None:
        """The agent's NATS user in this hive (and the servers told about it)."""
        state = self.nats_paths.root
        auth.ensure_credentials(state, agent_role(name), self.hive)
        auth.write_auth_conf(state, self.hive, [name])
        # The embedded server, or every node of a local cluster; on NixOS a path
        # unit reloads nats.
        reload_running(state)

    async def spawn(self, name: str, model: str | None) -> None:
        if name in self.state.agents:
            raise BackendError(f"agent {name!r} already exists")
        self.paths.agent_state(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.paths.agent_claude(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        await asyncio.to_thread(self._credentials, name)
        await ensure_inbox(self.nc, self.hive, name)
        await configrepo.ensure_repos(self.cfg.git, self.paths, name)
        spec = self.spec(name, model)
        await self.backend.create(spec)
        revived = name in self.state.kept
        await self.publish(
            [
                ev.AgentSpawned(
                    hive=self.hive,
                    agent=name,
                    source=ev.SOURCE_C0RE,
                    backend=self.backend.name,
                    container=self.backend.container_name(name),
                    port=spec.port,
                    model=model or (self.state.kept[name].model if revived else None),
                    reason="revived" if revived else None,
                )
            ]
        )
        await self.start(name)

    async def start(self, name: str) -> None:
        await self.backend.start(self.spec(name))
        await self.publish(self._started(name, "started"))

    def _started(self, name: str, why: str) -> list[ev.Event]:
        """`agent.started`, and the kick every start, restart and rebuild drops in its inbox."""
        started_ = ev.AgentStarted(
            hive=self.hive,
            agent=name,
            source=ev.SOURCE_C0RE,
            backend=self.backend.name,
            container=self.backend.container_name(name),
            port=ports.agent_port(name),
            reason=None if why == "started" else why,
        )
        return [started_, *self._kick(name, why)]

    def _kick(self, name: str, reason: str) -> list[ev.Event]:
        ctx = self.ctx()
        return [
            ev.AgentKicked(
                hive=self.hive, agent=name, source=ev.SOURCE_C0RE, by="c0re", reason=reason
            ),
            system_message(ctx, name, KICK_TEXT, "kick"),
        ]

    async def stop(self, name: str, by: str) -> None:
        await self.backend.stop(self.spec(name))
        await self.publish(
            [
                ev.AgentStopped(
                    hive=self.hive,
                    agent=name,
                    source=ev.SOURCE_C0RE,
                    backend=self.backend.name,
                    reason=f"stopped by {by}",
                )
            ]
        )

    async def rebuild(self, name: str) -> None:
        await self.backend.rebuild(self.spec(name))
        await self.publish(
            [
                ev.AgentRebuilt(
                    hive=self.hive, agent=name, source=ev.SOURCE_C0RE, backend=self.backend.name
                ),
                *self._started(name, "rebuilt"),
            ]
        )

    async def destroy(self, name: str, purge: bool) -> None:
        if name in self.state.agents:
            await self.backend.destroy(self.spec(name))
        if purge:
            await self.purge(name)
        await self.publish(
            [
                ev.AgentDestroyed(
                    hive=self.hive,
                    agent=name,
                    source=ev.SOURCE_C0RE,
                    backend=self.backend.name,
                    purged=purge,
                )
            ]
        )

    async def purge(self, name: str) -> None:
        """Remove the agent's dirs and credentials, after proving they lie inside the state dir."""
        target = self.paths.inside(self.paths.agent(names.check_agent(name)))
        await delete_inbox(self.nc, self.hive, name)
        await asyncio.to_thread(shutil.rmtree, target, True)
        state = self.nats_paths.root
        await asyncio.to_thread(auth.remove_credentials, state, agent_role(name), self.hive)
        reload_running(state)

    async def apply_commit(self, effect: ApplyCommit, by: str) -> dict[str, Any]:
        name = effect.agent
        if not self.paths.agent(name).is_dir():
            await self.publish([self._failed(effect.approval_id, name, "agent state dir missing")])
            raise BackendError(f"cannot apply to {name}: agent state dir missing")
        try:
            commit = await configrepo.apply(self.cfg.git, self.paths, name, effect.commit_ref)
        except (BackendError, HyperhiveError, OSError) as exc:
            await self.publish([self._failed(effect.approval_id, name, str(exc))])
            raise BackendError(str(exc)) from None
        if name in self.state.agents:
            await self.lifecycle(Lifecycle("rebuild", name), by)
        await self.publish([self._applied(effect.approval_id, name)])
        return {"applied_commit": commit}

    def _failed(self, approval_id: str, name: str, note: str) -> ev.ApprovalFailed:
        return ev.ApprovalFailed(
            hive=self.hive,
            agent=name,
            source=ev.SOURCE_C0RE,
            approval_id=approval_id,
            by="c0re",
            note=note[:4000],
        )

    async def cancel_turn(self, effect: CancelTurn) -> dict[str, Any]:
        subject = subjects.harness_command_subject(self.hive, effect.name, "cancel_turn")
        payload = msgspec.json.encode({"turn_id": effect.turn_id})
        try:
            reply = await self.nc.request(subject, payload, timeout=HARNESS_TIMEOUT)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
            raise BackendError(f"{effect.name}'s harness did not answer the cancel") from None
        return {"cancelled": True, "harness": msgspec.json.decode(reply.data)}

    # ------------------------------------------------------------ timers and exits

    async def expire(self) -> None:
        """Publish what falls due, when it falls due (deadlines from the events)."""
        while True:
            async with self.lock:
                events = deadlines.due(self.state, self.ctx())
                if events:
                    with contextlib.suppress(HyperhiveError, nats.errors.Error, TimeoutError):
                        await self.publish(events)
                        continue
            when = deadlines.next_deadline(self.state)
            delay = 3600.0 if when is None else (when - datetime.now(UTC)).total_seconds()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(delay, 3600.0))), self.changed:
                    await self.changed.wait()  # a new question may be due sooner

    async def watch_exits(self) -> None:
        while True:
            exit_ = await self.backend.exits.get()
            async with self.lock:
                await self._exited(exit_)

    async def _exited(self, exit_: Exit) -> None:
        agent = self.state.agents.get(exit_.agent)
        planned = bool(
            agent is not None
            and self.cfg.restart_crashed
            and self._restarts(exit_.agent).attempts < self.cfg.restart_max
        )
        events = deadlines.crashed(
            self.state,
            self.ctx(),
            exit_.agent,
            exit_.exit_status,
            exit_.signal,
            exit_.unit,
            list(exit_.last_log_lines),
            planned,
        )
        if not events:
            return
        log.warning("c0re: agent %s crashed (%s)", exit_.agent, exit_.signal or exit_.exit_status)
        with contextlib.suppress(HyperhiveError, nats.errors.Error, TimeoutError):
            await self.publish(events)
        if planned:
            self.tasks.append(asyncio.create_task(self._restart_later(exit_.agent)))

    def _restarts(self, name: str) -> Backoff:
        return self.restarts.setdefault(name, Backoff(first=1.0, cap=60.0))

    async def _restart_later(self, name: str) -> None:
        await asyncio.sleep(self._restarts(name).next_delay())
        async with self.lock:
            agent = self.state.agents.get(name)
            if agent is None or agent.state != "crashed":
                return
            with contextlib.suppress(HyperhiveError, nats.errors.Error, TimeoutError):
                await self.act(Lifecycle("start", name))

    # ------------------------------------------------------------ the hive at start

    async def ensure_hive(self) -> None:
        """The manager and the agents hive.toml declares exist and run; orphans are settled."""
        wanted = [MANAGER_NAME, *sorted(n for n in self.cfg.agents if n != MANAGER_NAME)]
        async with self.lock:
            for name in wanted:
                model = self.cfg.agents[name].model if name in self.cfg.agents else None
                try:
                    await self._ensure_agent(name, model)
                except (HyperhiveError, OSError) as exc:
                    log.error("c0re: could not bring up %s: %s", name, exc)
            await self._settle_orphans()

    async def _ensure_agent(self, name: str, model: str | None) -> None:
        agent = self.state.agents.get(name)
        if agent is None:
            await self.act(Lifecycle("spawn", name, model=model))
            return
        await ensure_inbox(self.nc, self.hive, name)
        if agent.state != "running" or not self.backend.is_running(name):
            if agent.action is not None:  # an action that died with the last c0re
                await self.publish(
                    [
                        ev.AgentActionFailed(
                            hive=self.hive,
                            agent=name,
                            source=ev.SOURCE_C0RE,
                            action=agent.action,  # type: ignore[arg-type]
                            error="c0re restarted while it was in flight",
                        )
                    ]
                )
            if agent.state == "running" or name == MANAGER_NAME or name in self.cfg.agents:
                await self.act(Lifecycle("start", name))

    async def _settle_orphans(self) -> None:
        """Pending approvals whose agent's state dir vanished are failed (kept for audit)."""
        out: list[ev.Event] = []
        for a in self.state.approvals.values():
            target = a.payload.get("agent") if a.approval_kind == "apply_commit" else None
            orphan = (
                a.status == "pending"
                and isinstance(target, str)
                and names.is_agent(target)
                and not self.paths.agent(target).is_dir()
            )
            if orphan and isinstance(target, str):
                out.append(self._failed(a.approval_id, target, "agent state dir missing"))
        await self.publish(out)

    async def serve(self) -> None:
        sub = await self.nc.subscribe(subjects.command_pattern(self.hive), cb=self.on_command)
        await settle(self.nc)
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


def _advance(state: HiveState, seq: int) -> HiveState:
    return msgspec.structs.replace(state, position=max(state.position, seq))


async def run_c0re(
    cfg: HiveConfig,
    backend: Backend | None = None,
    on_ready: Callable[[C0re], Awaitable[None] | None] | None = None,
) -> None:
    """Run c0re until cancelled: a failure is one log line and a fresh start, never an exit."""
    backend = backend or make_backend(cfg, cfg.backend)
    retries = Backoff(first=0.5, cap=10.0)
    try:
        await keep_running("c0re", lambda: _run_once(cfg, backend, on_ready), retries, log)
    finally:
        await backend.aclose()


async def _run_once(
    cfg: HiveConfig,
    backend: Backend,
    on_ready: Callable[[C0re], Awaitable[None] | None] | None,
) -> None:
    async with open_nats(cfg, ROLE_ADMIN, "hyperhive-c0re", wait=True) as nc:
        await ensure_stream(nc.jetstream(), cfg.hive, cfg.stream)
        core = C0re(cfg, nc, backend)
        if not core.nats_url:  # the agents get the servers c0re found
            core.nats_url = ",".join(running_urls(core.nats_paths.root))
        await core.load()
        core.tasks = [
            asyncio.create_task(core.follow(), name="c0re-follow"),
            asyncio.create_task(core.dispatch(), name="c0re-dispatch"),
            asyncio.create_task(core.serve(), name="c0re-serve"),
        ]
        await announce(cfg, started(cfg, SERVICE, ev.SOURCE_C0RE))
        await core.ensure_hive()
        core.tasks += [
            asyncio.create_task(core.expire(), name="c0re-expire"),
            asyncio.create_task(core.watch_exits(), name="c0re-exits"),
        ]
        if on_ready is not None:
            maybe = on_ready(core)
            if maybe is not None:
                await maybe
        try:
            done_, _ = await asyncio.wait(core.tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done_:
                if not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            await cancel_and_wait(core.tasks)
            await announce(cfg, stopped(cfg, SERVICE, ev.SOURCE_C0RE))
