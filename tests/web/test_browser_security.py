"""Agents are untrusted: whatever they put in the hive reaches the page as text. And the
dashboard refuses what a hostile page or a hostile name would have it do."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest
from playwright.async_api import Browser, Page

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.publish import publish_event
from hyperhive.bus.rpc import command
from hyperhive.commands import verbs as v
from tests.web.browser import open_browser, reached, signed_in
from tests.web.conftest import Dash

pytestmark = [pytest.mark.nats, pytest.mark.browser]

# Each payload would set window.__pwned if it ever ran.
IMG = "<img src=x onerror=\"window.__pwned=(window.__pwned||[]).concat('img')\">"
SCRIPT_END = "</script><script>window.__pwned=(window.__pwned||[]).concat('script')</script>"
JS_LINK = "javascript:window.__pwned=(window.__pwned||[]).concat('link')"
SVG = "<svg onload=\"window.__pwned=(window.__pwned||[]).concat('svg')\"></svg>"
ANCHOR = f'<a href="{JS_LINK}">click me</a>'


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with open_browser(chromium) as b:
        yield b


async def plant_everywhere(dash: Dash) -> None:
    """Markup and script in every string an agent controls."""
    hive = dash.hive
    alice = await dash.live.as_agent("alice")
    await command(alice, hive, "alice", v.SetStatus(text=f"{IMG} {SVG}"))
    await command(
        alice, hive, "alice", v.Send(to="operator", body=f"{SCRIPT_END} {ANCHOR} {JS_LINK}")
    )
    await command(
        alice,
        hive,
        "alice",
        v.AskOperator(question=f"{IMG}{SCRIPT_END}", options=[SVG, JS_LINK, ANCHOR]),
    )
    js = alice.jetstream()
    turn = "01J0000000000000000000TURN"
    for e in (
        ev.TurnStarted(
            hive=hive, agent="alice", source="harness", turn_id=turn, model=IMG, trigger="message"
        ),
        ev.TurnStep(
            hive=hive,
            agent="alice",
            source="harness",
            turn_id=turn,
            step="text",
            excerpt=SCRIPT_END,
        ),
        ev.TurnStep(
            hive=hive,
            agent="alice",
            source="harness",
            turn_id=turn,
            step="tool_use",
            tool=IMG,
            excerpt=ANCHOR,
        ),
        ev.TurnStep(
            hive=hive,
            agent="alice",
            source="harness",
            turn_id=turn,
            step="tool_result",
            excerpt="\n".join([SVG, *(f"line {i} {IMG}" for i in range(8))]),
        ),
        ev.TurnFailed(hive=hive, agent="alice", source="harness", turn_id=turn, error=SCRIPT_END),
    ):
        await publish_event(js, e)
    # An event whose own `agent` is hostile (malformed: its subject says alice), and an
    # event of a kind this dashboard does not know, full of markup.
    admin = dash.live.admin.jetstream()
    hostile = {
        "id": "01J0000000000000000000BAD1",
        "ts": "2026-01-01T00:00:00Z",
        "hive": hive,
        "agent": IMG,
        "kind": "agent.status_set",
        "source": "harness",
        "status_text": SVG,
    }
    await admin.publish(
        subjects.event_subject(hive, "alice", "agent.status_set"), msgspec.json.encode(hostile)
    )
    unknown = {
        **hostile,
        "id": "01J0000000000000000000BAD2",
        "agent": "alice",
        "kind": "agent.surprise",
        "payload": ANCHOR,
    }
    await admin.publish(
        subjects.event_subject(hive, "alice", "agent.surprise"), msgspec.json.encode(unknown)
    )


async def nothing_ran(page: Page) -> None:
    assert await page.evaluate("window.__pwned === undefined")
    assert (
        await page.evaluate(
            "document.querySelectorAll('img[src=x], svg, script:not([src])').length"
        )
        == 0
    )
    assert (
        await page.evaluate("document.querySelectorAll('a[href^=\"javascript:\" i]').length") == 0
    )
    assert await page.evaluate("window.__csp") == []  # nothing even tried to run


async def test_markup_and_script_from_agents_reach_the_pages_as_text(
    dash: Dash, browser: Browser
) -> None:
    live_page, watched = await signed_in(browser, dash)  # open while they arrive: live updates
    await plant_everywhere(dash)
    seq = await dash.caught_up()
    await reached(live_page, seq)
    fresh, watched_fresh = await signed_in(browser, dash)  # and rendered into a fresh page
    agent_page, watched_agent = await signed_in(browser, dash, "/h/web/agents/alice")
    for page in (live_page, fresh, agent_page):
        await nothing_ran(page)
    for page in (live_page, fresh):
        assert IMG in await page.locator("#agent-alice .status-text").inner_text()
        msg = page.locator("#operator-inbox .msg .body").first
        assert JS_LINK in await msg.inner_text()
        assert "</script>" in await msg.inner_text()
        card = page.locator(".question", has_text="window.__pwned")
        assert IMG in await card.locator(".q-text").inner_text()
        assert [
            o
            for o in await card.locator("input[name=option]").evaluate_all(
                "is => is.map(i => i.value)"
            )
        ] == [SVG, JS_LINK, ANCHOR]
        feed = await page.locator("#feed").inner_text()
        assert "malformed" in feed
        assert "agent.surprise" in feed
    term = agent_page.locator("#term-alice")
    text = await term.inner_text()
    assert SCRIPT_END in text
    assert ANCHOR in text
    assert IMG in text
    assert await term.locator("details").count() == 1  # the long result, collapsed
    for w in (watched, watched_fresh, watched_agent):
        assert w.dialogs == []
        assert w.page_errors == []


async def test_every_page_sends_a_csp_without_inline_script(dash: Dash, browser: Browser) -> None:
    page, _ = await signed_in(browser, dash)
    for path in ("/login", "/h/web", "/h/web/agents/alice", "/static/hive.js", "/api/h/web/agents"):
        response = await page.request.get(dash.at(path))
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    # the policy is really in force: an inline script added to the page does not run
    ran = await page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__inline = 1'; document.body.append(s);
                   return window.__inline === 1; }"""
    )
    assert ran is False


async def test_purge_of_dotdot_and_other_hostile_names_is_refused(
    dash: Dash, browser: Browser
) -> None:
    page, _ = await signed_in(browser, dash)
    state = dash.live.state_dir
    outside = state.parent / "do-not-delete"
    outside.mkdir()
    (outside / "precious").write_text("still here")
    for name in (
        "%2E%2E",
        "..%2F..",
        "%2E%2E%2F%2E%2E",
        "*",
        "%3E",
        "alice%2F..",
        "a%00b",
        "ALICE",
    ):
        result = await page.evaluate(
            """async (name) => {
                const r = await fetch(`/api/h/web/agents/${name}/purge`, {
                  method: 'POST',
                  headers: {'content-type': 'application/json',
                            'x-csrf-token': document.querySelector('meta[name=csrf-token]').content},
                  body: '{}'});
                return {status: r.status, body: await r.json()};
            }""",
            name,
        )
        assert result["status"] in (400, 404), (name, result)
        assert result["body"]["ok"] is False
        assert "invalid agent name" in result["body"]["error"] or result["status"] == 404, result
    assert (outside / "precious").read_text() == "still here"
    assert (state / "agents" / "alice").is_dir()
    assert (state / "agents" / "bob").is_dir()
    assert set(dash.live.core.state.agents) == {"manager", "alice", "bob"}


class Evil(BaseHTTPRequestHandler):
    """A page that posts a form to `target` as soon as it loads."""

    target = ""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = (
            "<!doctype html><title>evil</title>"
            f'<form id=f method=post action="{Evil.target}">'
            '<input name="note" value="pwned"></form>'
            "<script>document.getElementById('f').submit()</script>"
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def evil_site(target: str) -> Iterator[str]:
    """Another origin (same host, another port) whose page posts to the dashboard."""
    Evil.target = target
    server = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_forged_cross_site_post_is_refused(dash: Dash, browser: Browser) -> None:
    page, _ = await signed_in(browser, dash)  # the operator is signed in...
    with evil_site(dash.at("/api/h/web/agents/alice/destroy")) as url:
        other = await page.context.new_page()  # ...and opens a hostile page in the same browser
        async with other.expect_response(lambda r: "/destroy" in r.url) as forged:
            await other.goto(url)
        response = await forged.value
        assert response.status == 403
        assert "another site" in (await response.json())["error"]
    assert "alice" in dash.live.core.state.agents  # nothing was destroyed
