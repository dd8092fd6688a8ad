"""The dashboard in real headless Chromium against a real hive: what the operator clicks
reaches the bus, and what happens on the bus reaches the page without a reload."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from hyperhive import events as ev
from hyperhive.commands import verbs as v
from tests.harness.test_loop import Events
from tests.helpers import BIN, wait_until
from tests.web.browser import open_browser, reached, signed_in, until
from tests.web.conftest import Dash

pytestmark = [pytest.mark.nats, pytest.mark.browser]


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with open_browser(chromium) as b:
        yield b


def received(dash: Dash, agent: str) -> list[dict[str, object]]:
    path = dash.live.state_dir / "agents" / agent / "state" / "received.ndjson"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_an_approval_clicked_in_the_page_is_on_the_bus_and_its_card_goes(
    dash: Dash, browser: Browser
) -> None:
    page, watched = await signed_in(browser, dash)
    await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    async with Events(dash.live) as events:
        asked = await dash.live.agent_says("manager", v.RequestSpawn(name="carol"))
        card = page.locator(f"#a-{asked['approval_id']}")
        await card.wait_for()  # pushed in, no reload
        assert "spawn agent carol" in (await card.inner_text())
        await card.locator("input[name=note]").fill("welcome, carol")
        await card.locator("button[value=approve]").click()
        await wait_until(
            lambda: any(isinstance(e, ev.ApprovalApproved) for e in events.seen),
            what="approval.approved on the bus",
        )
        approved = next(e for e in events.seen if isinstance(e, ev.ApprovalApproved))
        assert approved.approval_id == asked["approval_id"]
        assert approved.by == "operator"
        assert approved.note == "welcome, carol"
        await card.wait_for(state="detached")
        # ... and carol, spawned by the approval, shows up in the agents list, live
        await page.locator("#agent-carol").wait_for()
    assert await page.evaluate("window.__sameDocument") is True
    assert watched.page_errors == []
    assert watched.console_errors == []


async def test_a_question_answered_in_the_page_reaches_the_askers_inbox(
    dash: Dash, browser: Browser
) -> None:
    page, watched = await signed_in(browser, dash)
    await dash.live.op(v.Send(to="alice", body="ask:600:ship the release?"))
    card = page.locator(".question", has_text="ship the release?")
    await card.wait_for()
    assert "alice" in await card.inner_text()
    ttl = card.locator(".ttl")
    await until(
        page, "document.querySelector('.question .ttl').textContent.startsWith('expires in')"
    )
    assert "min" in await ttl.inner_text()
    await card.locator("textarea[name=text]").fill("yes, after the tests pass")
    await card.locator("button[type=submit]").click()
    await card.wait_for(state="detached")
    await wait_until(
        lambda: any(
            m["system_kind"] == "operator_answered"
            and "yes, after the tests pass" in str(m["body"])
            for m in received(dash, "alice")
        ),
        what="alice to receive the operator's answer",
    )
    assert watched.page_errors == []


async def test_options_are_radio_or_checkboxes_and_the_answer_joins_them(
    dash: Dash, browser: Browser
) -> None:
    page, _ = await signed_in(browser, dash)
    alice = await dash.live.as_agent("alice")
    from hyperhive.bus.rpc import command

    await command(
        alice,
        dash.hive,
        "alice",
        v.AskOperator(question="which days?", options=["mon", "tue", "wed"], multi=True),
    )
    await command(
        alice, dash.hive, "alice", v.AskOperator(question="which one?", options=["a", "b"])
    )
    multi = page.locator(".question", has_text="which days?")
    single = page.locator(".question", has_text="which one?")
    await multi.wait_for()
    await single.wait_for()
    assert await multi.locator("input[type=checkbox]").count() == 3
    assert await single.locator("input[type=radio]").count() == 2
    await multi.locator("input[value=mon]").check()
    await multi.locator("input[value=wed]").check()
    await multi.locator("button[type=submit]").click()
    await multi.wait_for(state="detached")
    answered = [q for q in dash.live.core.state.questions.values() if q.question == "which days?"]
    assert answered[0].answer == "mon, wed"


async def test_an_event_published_by_another_process_appears_on_the_page(
    dash: Dash, browser: Browser
) -> None:
    page, _ = await signed_in(browser, dash)
    env = {
        "HYPERHIVE_STATE_DIR": dash.live.cfg.state_dir,
        "HYPERHIVE_HIVE": dash.hive,
        "HYPERHIVE_CONFIG": "/dev/null",
        "PATH": "/usr/bin:/bin",
    }
    proc = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "hivectl"), "send", "operator", "hello from another process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    inbox = page.locator("#operator-inbox .msg", has_text="hello from another process")
    await inbox.wait_for()
    feed_row = page.locator("#feed .ev", has_text="hello from another process")
    await feed_row.wait_for()
    assert await feed_row.get_attribute("data-kind") == "message.sent"


async def test_agent_actions_confirm_the_destructive_ones_and_reach_c0re(
    dash: Dash, browser: Browser
) -> None:
    page, watched = await signed_in(browser, dash)
    row = page.locator("#agent-bob")
    await row.locator("button[data-action=pause]").click()
    await row.locator("button[data-action=resume]").wait_for()  # the row came back paused
    assert "paused" in await row.locator(".badge").inner_text()
    assert dash.live.core.state.agents["bob"].paused
    await row.locator("button[data-action=resume]").click()
    await row.locator("button[data-action=pause]").wait_for()
    assert watched.dialogs == []  # pause and resume ask nothing
    await row.locator("button[data-action=stop]").click()
    await until(page, "document.querySelector('#agent-bob .badge').textContent === 'stopped'")
    assert watched.dialogs
    assert watched.dialogs[-1].startswith("confirm: Stop bob?")
    await row.locator("button[data-action=destroy]").click()
    await page.locator("#agent-bob").wait_for(state="detached")
    await page.locator("#kept-bob").wait_for()  # kept state, with revive and purge
    assert "Destroy bob?" in watched.dialogs[-1]
    await page.locator("#kept-bob button[data-action=revive]").click()
    await page.locator("#agent-bob").wait_for()
    assert await page.locator("#kept-bob").count() == 0


async def test_the_log_viewer_shows_the_agents_harness_log(dash: Dash, browser: Browser) -> None:
    log_path = dash.live.state_dir / "agents" / "alice" / "harness.log"
    await wait_until(log_path.exists, what="alice's harness.log")
    with log_path.open("a") as f:
        f.write("<b>a log line with markup</b>\n")
    page, _ = await signed_in(browser, dash)
    logs = page.locator("#agent-alice details.logs")
    await logs.locator("summary").click()
    pre = logs.locator("pre")
    await until(page, "document.querySelector('#agent-alice pre.log-lines').textContent.length > 0")
    assert "<b>a log line with markup</b>" in await pre.inner_text()
    assert await pre.locator("b").count() == 0  # text, not markup


async def test_a_live_update_reaches_the_page_for_every_event(dash: Dash, browser: Browser) -> None:
    page, _ = await signed_in(browser, dash)
    for i in range(5):
        await dash.live.agent_says("alice", v.SetStatus(text=f"step {i}"))
    seq = await dash.caught_up()
    await reached(page, seq)
    assert await page.locator("#agent-alice .status-text").inner_text() == "step 4"
    kinds = await page.eval_on_selector_all(
        "#feed .ev", "rows => rows.slice(0, 5).map(r => r.dataset.kind)"
    )
    assert kinds == ["agent.status_set"] * 5
