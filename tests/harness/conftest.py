"""Fixtures for tests that run the real Claude Code CLI against the fake Anthropic API.

* `claude_bin`: the pinned CLI (tests/claude_tools.py: installed in CI, else skip).
* `fake_api`: a fresh fake Messages API on a free loopback port, stopped after the test.
* `claude_config`: a fresh, empty CLAUDE_CONFIG_DIR (also the child's HOME).
* `claude_env`: `offline_env()` for the two above.

Mark such tests `@pytest.mark.claude`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.claude_tools import claude_binary, offline_env, prepare_claude
from tests.harness.fake_anthropic import FakeAnthropic


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # In CI the first download of the CLI (~235 MB) must not count against the
    # first test's timeout: do it here, once, when any selected test needs it.
    if any(item.get_closest_marker("claude") for item in items):
        prepare_claude()


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    return claude_binary()


@pytest.fixture
def fake_api() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def claude_config(tmp_path: Path) -> Path:
    config = tmp_path / "claude-config"
    config.mkdir()
    return config


@pytest.fixture
def claude_env(fake_api: FakeAnthropic, claude_config: Path) -> dict[str, str]:
    return offline_env(fake_api.base_url, claude_config)
