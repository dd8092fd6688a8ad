"""Driving headless Chromium from the tests (playwright with Debian's chromium).

    async with open_browser(chromium) as browser:
        page = await signed_in(browser, dash)          # the hive page, signed in
        await until(page, "window.hyperhive.lastSeq >= 42")

`Watched` records what the page said on its console, its errors, dialogs and CSP
violations, so a test can assert that nothing ran that should not have.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, BrowserContext, Dialog, Page, async_playwright

from tests.web.conftest import CHROMIUM_ARGS, Dash

# What the page reports of itself: CSP violations (none may happen) and every
# Notification created (the notification tests read them).
WATCH_SCRIPT = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
window.__notifications = [];
window.__focused = 0;
const realFocus = window.focus.bind(window);
window.focus = () => { window.__focused += 1; realFocus(); };
if ('Notification' in window) {
  const Real = window.Notification;
  class Spy extends Real {
    constructor(title, opts) { super(title, opts); window.__notifications.push({title, body: (opts || {}).body, self: this}); }
  }
  Object.defineProperty(Spy, 'permission', { get: () => Real.permission });
  Spy.requestPermission = (...a) => Real.requestPermission(...a);
  window.Notification = Spy;
}
"""


@dataclass
class Watched:
    """What a page did that a test may care about."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_console(msg: Any) -> None:
            if msg.type == "error" and "favicon" not in msg.text:
                self.console_errors.append(msg.text)

        async def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.accept()  # a destructive action's confirm: yes

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("dialog", on_dialog)


@contextlib.asynccontextmanager
async def open_browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def new_context(browser: Browser, **kw: Any) -> BrowserContext:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000}, **kw)
    await ctx.add_init_script(WATCH_SCRIPT)
    return ctx


async def signed_in(
    browser: Browser, dash: Dash, path: str | None = None, context: BrowserContext | None = None
) -> tuple[Page, Watched]:
    """A page of the dashboard, signed in through the link `hyperhive up` prints."""
    ctx = context or await new_context(browser)
    page = await ctx.new_page()
    watched = Watched()
    watched.attach(page)
    await page.goto(dash.at(f"/login#token={dash.token}"))
    await page.wait_for_url(re.compile(rf".*/h/{dash.hive}$"))
    if path is not None:
        await page.goto(dash.at(path))
    await live(page)
    return page, watched


async def live(page: Page) -> None:
    """Wait until the page's live stream is open (its first status message arrived)."""
    await until(page, "window.hyperhive && window.hyperhive.connected === true")


async def until(page: Page, expression: str, timeout: float = 10.0) -> Any:
    """Wait until a JavaScript expression is truthy in the page; its value.

    Given as a function, so playwright compiles it itself: the page's CSP
    (no 'unsafe-eval') refuses a bare string expression, as it should.
    """
    handle = await page.wait_for_function(f"() => ({expression})", timeout=timeout * 1000)
    return await handle.json_value()


async def seq_in_page(page: Page) -> int:
    return int(await page.evaluate("window.hyperhive.lastSeq"))


async def reached(page: Page, seq: int, timeout: float = 10.0) -> None:
    """Wait until the page has applied every update up to `seq`."""
    await until(page, f"window.hyperhive.lastSeq >= {seq}", timeout)
