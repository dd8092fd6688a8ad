"""An agent's page in Chromium: its live terminal, its state row, its inbox, the send box
with its slash commands, and its Claude login panel."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from hyperhive import events as ev
from hyperhive.bus.publish import publish_event
from tests.harness.test_loop import Events
from tests.helpers import wait_until
from tests.web.browser import open_browser, reached, signed_in, until
from tests.web.conftest import Dash
from tests.web.test_browser_actions import received

pytestmark = [pytest.mark.nats, pytest.mark.browser]

TURN = "01J00000000000000000000T01"


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with open_browser(chromium) as b:
        yield b


async def as_alice(dash: Dash, *events: ev.Event) -> None:
    js = (await dash.live.as_agent("alice")).jetstream()
    for e in events:
        await publish_event(js, e)


def step(kind: ev.StepKind, excerpt: str, tool: str | None = None) -> ev.TurnStep:
    return ev.TurnStep(
        hive="web",
        agent="alice",
        source="harness",
        turn_id=TURN,
        step=kind,
        tool=tool,
        excerpt=excerpt,
    )


async def test_the_terminal_shows_a_turn_live_step_by_step(dash: Dash, browser: Browser) -> None:
    page, watched = await signed_in(browser, dash, "/h/web/agents/alice")
    state_row = page.locator("#state-alice")
    term = page.locator("#term-alice")
    await as_alice(
        dash,
        ev.TurnStarted(
            hive="web",
            agent="alice",
            source="harness",
            turn_id=TURN,
            model="opus",
            trigger="message",
        ),
    )
    await state_row.locator(".badge", has_text="thinking").wait_for()
    assert await state_row.locator("button[data-action=cancel-turn]").is_visible()
    await as_alice(
        dash,
        step("text", "Let me look at the hosts file."),
        step("tool_use", "Read /etc/hosts", tool="Read"),
        step("tool_result", "\n".join(f"127.0.0.{i} host{i}" for i in range(12))),
        step("tool_use", "send → bob: the hosts are fine", tool="mcp__hyperhive__send"),
        step("tool_result", "sent to bob"),
    )
    await term.locator(".line-tool_result", has_text="sent to bob").wait_for()
    tools = await term.locator(".line-tool_use").all_inner_texts()
    assert tools == ["Read /etc/hosts", "send → bob: the hosts are fine"]
    names = await term.locator(".line-tool_use .tool").evaluate_all("ts => ts.map(t => t.title)")
    assert names == ["Read", "mcp__hyperhive__send"]
    long = term.locator(".line-tool_result details")
    assert await long.count() == 1
    assert await long.get_attribute("open") is None
    assert await long.locator("summary").inner_text() == "127.0.0.0 host0"
    await as_alice(
        dash,
        ev.TurnFinished(
            hive="web",
            agent="alice",
            source="harness",
            turn_id=TURN,
            duration_ms=2300,
            cost_usd=0.0123,
            num_turns=3,
        ),
    )
    await term.locator(".line-end.outcome-finished").wait_for()
    await state_row.locator(".chip-turn", has_text="2.3 s · $0.012").wait_for()
    assert await state_row.locator("button[data-action=cancel-turn]").count() == 0
    # a fresh page backfills the same history from the stream
    again, _ = await signed_in(browser, dash, "/h/web/agents/alice")
    assert await again.locator("#term-alice .line").count() == await term.locator(".line").count()
    assert watched.page_errors == []


async def test_the_send_box_sends_and_runs_slash_commands(dash: Dash, browser: Browser) -> None:
    page, _ = await signed_in(browser, dash, "/h/web/agents/alice")
    box = page.locator("#say textarea")
    out = page.locator("#say-output")

    async def say(text: str) -> str:
        await box.fill(text)
        await box.press("Enter")
        await until(page, "!document.getElementById('say-output').hidden")
        result = await out.inner_text()
        await page.evaluate("document.getElementById('say-output').hidden = true")
        return result

    assert "/model <name>" in await say("/help")
    assert await say("hello alice") == "sent to alice"
    await wait_until(
        lambda: any(m["body"] == "hello alice" for m in received(dash, "alice")),
        what="alice to receive the message",
    )
    await page.locator("#agent-msgs-alice .msg", has_text="hello alice").wait_for()  # live inbox
    async with Events(dash.live) as events:
        assert "uses opus" in await say("/model opus")
        await wait_until(
            lambda: any(isinstance(e, ev.ModelChanged) for e in events.seen), what="model.changed"
        )
    await page.locator("#state-alice .chip-model", has_text="opus").wait_for()
    assert "no turn is running" in await say("/cancel")
    assert "unknown command /bogus" in await say("/bogus")
    assert "takes no argument" in await say("/clear now")
    # the stand-in agent has no harness to answer /clear: the refusal says so
    assert "does not answer" in await say("/clear")
    assert await say("//slash at the start") == "sent to alice"
    await wait_until(
        lambda: any(m["body"] == "/slash at the start" for m in received(dash, "alice")),
        what="the message that starts with a slash",
    )


async def test_an_agent_that_needs_a_login_gets_an_api_key_from_its_page(
    dash: Dash, browser: Browser
) -> None:
    page, _ = await signed_in(browser, dash, "/h/web/agents/alice")
    await as_alice(
        dash, ev.AgentNeedsLogin(hive="web", agent="alice", source="harness", reason="401")
    )
    await page.locator("#state-alice .badge", has_text="needs login").wait_for()
    assert await page.locator("#login").get_attribute("open") is None
    await page.locator("#state-alice a.chip-login").click()  # opens the login panel
    assert await page.locator("#login").get_attribute("open") is not None
    settings = dash.live.state_dir / "agents" / "alice" / "claude" / "settings.json"
    settings.write_text(json.dumps({"model": "sonnet", "env": {"OTHER": "1"}}))
    key = page.locator("#api-key")
    await key.fill("sk-ant-test-key-0123456789")
    await page.locator("#login-key button").click()
    await page.locator("#login-output", has_text="saved").wait_for()
    saved = json.loads(settings.read_text())
    assert saved == {
        "model": "sonnet",
        "env": {"OTHER": "1", "ANTHROPIC_API_KEY": "sk-ant-test-key-0123456789"},
    }
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    assert await key.input_value() == ""
    await wait_until(
        lambda: any(
            m["system_kind"] == "kick" and "credentials" in str(m["body"])
            for m in received(dash, "alice")
        ),
        what="alice kicked to try her new key",
    )
    await key.fill("not a key!")
    await page.locator("#login-key button").click()
    await page.locator("#login-output.bad", has_text="not an API key").wait_for()
    assert (
        json.loads(settings.read_text())["env"]["ANTHROPIC_API_KEY"] == "sk-ant-test-key-0123456789"
    )


async def test_an_unknown_agent_has_no_page(dash: Dash, browser: Browser) -> None:
    page, _ = await signed_in(browser, dash)
    response = await page.goto(dash.at("/h/web/agents/nobody"))
    assert response is not None
    assert response.status == 404
    response = await page.goto(dash.at("/h/web/agents/..%2F..%2Fetc"))
    assert response is not None
    assert response.status in (400, 404)


async def test_a_flood_of_steps_keeps_the_terminal_bounded_and_the_page_live(
    dash: Dash, browser: Browser
) -> None:
    page, watched = await signed_in(browser, dash, "/h/web/agents/alice")
    js = (await dash.live.as_agent("alice")).jetstream()
    flood = [step("text", f"line {i}") for i in range(2500)]
    for i in range(0, len(flood), 250):
        await asyncio.gather(*(publish_event(js, e) for e in flood[i : i + 250]))
    seq = await dash.caught_up(timeout=30)
    await reached(page, seq, timeout=30)
    lines = page.locator("#term-alice .line")
    assert await lines.count() == 2000  # the oldest went
    assert await lines.last.inner_text() == "line 2499"
    assert await lines.first.inner_text() == "line 500"
    assert watched.page_errors == []
