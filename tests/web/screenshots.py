"""The screenshots in docs/: a real hive, its dashboard and Chromium, as the tests run them.

    .venv/bin/python -m tests.web.screenshots [OUT_DIR]      (default docs/screenshots)

A hive of stand-in agents (process backend, real NATS and c0re) is given something to
show: statuses, a question with options, a spawn and an apply_commit waiting for
approval, messages for the operator, and one turn of alice's with its steps. Then the
hive page and alice's page are captured.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from hyperhive import events as ev
from hyperhive.bus.publish import publish_event
from hyperhive.bus.rpc import command
from hyperhive.commands import verbs as v
from tests.core.conftest import live_hive
from tests.web.browser import new_context, open_browser, reached, signed_in
from tests.web.conftest import CHROMIUM, dashboard_for

ROOT = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "manager",
        "GIT_AUTHOR_EMAIL": "manager@hive",
        "GIT_COMMITTER_NAME": "manager",
        "GIT_COMMITTER_EMAIL": "manager@hive",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    return out.stdout


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        agents = ("alice", "bob", "carol")
        async with live_hive(Path(tmp) / "state", "lab", agents=agents) as live:
            hive = live.cfg.hive
            for name, status in (
                ("alice", "reviewing the flaky test in ci/integration"),
                ("bob", "waiting for the staging database migration"),
                ("carol", "drafting the release notes for 0.4"),
            ):
                await live.agent_says(name, v.SetStatus(text=status))
            bob = await live.as_agent("bob")
            await command(
                bob,
                hive,
                "bob",
                v.AskOperator(
                    question="The migration wants to drop the legacy `sessions` table. Go ahead?",
                    options=["yes, drop it", "keep it for a week", "ask me tomorrow"],
                    ttl_seconds=3600,
                ),
            )
            await live.agent_says("manager", v.RequestSpawn(name="dave"))
            repo = live.state_dir / "agents" / "alice" / "config" / "proposed"
            (repo / "agent.nix").write_text(
                "{ pkgs, ... }:\n{\n  environment.systemPackages = [ pkgs.ripgrep pkgs.jq ];\n}\n"
            )
            _git(repo, "commit", "-qam", "ripgrep and jq for alice")
            ref = _git(repo, "rev-parse", "HEAD").strip()
            await live.agent_says("manager", v.RequestApplyCommit(agent="alice", commit_ref=ref))
            await live.agent_says(
                "carol",
                v.Send(
                    to="operator", body="Release notes are ready for a read: /state/notes-0.4.md"
                ),
            )
            await live.op(v.Pause(name="carol"))
            js = (await live.as_agent("alice")).jetstream()
            turn = "01JSCREENSH0T0000000000001"

            def step(kind: ev.StepKind, excerpt: str, tool: str | None = None) -> ev.TurnStep:
                return ev.TurnStep(
                    hive=hive,
                    agent="alice",
                    source="harness",
                    turn_id=turn,
                    step=kind,
                    tool=tool,
                    excerpt=excerpt,
                )

            failures = "\n".join(
                f"{120 + i}: FAIL test_reconnect_after_restart (timeout {i}s)" for i in range(9)
            )
            story: list[ev.Event] = [
                ev.TurnStarted(
                    hive=hive,
                    agent="alice",
                    source="harness",
                    turn_id=turn,
                    model="sonnet",
                    trigger="message",
                ),
                step("text", "Let me look at the last failing run first."),
                step("tool_use", "Bash $ grep -n FAIL ci/logs/integration-1841.txt", "Bash"),
                step("tool_result", failures),
                step("tool_use", "Read /src/tests/test_reconnect.py", "Read"),
                step(
                    "tool_result", "def test_reconnect_after_restart(server):\n    server.restart()"
                ),
                step(
                    "tool_use",
                    "send → bob: the reconnect test waits on a fixed sleep; I'll switch it to an event",
                    "mcp__hyperhive__send",
                ),
                step("tool_result", "sent to bob"),
                ev.TurnFinished(
                    hive=hive,
                    agent="alice",
                    source="harness",
                    turn_id=turn,
                    duration_ms=41_300,
                    cost_usd=0.0842,
                    num_turns=6,
                ),
            ]
            turn = turn + "2"
            story += [
                ev.TurnStarted(
                    hive=hive,
                    agent="alice",
                    source="harness",
                    turn_id=turn,
                    model="sonnet",
                    trigger="message",
                ),
                step("text", "Now replacing the sleep with a wait on the server's ready event."),
            ]
            for e in story:
                await publish_event(js, e)
            async with dashboard_for(live) as dash, open_browser(CHROMIUM) as browser:
                await dash.caught_up()
                ctx = await new_context(browser)
                page, _ = await signed_in(browser, dash, context=ctx)
                await reached(page, dash.hub.view(hive).position)
                await page.screenshot(path=str(out / "dashboard.png"), full_page=True)
                agent, _ = await signed_in(browser, dash, f"/h/{hive}/agents/alice", context=ctx)
                await agent.screenshot(path=str(out / "agent.png"), full_page=True)
    print(f"wrote {out / 'dashboard.png'} and {out / 'agent.png'}")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target))
