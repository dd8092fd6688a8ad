"""The CLI runner against real processes that misbehave: crashes, garbage, a flood of output."""

from __future__ import annotations

import resource
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from hyperhive.harness.claude import MAX_LINE, CliRunner, Invocation, ScriptedRunner


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def invocation() -> Invocation:
    return Invocation(argv=[], prompt="hello", env={"PATH": "/usr/bin:/bin"})


async def collect(runner: Any) -> tuple[Any, list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []

    async def on_line(line: dict[str, Any]) -> None:
        lines.append(line)

    return await runner.run(invocation(), on_line), lines


RESULT = '{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s"}'


async def test_a_crashing_claude_is_an_exit_without_a_result(tmp_path: Path) -> None:
    crash = script(
        tmp_path,
        "crash",
        'import os, sys\nsys.stdout.write(\'{"type":"system"}\\n\')\nsys.stdout.flush()\nos.kill(os.getpid(), 9)\n',
    )
    outcome, lines = await collect(CliRunner(crash))
    assert outcome.result is None
    assert outcome.exit_status == -9
    assert lines == [{"type": "system"}]


async def test_garbage_on_stdout_is_skipped_and_the_result_still_read(tmp_path: Path) -> None:
    noisy = script(
        tmp_path,
        "noisy",
        "import sys\nsys.stdin.read()\n"
        "print('Welcome to claude!')\nprint('\\x1b[31mred\\x1b[0m')\nprint('{not json')\n"
        f"print('[1,2]')\nprint({RESULT!r})\n",
    )
    outcome, lines = await collect(CliRunner(noisy))
    assert outcome.result is not None
    assert outcome.result["result"] == "ok"
    assert outcome.noise_lines == 4
    assert [line["type"] for line in lines] == ["result"]


async def test_the_prompt_arrives_on_stdin(tmp_path: Path) -> None:
    echo = script(
        tmp_path,
        "echo",
        "import sys, json\ntext = sys.stdin.read()\n"
        "print(json.dumps({'type': 'result', 'subtype': 'success', 'result': text}))\n",
    )
    outcome, _ = await collect(CliRunner(echo))
    assert outcome.result is not None
    assert outcome.result["result"] == "hello"


async def test_a_flood_of_output_keeps_memory_bounded(tmp_path: Path) -> None:
    # 64 MiB in one line, then 200k short lines, then a result: the runner must
    # neither buffer the long line nor keep the short ones.
    flood = script(
        tmp_path,
        "flood",
        "import sys\nout = sys.stdout\nchunk = 'x' * (1 << 20)\n"
        'out.write(\'{"type":"assistant","pad":"\')\n'
        "for _ in range(64): out.write(chunk)\n"
        "out.write('\"}\\n')\n"
        'for i in range(200000): out.write(\'{"type":"noise","i":%d}\\n\' % i)\n'
        f"out.write({RESULT!r} + '\\n')\n",
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = 0

    async def on_line(line: dict[str, Any]) -> None:
        nonlocal seen
        seen += 1

    outcome = await CliRunner(flood).run(invocation(), on_line)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert outcome.result is not None
    assert outcome.cut_lines == 1
    assert seen == 200001  # the cut line is not JSON any more: noise
    assert grown_mib < 3 * MAX_LINE / (1 << 20) + 32, f"the runner grew by {grown_mib:.0f} MiB"


async def test_a_missing_binary_is_an_error_not_an_exception() -> None:
    outcome, _ = await collect(CliRunner("/nonexistent/claude"))
    assert outcome.error == "claude not found: install @anthropic-ai/claude-code"


@pytest.mark.parametrize("kind", ["cli", "scripted"])
async def test_both_runners_report_the_result_and_the_session(tmp_path: Path, kind: str) -> None:
    runner: Any
    if kind == "cli":
        runner = CliRunner(
            script(tmp_path, "ok", f"import sys\nsys.stdin.read()\nprint({RESULT!r})\n")
        )
    else:
        runner = ScriptedRunner(
            turns=[
                [
                    {
                        "type": "result",
                        "subtype": "success",
                        "is_error": False,
                        "result": "ok",
                        "session_id": "s",
                    }
                ]
            ]
        )
    outcome, lines = await collect(runner)
    assert outcome.result is not None
    assert (outcome.result["result"], outcome.session_id) == ("ok", "s")
    assert [line["type"] for line in lines] == ["result"]
