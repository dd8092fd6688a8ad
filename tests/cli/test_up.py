"""`hyperhive up` on a bare state dir: embedded server, projector, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperhive import names
from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.config import HiveConfig
from tests.helpers import BIN
from tests.helpers import state_env as _env
from tests.helpers import wait_for_line as _wait_for_line

pytestmark = pytest.mark.nats


@pytest.fixture
def hive_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [str(BIN / "hyperhive"), "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(state),
        cwd=tmp_path,
    )
    try:
        yield proc, state
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()  # its nats-server dies with it (PR_SET_PDEATHSIG)
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _tail(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hive-events"), "tail", *args],
        capture_output=True,
        text=True,
        env=_env(state),
        timeout=60,
        check=False,
    )


def _wait_tail(state: Path, kind: str, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = _tail(state, "-o", "json", "-n", "50")
        events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        if any(e.get("kind") == kind for e in events):
            return events
        time.sleep(0.1)  # sleep-ok: polling another process inside a deadline
    pytest.fail(f"hive-events tail never showed {kind}; last output: {out.stdout} {out.stderr}")


def test_up_starts_a_bus_that_a_second_terminal_can_tail(
    hive_up: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, state = hive_up
    lines = _wait_for_line(proc, "Ctrl-C stops everything")
    assert any("nats://127.0.0.1:" in line for line in lines)
    info = json.loads((state / "nats" / "server.json").read_text())
    deadline = time.monotonic() + 30
    services: set[object] = set()
    while time.monotonic() < deadline and not {"projector", "c0re"} <= services:
        events = _wait_tail(state, "hive.started")
        services = {e.get("service") for e in events if e["kind"] == "hive.started"}
    assert {"projector", "c0re"} <= services, services  # up runs both, each announces itself
    # Nothing on the machine connects anonymously.
    anon = subprocess.run(
        [str(BIN / "hive-events"), "tail", "--nats", info["url"]],
        capture_output=True,
        text=True,
        env={**_env(state), "HYPERHIVE_STATE_DIR": str(state.parent / "elsewhere")},
        timeout=60,
        check=False,
    )
    assert anon.returncode == 1
    assert "authorization" in anon.stderr.lower()
    assert len(anon.stderr.strip().splitlines()) == 1


def test_up_stops_cleanly_on_sigint_and_keeps_its_store(
    hive_up: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, state = hive_up
    _wait_for_line(proc, "Ctrl-C stops everything")
    _wait_tail(state, "hive.started")
    pid = json.loads((state / "nats" / "server.json").read_text())["pid"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert not (state / "nats" / "server.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # A second `up` on the same state dir finds the events of the first one.
    again = subprocess.Popen(
        [str(BIN / "hyperhive"), "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(state),
        cwd=state.parent,
    )
    try:
        _wait_for_line(again, "Ctrl-C stops everything")
        events = _wait_tail(state, "hive.stopped")
        kinds = [e["kind"] for e in events]
        # the first run's start and clean stop are in the stream the second run serves
        assert kinds.index("hive.started") < kinds.index("hive.stopped")
    finally:
        again.send_signal(signal.SIGINT)
        assert again.wait(timeout=30) == 0
        assert again.stdout is not None
        again.stdout.close()


def test_second_up_on_the_same_state_dir_is_refused(
    hive_up: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, state = hive_up
    _wait_for_line(proc, "Ctrl-C stops everything")
    second = subprocess.run(
        [str(BIN / "hyperhive"), "up"],
        capture_output=True,
        text=True,
        env=_env(state),
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert "already runs" in second.stderr


def test_credentials_for_a_new_agent_work_at_once_against_a_running_hive(
    hive_up: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, state = hive_up
    _wait_for_line(proc, "Ctrl-C stops everything")
    out = subprocess.run(
        [str(BIN / "hyperhive"), "credentials", "--agent", "carol"],
        capture_output=True,
        text=True,
        env=_env(state),
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "agent-carol" in out.stdout
    assert "reloaded" in out.stdout
    carol = state / "nats" / "credentials" / "default" / "agent-carol.json"
    assert stat.S_IMODE(carol.stat().st_mode) == 0o600

    async def carol_connects() -> bool:
        cfg = HiveConfig(state_dir=str(state))
        nc = await connect(resolve_endpoint(cfg, names.agent_role("carol")), "carol", wait=True)
        ok = bool(nc.is_connected)
        await nc.close()
        return ok

    assert asyncio.run(asyncio.wait_for(carol_connects(), 30))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_hyperhive_nats_stops_cleanly_when_signalled(tmp_path: Path, sig: signal.Signals) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [str(BIN / "hyperhive"), "nats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(state),
        cwd=tmp_path,
    )
    try:
        _wait_for_line(proc, "nats-server ready at")
        pid = json.loads((state / "nats" / "server.json").read_text())["pid"]
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
        assert not (state / "nats" / "server.json").exists()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def _signed_in_status(url: str, token: str) -> int:
    """Sign in to a dashboard with `token`; the status of the hive page afterwards."""
    import re

    import httpx

    with httpx.Client(base_url=url, timeout=30) as c:
        page = c.get("/login")
        csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        c.post("/login", data={"token": token, "_csrf_token": csrf.group(1)})
        return c.get("/h/default").status_code


def test_up_prints_the_dashboard_url_and_an_operator_token_that_signs_in(
    hive_up: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, state = hive_up
    lines = _wait_for_line(proc, "operator token")
    url = next(line.split()[-1] for line in lines if line.strip().startswith("dashboard"))
    link = next(line.split()[-1] for line in lines if "sign in:" in line)
    token = lines[-1].split()[-1]
    assert url.startswith("http://127.0.0.1:")
    assert link == f"{url}login#token={token}"
    stored = (state / "dashboard" / "operator-token").read_text()
    assert token not in stored  # kept hashed
    assert stat.S_IMODE((state / "dashboard" / "operator-token").stat().st_mode) == 0o600
    assert _signed_in_status(url, token) == 200
    assert _signed_in_status(url, "not-the-token") == 303  # back to the sign-in page


def test_hyperhive_dashboard_alone_mints_a_token_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = subprocess.Popen(
        [str(BIN / "hyperhive"), "nats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(state),
    )
    procs = [server]
    try:
        _wait_for_line(server, "nats-server ready at")

        def dashboard() -> subprocess.Popen[str]:
            proc = subprocess.Popen(
                [str(BIN / "hyperhive"), "dashboard"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=_env(state),
            )
            procs.append(proc)
            return proc

        first = dashboard()
        lines = _wait_for_line(first, "operator token")
        assert "shown once" in lines[-1]
        url = lines[-2].split()[-1]
        token = lines[-1].split()[-1]
        assert _signed_in_status(url, token) == 200
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        lines = _wait_for_line(dashboard(), "operator token")
        assert "hyperhive token" in lines[-1]
        assert token not in lines[-1]
        url = lines[-2].split()[-1]
        assert _signed_in_status(url, token) == 200  # the same token still works
        new = subprocess.run(
            [str(BIN / "hyperhive"), "token"],
            capture_output=True,
            text=True,
            env=_env(state),
            timeout=60,
            check=True,
        ).stdout.strip()
        assert _signed_in_status(url, token) == 303
        assert _signed_in_status(url, new) == 200
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if p.stdout is not None:
                p.stdout.close()
