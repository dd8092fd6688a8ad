"""The agent page with the real Claude Code CLI: a harness that has no credentials asks for
a login, gets an API key from the page and works; its turns play live in the terminal;
/compact and /clear reach its session; a Claude account sign-in runs the real
`claude auth login` (offline, up to the token exchange)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from playwright.async_api import Browser

from hyperhive import events as ev
from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.harness.claude import CliRunner
from hyperhive.harness.service import Harness
from tests.claude_tools import offline_env
from tests.core.conftest import LiveHive, live_hive
from tests.harness.fake_anthropic import FakeAnthropic, Text, ToolUse
from tests.harness.test_loop import Events
from tests.helpers import wait_until
from tests.web.browser import open_browser, signed_in, until
from tests.web.conftest import Dash, dashboard_for

pytestmark = [pytest.mark.nats, pytest.mark.browser, pytest.mark.claude]

KEY = "sk-ant-api03-from-the-dashboard-0123456789"


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with open_browser(chromium) as b:
        yield b


@contextlib.contextmanager
def offline(fake: FakeAnthropic, home: Path) -> Iterator[None]:
    """This process's environment as the harness's claude should see it: the fake API,
    no network, and no API key of its own (the agent's settings must bring one)."""
    mp = pytest.MonkeyPatch()
    for key, value in offline_env(fake.base_url, home).items():
        if key not in ("CLAUDE_CONFIG_DIR", "ANTHROPIC_API_KEY"):
            mp.setenv(key, value)
    mp.delenv("ANTHROPIC_API_KEY", raising=False)
    mp.setenv("CLAUDE_CODE_MAX_RETRIES", "0")
    try:
        yield
    finally:
        mp.undo()


@contextlib.asynccontextmanager
async def hive_with_claude(
    tmp: Path, claude: Path, fake: FakeAnthropic
) -> AsyncIterator[tuple[LiveHive, Dash]]:
    async with live_hive(tmp / "state", "web", agents=("alice",), backend=FakeBackend()) as live:
        live.cfg = msgspec.structs.replace(live.cfg, claude=str(claude))
        with offline(fake, tmp / "home"):
            async with dashboard_for(live) as dash:
                harness = Harness(
                    live.cfg, await live.as_agent("alice"), "alice", CliRunner(str(claude))
                )
                task = asyncio.create_task(harness.run())
                try:
                    yield live, dash
                finally:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task


def answers(body: dict[str, Any]) -> Any:
    text = FakeAnthropic.last_user_text(body)
    results = FakeAnthropic.tool_results(body)
    if "say you are ready" in text and not results:
        return ToolUse("mcp__hyperhive__set_status", {"text": "ready for work"})
    if results:
        return Text("status set; standing by")
    return Text("hello from alice")


async def test_an_agent_without_credentials_gets_a_key_from_its_page_and_works(
    tmp_path: Path, claude_bin: Path, fake_api: FakeAnthropic, browser: Browser
) -> None:
    fake_api.require_api_key = KEY
    fake_api.handler = answers
    async with (
        hive_with_claude(tmp_path, claude_bin, fake_api) as (live, dash),
        Events(live) as events,
    ):
        page, watched = await signed_in(browser, dash, "/h/web/agents/alice")
        badge = page.locator("#state-alice .badge")
        await page.locator("#state-alice .badge", has_text="needs login").wait_for(timeout=60_000)
        assert any(isinstance(e, ev.AgentNeedsLogin) for e in events.seen)
        assert fake_api.main_requests() == []  # no key: it never got as far as the API

        await page.locator("#state-alice a.chip-login").click()
        await page.locator("#api-key").fill(KEY)
        await page.locator("#login-key button").click()
        await page.locator("#login-output", has_text="saved").wait_for()
        term = page.locator("#term-alice")
        await term.locator(".line-text", has_text="hello from alice").wait_for(timeout=60_000)
        await term.locator(".line-end.outcome-finished").last.wait_for()
        await until(
            page, "!document.querySelector('#state-alice .badge').textContent.includes('login')"
        )
        settings = json.loads(
            (live.state_dir / "agents" / "alice" / "claude" / "settings.json").read_text()
        )
        assert settings["env"]["ANTHROPIC_API_KEY"] == KEY

        # a turn with a tool call, live in the terminal and in the state row
        box = page.locator("#say textarea")
        await box.fill("please say you are ready")
        await box.press("Enter")
        await term.locator(".line-tool_use", has_text="set_status").wait_for(timeout=60_000)
        await page.locator("#state-alice .status-text", has_text="ready for work").wait_for()
        await term.locator(".line-text", has_text="standing by").wait_for(timeout=60_000)
        await wait_until(
            lambda: live.core.state.agents["alice"].waiting, what="alice back in her inbox"
        )
        finished = len([e for e in events.seen if isinstance(e, ev.TurnFinished)])

        # /compact: a turn of its own on the same session; /clear: the next turn starts afresh
        await box.fill("/compact")
        await box.press("Enter")
        await page.locator("#say-output", has_text="compacting").wait_for()
        await wait_until(
            lambda: len([e for e in events.seen if isinstance(e, ev.TurnFinished)]) > finished,
            timeout=60,
            what="the compaction turn",
        )
        assert fake_api.of_kind("compact"), "the CLI never sent a compaction request"
        started = [e for e in events.seen if isinstance(e, ev.TurnStarted)]
        assert started[-1].trigger == "operator"
        await box.fill("/clear")
        await box.press("Enter")
        await page.locator("#say-output", has_text="new session").wait_for()
        await wait_until(lambda: live.core.state.agents["alice"].waiting, what="alice idle")
        assert await term.locator(".line").count() == 0  # the page's terminal is cleared too
        before = len(fake_api.main_requests())
        await box.fill("one more thing")
        await box.press("Enter")
        await term.locator(".line-text", has_text="hello from alice").wait_for(timeout=60_000)
        fresh = fake_api.main_requests()[before]
        said = " ".join(FakeAnthropic.user_texts(fresh))
        assert "one more thing" in said
        assert "say you are ready" not in said  # no history: a new session
        assert await badge.inner_text() != "needs login"
        assert watched.page_errors == []


async def test_a_claude_account_sign_in_runs_claude_auth_login_for_the_agent(
    tmp_path: Path, claude_bin: Path, fake_api: FakeAnthropic, browser: Browser
) -> None:
    async with hive_with_claude(tmp_path, claude_bin, fake_api) as (_live, dash):
        page, _ = await signed_in(browser, dash, "/h/web/agents/alice")
        await page.locator("#login summary").click()
        await page.locator("#login-start").click()
        link = page.locator("#login-url")
        await link.wait_for(timeout=30_000)
        href = await link.get_attribute("href")
        assert href is not None
        assert href.startswith("https://claude.com/")
        assert "oauth" in href
        assert await link.inner_text() == "claude.com sign-in page"
        assert await link.get_attribute("rel") == "noopener noreferrer"
        await page.locator("#login-code input").fill("abc123#state456")
        await page.locator("#login-code button").click()
        out = page.locator("#login-output.bad")
        await out.wait_for(timeout=60_000)
        assert "Login failed" in await out.inner_text()  # offline: the exchange cannot happen
        bad = await page.evaluate(
            """async () => {
                const r = await fetch('/api/h/web/agents/alice/login/code', {method: 'POST',
                  headers: {'content-type': 'application/json',
                            'x-csrf-token': document.querySelector('meta[name=csrf-token]').content},
                  body: JSON.stringify({code: 'abc'})});
                return [r.status, (await r.json()).error];
            }"""
        )
        assert bad[0] == 409
        assert "no sign-in of alice is waiting" in bad[1]
