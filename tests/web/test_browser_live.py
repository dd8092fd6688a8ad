"""Live updates in Chromium: they never take what the operator is doing away from them,
and the browser notifications fire for what is new, as the operator asked."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from hyperhive.bus.rpc import command
from hyperhive.commands import verbs as v
from tests.helpers import wait_until
from tests.web.browser import new_context, open_browser, reached, signed_in, until
from tests.web.conftest import Dash

pytestmark = [pytest.mark.nats, pytest.mark.browser]


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with open_browser(chromium) as b:
        yield b


async def ask(dash: Dash, agent: str, question: str, **kw: object) -> str:
    nc = await dash.live.as_agent(agent)
    result = await command(nc, dash.hive, agent, v.AskOperator(question=question, **kw))  # type: ignore[arg-type]
    return str(result["question_id"])


async def test_typing_focus_open_details_and_scroll_survive_ten_live_updates(
    dash: Dash, browser: Browser
) -> None:
    qid = await ask(dash, "alice", "what is the plan?", options=["ship", "wait"])
    ctx = await browser.new_context(viewport={"width": 1200, "height": 500})
    page, watched = await signed_in(browser, dash, context=ctx)
    card = page.locator(f"#q-{qid}")
    box = card.locator("textarea[name=text]")
    await page.locator("#agent-bob details.logs summary").click()  # open bob's logs
    await card.locator("input[value=ship]").check()
    await box.click()
    await box.type("half of my ans")
    await page.evaluate("window.scrollBy(0, 40)")
    scroll = await page.evaluate("window.scrollY")
    assert scroll > 0, "the page must scroll for this test to mean anything"
    before = await page.evaluate("window.hyperhive.lastSeq")

    # ten updates that touch the page all around the half-typed answer
    for i in range(3):
        await dash.live.agent_says("alice", v.SetStatus(text=f"thinking about it ({i})"))
    await ask(dash, "bob", "another question?")
    await dash.live.agent_says("manager", v.RequestSpawn(name="dora"))
    await dash.live.op(v.Send(to="operator", body="a note for you"))
    await dash.live.op(v.Pause(name="bob"))
    await dash.live.op(v.Resume(name="bob"))
    await dash.live.op(v.Kick(name="alice", reason="nudge"))
    await dash.live.agent_says("bob", v.SetStatus(text="busy"))
    seq = await dash.caught_up()
    await reached(page, seq)
    applied = await page.evaluate(f"window.hyperhive.applied.filter(a => a[0] > {before}).length")
    assert applied >= 10
    # and a resync: every section re-rendered and morphed in, as after a lost connection
    await page.evaluate(
        """async () => {
            const r = await fetch(`/ui/h/${window.hyperhive.hive}/snapshot`);
            for (const op of (await r.json()).ops) window.hyperhive.apply(op);
        }"""
    )

    assert await box.input_value() == "half of my ans"
    assert await page.evaluate("document.activeElement.name") == "text"
    assert await page.evaluate(f"document.activeElement.closest('.question').id === 'q-{qid}'")
    assert await page.evaluate("document.activeElement.selectionStart") == len("half of my ans")
    assert await card.locator("input[value=ship]").is_checked()
    assert await page.locator("#agent-bob details.logs").get_attribute("open") is not None
    assert await page.evaluate("window.scrollY") == scroll
    assert await page.locator("#agent-alice .status-text").inner_text() == "thinking about it (2)"
    # the operator goes on typing where they left off, and answers
    await page.keyboard.type("wer")
    await card.locator("button[type=submit]").click()
    await card.wait_for(state="detached")
    q = dash.live.core.state.questions[qid]
    assert q.answer == "ship\nhalf of my answer"
    assert watched.page_errors == []


async def test_notifications_ask_first_fire_for_new_things_only_mute_and_focus(
    dash: Dash, browser: Browser
) -> None:
    await ask(dash, "alice", "already here when the page loads")
    ctx = await new_context(browser)
    page, _ = await signed_in(browser, dash, context=ctx)
    enable = page.locator("#notify-enable")
    mute = page.locator("#notify-mute")
    assert await enable.is_visible()
    assert await page.evaluate("Notification.permission") == "default"
    await ctx.grant_permissions(["notifications"], origin=dash.url.rstrip("/"))  # "Allow"
    await enable.click()
    await mute.wait_for()
    assert not await enable.is_visible()
    assert await page.evaluate("window.__notifications.length") == 0  # nothing old

    await ask(dash, "alice", "is this new?")
    await until(page, "window.__notifications.length === 1")
    first = await page.evaluate(
        "({t: window.__notifications[0].title, b: window.__notifications[0].body})"
    )
    assert first == {"t": "alice asks", "b": "is this new?"}
    await page.evaluate("window.__notifications[0].self.onclick()")
    assert await page.evaluate("window.__focused") == 1  # a click brings the tab forward

    await mute.click()
    assert await mute.inner_text() == "unmute"
    await dash.live.agent_says("manager", v.RequestSpawn(name="eve"))
    await page.locator(".approval", has_text="spawn agent eve").wait_for()
    await page.reload()  # muted is remembered
    await page.locator("#notify-mute", has_text="unmute").wait_for()
    await dash.live.op(v.Send(to="operator", body="while muted"))
    await page.locator("#operator-inbox .msg", has_text="while muted").wait_for()
    assert await page.evaluate("window.__notifications.length") == 0

    await page.locator("#notify-mute").click()  # unmuted again
    os.kill(_pid_of(dash, "bob"), signal.SIGKILL)
    await until(page, "window.__notifications.some(n => n.title === 'bob crashed')")
    await dash.live.op(v.Send(to="operator", body="and one more"))
    await until(page, "window.__notifications.some(n => n.title === 'message from operator')")


def _pid_of(dash: Dash, agent: str) -> int:
    backend = dash.live.core.backend
    children = getattr(backend, "_children", {})
    child = children.get(agent)
    assert child is not None, f"{agent} is not a running process"
    return int(child.proc.pid)


async def test_a_page_that_lost_its_stream_catches_up_with_what_it_missed(
    dash: Dash, browser: Browser
) -> None:
    page, _ = await signed_in(browser, dash)
    await page.evaluate("window.__sameDocument = true")
    view = dash.hub.view(dash.hive)
    listeners = len(view.listeners)
    assert listeners >= 1
    for listener in list(view.listeners):  # the dashboard drops the browser's stream
        view.unlisten(listener)
        listener.queue.put_nowait(None)
    for i in range(3):
        await dash.live.agent_says("alice", v.SetStatus(text=f"missed {i}"))
    seq = await dash.caught_up()
    await reached(page, seq, timeout=15)
    assert await page.locator("#agent-alice .status-text").inner_text() == "missed 2"
    assert await page.evaluate("window.__sameDocument") is True
    await wait_until(lambda: len(view.listeners) >= 1, what="the page to listen again")
