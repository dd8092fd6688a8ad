"""The fake backend c0re's unit tests drive: calls recorded, failures and crashes on demand."""

from __future__ import annotations

import pytest

from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.errors import BackendError
from tests.core.lifecycle.conftest import SpecMaker


async def test_calls_are_recorded_in_order(make_spec: SpecMaker) -> None:
    backend = FakeBackend()
    await backend.create(make_spec("alice"))
    await backend.start(make_spec("alice"))
    await backend.start(make_spec("bob"))
    await backend.stop(make_spec("alice"))
    assert backend.calls == [
        ("create", "alice"),
        ("start", "alice"),
        ("start", "bob"),
        ("stop", "alice"),
    ]
    assert backend.verbs("alice") == ["create", "start", "stop"]
    assert backend.running == {"bob"}
    assert backend.specs["bob"].name == "bob"


async def test_a_failure_is_raised_as_many_times_as_asked(make_spec: SpecMaker) -> None:
    backend = FakeBackend()
    backend.fail("start", "no room", agent="alice")
    await backend.start(make_spec("bob"))  # another agent: not affected
    with pytest.raises(BackendError, match="start alice: no room"):
        await backend.start(make_spec("alice"))
    assert not backend.is_running("alice")
    await backend.start(make_spec("alice"))  # once only
    assert backend.is_running("alice")

    backend.fail("stop", times=None)
    for _ in range(3):
        with pytest.raises(BackendError, match="simulated failure"):
            await backend.stop(make_spec("alice"))
    assert backend.is_running("alice")


async def test_crash_and_logs(make_spec: SpecMaker) -> None:
    backend = FakeBackend(containers=True)
    backend.logs["alice"] = [f"l{i}" for i in range(30)]
    await backend.start(make_spec("alice"))
    made = backend.crash("alice", status=None, signal="SIGKILL")
    assert backend.exits.get_nowait() == made
    assert (made.exit_status, made.signal, made.unit) == (
        None,
        "SIGKILL",
        "container@h-alice.service",
    )
    assert made.last_log_lines == tuple(f"l{i}" for i in range(10, 30))
    assert not backend.is_running("alice")
    assert await backend.log_lines("alice", 2) == ["l28", "l29"]
    assert backend.container_name("alice") == "h-alice"
    await backend.aclose()
    assert backend.closed
