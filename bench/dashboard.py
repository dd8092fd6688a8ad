"""The dashboard's figures: event published -> rendered in Chromium, first render and RSS
with 100 agents and a long log.

On an embedded nats-server of its own, a hive of 100 agents is written into the stream
(a busy hive's small events: turns, steps, messages, statuses) up to N events (1,000,000
by default), the projector catches the event log and c0re's state tables up, and
`hyperhive dashboard` is started as a process of its own. Then, in headless Chromium
(Debian's, driven by playwright):

* cold start: the process started -> its URL printed -> the hive page rendered;
* first render of the hive page on the running dashboard (navigation -> DOMContentLoaded,
  server-rendered: every section is in the HTML), and its server time (TTFB);
* the dashboard's RSS after the first render and after the latency run (VmRSS, VmHWM);
* 200 `agent.status_set` events published, paced, each timed from just before its
  publish to the moment the page applied its update (`window.hyperhive.applied`, the
  page's own high-resolution clock; one machine, one wall clock). Beside it, the raw
  wall: the very same events timed to a plain core-NATS subscriber in this process.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from bench import core
from bench.common import Rate, percentile
from bench.table import Row, Target, fmt_rate, render, render_targets
from hyperhive import events as ev
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.publish import publish_event
from hyperhive.bus.server import EmbeddedServer
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig, StreamConfig
from hyperhive.statedir import StateDir
from hyperhive.web import tokens
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS  # the browser as the tests run it

HIVE = "bench-dash"
AGENTS = 100
LATENCY_EVENTS = 200
RATE = 50.0  # events per second in the latency run
TARGET_LOG = 1_000_000


def say(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class DashPlan:
    log_events: int
    latency_events: int = LATENCY_EVENTS


def dash_plan(quick: bool, log_events: int | None) -> DashPlan:
    n = log_events if log_events is not None else (50_000 if quick else TARGET_LOG)
    return DashPlan(log_events=n, latency_events=100 if quick else LATENCY_EVENTS)


@dataclass
class DashResults:
    ms: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None

    def p(self, key: str, pct: float) -> float:
        xs = self.ms.get(key) or [float("nan")]
        return percentile(sorted(xs), pct)


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def _env(state: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERHIVE_")}
    env.update(
        HYPERHIVE_STATE_DIR=str(state),
        HYPERHIVE_HIVE=HIVE,
        HYPERHIVE_NATS_URL=url,
        HYPERHIVE_CONFIG=os.devnull,
        HYPERHIVE_DASHBOARD_PORT="0",
        HYPERHIVE_LOG_LEVEL="warning",
    )
    return env


async def _read_url(proc: asyncio.subprocess.Process, timeout: float = 120) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError("the dashboard exited before printing its URL")
            found = re.search(r"dashboard\s+(http://\S+)", line)
            if found:
                return found.group(1)


async def _raw_receiver(nc2: Client) -> tuple[dict[str, float], Any]:
    """A plain core-NATS subscriber on every status event of the hive: the wall under the
    page, timed on the very events the page renders."""
    got: dict[str, float] = {}

    async def on_msg(msg: Msg) -> None:
        got[(msg.headers or {}).get("Nats-Msg-Id", "")] = time.time()

    sub = await nc2.subscribe(subjects.event_pattern(HIVE, "*", "agent.status_set"), cb=on_msg)
    await nc2.flush()
    return got, sub


async def run(tmp: Path, p: DashPlan) -> DashResults:
    res = DashResults()
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once, before anything runs)
        res.skipped = f"chromium not found at {CHROMIUM}: apt-get install chromium"
        return res
    from playwright.async_api import async_playwright

    state = tmp / "dash-state"
    server = EmbeddedServer(state, hive=HIVE)
    server.start()
    cfg = HiveConfig(hive=HIVE, state_dir=str(state), stream=StreamConfig(max_bytes=-1))
    nc = await connect(resolve_endpoint(cfg, auth.ADMIN), "bench-dash")
    nc2 = await connect(resolve_endpoint(cfg, auth.ADMIN), "bench-dash-raw")
    proc: asyncio.subprocess.Process | None = None
    try:
        await ensure_stream(nc.jetstream(), HIVE, cfg.stream)
        say(f"dashboard: writing a hive of {AGENTS} agents, {p.log_events:,} events")
        fill = await core.fill_log(nc, core.WorkerLog(HIVE, AGENTS), p.log_events)
        res.rates["fill"] = fill
        say(f"  published at {fmt_rate(fill.per_s)}; projecting (log + state tables)")
        proj = await core.project_log(cfg, nc)
        res.rates["project"] = proj
        say(f"  projected at {fmt_rate(proj.per_s)}")
        token = tokens.mint(StateDir.at(state), sign_out=True)

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()  # the browser is up: the clock is the dashboard's
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "hyperhive"),
                "dashboard",
                env=_env(state, server.url),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            url = await _read_url(proc)
            res.ms["listening"] = [(time.perf_counter() - t0) * 1000]
            await page.goto(f"{url}login#token={token}")
            await page.wait_for_url(re.compile(rf".*/h/{HIVE}$"))
            res.ms["cold"] = [(time.perf_counter() - t0) * 1000]
            await page.wait_for_function("() => window.hyperhive && window.hyperhive.connected")
            res.values["agents_shown"] = await page.locator(".agent").count()
            firsts, ttfbs = [], []
            for _ in range(5):
                await page.goto(f"{url}h/{HIVE}")
                nav: dict[str, Any] = await page.evaluate(
                    "() => performance.getEntriesByType('navigation')[0].toJSON()"
                )
                firsts.append(nav["domContentLoadedEventEnd"] - nav["startTime"])
                ttfbs.append(nav["responseStart"] - nav["requestStart"])
            res.ms["first_render"] = sorted(firsts)
            res.ms["ttfb"] = sorted(ttfbs)
            await page.wait_for_function("() => window.hyperhive && window.hyperhive.connected")
            rss, hwm = rss_mb(proc.pid)
            res.values["rss_first"], res.values["hwm_first"] = rss, hwm
            say(f"  first render p50 {res.p('first_render', 50):.0f} ms, RSS {rss:.0f} MB")

            say(f"dashboard: {p.latency_events} events at {RATE:.0f}/s, publish -> rendered")
            js = nc.jetstream()
            raw_got, raw_sub = await _raw_receiver(nc2)
            sent: dict[int, float] = {}
            ids: dict[int, str] = {}
            for i in range(p.latency_events):
                e = ev.AgentStatusSet(
                    hive=HIVE, agent=f"w{i % AGENTS}", source="harness", status_text=f"live {i}"
                )
                t = time.time()
                ack = await publish_event(js, e)
                sent[ack.seq], ids[ack.seq] = t, e.id
                await asyncio.sleep(1 / RATE)
            last = max(sent)
            await page.wait_for_function(
                f"() => window.hyperhive.lastSeq >= {last}", timeout=60_000
            )
            applied: list[list[float]] = await page.evaluate("() => window.hyperhive.applied")
            got = {int(s): t / 1000 for s, t in applied}
            lat = sorted((got[s] - sent[s]) * 1000 for s in sent if s in got)
            res.ms["rendered"] = lat
            res.values["lost"] = len(sent) - len(lat)
            await raw_sub.unsubscribe()
            res.ms["raw"] = sorted(
                (raw_got[ids[s]] - sent[s]) * 1000 for s in sent if ids[s] in raw_got
            )
            rss, hwm = rss_mb(proc.pid)
            res.values["rss_after"], res.values["hwm_after"] = rss, hwm
            await browser.close()
        say(
            f"  rendered p50 {res.p('rendered', 50):.1f} ms p99 {res.p('rendered', 99):.1f} ms; "
            f"raw NATS p99 {res.p('raw', 99):.2f} ms"
        )
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            async with asyncio.timeout(30):
                await proc.wait()
        await nc.close()
        await nc2.close()
        server.stop()
        shutil.rmtree(state, ignore_errors=True)
    return res


def report(p: DashPlan, r: DashResults) -> str:
    if r.skipped:
        return f"dashboard: skipped ({r.skipped})\n"

    def ms(key: str, pct: float) -> str:
        return f"{r.p(key, pct):.1f} ms"

    rows: list[Row | str] = [
        f"dashboard ({AGENTS} agents, {p.log_events:,} events in the log; Chromium)",
        Row(
            "event published -> rendered, p50",
            ms("rendered", 50),
            f"{r.p('raw', 50):.2f} ms NATS pub->sub",
            f"{r.p('rendered', 50) / r.p('raw', 50):.1f}x" if r.p("raw", 50) else "-",
        ),
        Row(
            "event published -> rendered, p99",
            ms("rendered", 99),
            f"{r.p('raw', 99):.2f} ms NATS pub->sub",
            f"{r.p('rendered', 99) / r.p('raw', 99):.1f}x" if r.p("raw", 99) else "-",
        ),
        Row("event published -> rendered, max", ms("rendered", 100), "", ""),
        Row("first render (navigation -> DOMContentLoaded), p50", ms("first_render", 50), "", ""),
        Row("  server time (TTFB), p50", ms("ttfb", 50), "", ""),
        Row("cold start: process -> URL printed", ms("listening", 50), "", ""),
        Row("cold start: process -> first page signed in", ms("cold", 50), "", ""),
        Row(
            "RSS after the first render (peak)",
            f"{r.values['rss_first']:.0f} MB ({r.values['hwm_first']:.0f})",
            "",
            "",
        ),
        Row(
            "RSS after the live run (peak)",
            f"{r.values['rss_after']:.0f} MB ({r.values['hwm_after']:.0f})",
            "",
            "",
        ),
        Row(
            "  (log filled at / projected at)",
            f"{fmt_rate(r.rates['fill'].per_s)} / {fmt_rate(r.rates['project'].per_s)}",
            "",
            "",
        ),
    ]
    p99 = r.p("rendered", 99)
    first = r.p("first_render", 50)
    peak = max(r.values["hwm_first"], r.values["hwm_after"])
    targets = [
        Target(
            f"published -> rendered p99 ({len(r.ms['rendered'])} events)",
            f"{p99:.1f} ms, {int(r.values['lost'])} lost",
            "<= 50 ms",
            p99 <= 50 and r.values["lost"] == 0,
        ),
        Target("first render, 100 agents / long log", f"{first:.0f} ms", "<= 500 ms", first <= 500),
        Target("dashboard RSS (peak)", f"{peak:.0f} MB", "<= 150 MB", peak <= 150),
    ]
    scale = ""
    if p.log_events < TARGET_LOG:
        scale = f"\nthe log holds {p.log_events:,} events, not the target's {TARGET_LOG:,} (--quick or --log-events)\n"
    return f"{render(rows)}\n{scale}\n{render_targets(targets)}\n"
