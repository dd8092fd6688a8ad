"""Each section of the hive page in Chromium: spawn and compose forms, cancelling a question,
an apply_commit's diff, the event filter, and the banners (a port collision, NATS lost)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from hyperhive.commands import verbs as v
from hyperhive.core.ports import agent_port
from tests.core.conftest import live_hive
from tests.helpers import wait_until
from tests.web.browser import live, new_context, open_browser, reached, signed_in, until
from tests.web.conftest import Dash, dashboard_before_its_hive, dashboard_for, publish_first_agent
from tests.web.test_browser_actions import received
from tests.web.test_browser_live import ask

pytestmark = [pytest.mark.nats, pytest.mark.browser]


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with open_browser(chromium) as b:
        yield b


async def test_spawn_and_compose_forms(dash: Dash, browser: Browser) -> None:
    page, _ = await signed_in(browser, dash)
    form = page.locator("#spawn-form")
    await form.locator("input[name=name]").fill("gina")
    await form.locator("input[name=model]").fill("haiku")
    await form.locator("button").click()
    row = page.locator("#agent-gina")
    await row.wait_for()
    await row.locator(".chip-model", has_text="haiku").wait_for()
    await page.locator("#toast", has_text="spawned gina").wait_for()
    assert await form.locator("input[name=name]").input_value() == ""  # the form was reset
    await form.locator("input[name=name]").fill("manager")
    await form.locator("button").click()
    await page.locator("#toast.bad", has_text="already exists").wait_for()

    compose = page.locator("#compose textarea")
    await compose.fill("@alice please look at the logs")
    await compose.press("Enter")
    await page.locator("#toast", has_text="sent to alice").wait_for()
    assert await compose.input_value() == ""
    await wait_until(
        lambda: any(m["body"] == "please look at the logs" for m in received(dash, "alice")),
        what="alice to receive the composed message",
    )
    await compose.fill("no recipient")
    await compose.press("Enter")
    await page.locator("#toast.bad", has_text="start with @<agent>").wait_for()
    assert await compose.input_value() == "no recipient"  # kept, to fix


async def test_a_question_can_be_cancelled_and_the_asker_is_told(
    dash: Dash, browser: Browser
) -> None:
    qid = await ask(dash, "bob", "should I?")
    page, watched = await signed_in(browser, dash)
    card = page.locator(f"#q-{qid}")
    await card.locator("button.cancel-question").click()
    await card.wait_for(state="detached")
    assert "Withdraw this question?" in watched.dialogs[-1]
    await wait_until(  # the page may see the event before c0re's own fold does
        lambda: dash.live.core.state.questions[qid].status == "cancelled",
        what="c0re to record the question cancelled",
    )
    await wait_until(
        lambda: any("[cancelled]" in str(m["body"]) for m in received(dash, "bob")),
        what="bob to be told",
    )


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "m",
        "GIT_AUTHOR_EMAIL": "m@x",
        "GIT_COMMITTER_NAME": "m",
        "GIT_COMMITTER_EMAIL": "m@x",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    ).stdout


async def test_an_apply_commit_shows_its_diff_before_it_is_approved(
    dash: Dash, browser: Browser
) -> None:
    repo = dash.live.state_dir / "agents" / "alice" / "config" / "proposed"
    (repo / "agent.nix").write_text(
        "{ pkgs, ... }:\n{\n  environment.systemPackages = [ pkgs.ripgrep ];\n}\n"
    )
    git(repo, "commit", "-qam", "ripgrep for alice")
    ref = git(repo, "rev-parse", "HEAD").strip()
    asked = await dash.live.agent_says(
        "manager", v.RequestApplyCommit(agent="alice", commit_ref=ref)
    )
    page, _ = await signed_in(browser, dash)
    card = page.locator(f"#a-{asked['approval_id']}")
    await card.locator("details.diff summary").click()
    diff = card.locator("pre.diff-lines")
    await until(page, "document.querySelector('pre.diff-lines').textContent.includes('ripgrep')")
    text = await diff.inner_text()
    assert "+  environment.systemPackages = [ pkgs.ripgrep ];" in text
    assert text.startswith("--- applied/agent.nix")
    # an update elsewhere does not wipe the diff the page loaded
    await dash.live.agent_says("alice", v.SetStatus(text="waiting for ripgrep"))
    await reached(page, await dash.caught_up())
    assert await diff.inner_text() == text


async def test_the_event_feed_filters_by_agent_and_kind(dash: Dash, browser: Browser) -> None:
    await dash.live.agent_says("alice", v.SetStatus(text="a1"))
    await dash.live.agent_says("bob", v.SetStatus(text="b1"))
    page, _ = await signed_in(browser, dash)
    await page.locator("#feed-filter input[name=agent]").fill("alice")
    await page.locator("#feed-filter input[name=kind]").fill("agent.status_*")
    await until(
        page,
        "[...document.querySelectorAll('#feed .ev')].every(r => r.dataset.agent === 'alice')"
        " && document.querySelectorAll('#feed .ev').length === 1",
    )
    await dash.live.agent_says("bob", v.SetStatus(text="b2"))  # live, not matching: hidden
    await dash.live.agent_says("alice", v.SetStatus(text="a2"))  # live, matching: shown
    await reached(page, await dash.caught_up())
    visible = await page.eval_on_selector_all(
        "#feed .ev:not([hidden])", "rs => rs.map(r => r.querySelector('.summary').textContent)"
    )
    assert visible == ["status_text=a2", "status_text=a1"]
    await page.locator("#feed-filter input[name=kind]").fill("turn.[")
    await page.locator("#feed-filter input[name=kind]").fill("")
    await page.locator("#feed-filter input[name=agent]").fill("")
    await until(page, "document.querySelectorAll('#feed .ev[data-agent=bob]').length >= 2")


async def test_the_banners_for_a_port_collision_and_for_a_lost_nats(
    tmp_path: Path, browser: Browser
) -> None:
    assert agent_port("agao") == agent_port("aghx")  # two declared agents on one port
    async with (
        live_hive(tmp_path / "state", "web", agents=("agao", "aghx")) as live,
        dashboard_for(live) as dash,
    ):
        page, _ = await signed_in(browser, dash)
        ports = page.locator("#banner-ports")
        assert await ports.is_visible()
        assert "agao, aghx" in await ports.inner_text()
        nats = page.locator("#banner-nats")
        assert not await nats.is_visible()
        live.server.stop()
        await nats.wait_for(state="visible", timeout=15_000)
        live.server.start()
        await nats.wait_for(state="hidden", timeout=30_000)
        await live.op(v.Destroy(name="aghx"), timeout=60)  # the stream goes on after the outage
        await ports.wait_for(state="hidden")
        await page.locator("#agent-aghx").wait_for(state="detached")


async def test_a_hive_with_no_stream_yet_says_so_and_the_page_goes_live_when_it_appears(
    tmp_path: Path, browser: Browser
) -> None:
    """The dashboard started before anything was published: the page is there at once with
    a banner saying why it is empty; the hive's first events arrive without a reload."""
    async with dashboard_before_its_hive(tmp_path / "state") as (cfg, _, url, token):
        page = await (await new_context(browser)).new_page()
        await page.goto(url.rstrip("/") + f"/login#token={token}")
        await page.wait_for_url(re.compile(r".*/h/web$"))
        await live(page)
        banner = page.locator("#banner-hive")
        assert await banner.is_visible()
        assert "HIVE_WEB" in await banner.inner_text()

        await publish_first_agent(cfg)
        await page.locator("#agent-alice").wait_for(state="visible", timeout=30_000)
        await banner.wait_for(state="hidden")
