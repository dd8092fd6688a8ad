"""The real Claude Code CLI against the fake Anthropic API: what the harness builds on.

Each test runs the pinned CLI (`claude --print --verbose --output-format stream-json`)
offline, with `offline_env`, against a scripted `fake_api`. What these tests pin
down is written up in CLAUDE_CLI_NOTES.md beside this file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.claude_tools import claude_command, offline_env, parse_stream_json, run_claude
from tests.harness.fake_anthropic import (
    Blocks,
    Error,
    FakeAnthropic,
    Slow,
    Text,
    ToolResult,
    ToolUse,
)

pytestmark = pytest.mark.claude

MODEL = "claude-sonnet-4-5"
ECHO_SERVER = Path(__file__).with_name("echo_mcp_server.py")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The CLI's cwd: sessions are stored per cwd, so a resume must use the same one."""
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_scripted_text_comes_out_as_the_result(
    claude_bin: Path, fake_api: FakeAnthropic, claude_env: dict[str, str], workdir: Path
) -> None:
    fake_api.script([Text("Hello from the fake")])

    run = run_claude(claude_bin, "say hello", ["--model", MODEL], claude_env, workdir)

    assert run.returncode == 0, run.describe()
    result = run.result
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["result"] == "Hello from the fake"
    assert result["terminal_reason"] == "completed"
    assert result["num_turns"] == 1
    assert result["session_id"] == run.init["session_id"]
    assert run.init["model"] == MODEL
    assert run.init["cwd"] == str(workdir)
    # Only the conversation's request reached the fake, with what we asked for.
    [main] = fake_api.main_requests()
    assert [r.kind for r in fake_api.requests] == ["main"]
    assert fake_api.models() == [MODEL]
    assert fake_api.last_user_text(main) == "say hello"
    assert main.json["stream"] is True
    assert main.headers["x-api-key"] == "<redacted>"
    assert main.headers["x-claude-code-session-id"] == result["session_id"]
    # The usage the fake reported is the usage the CLI totals up.
    assert main.entry == Text("Hello from the fake")
    [assistant] = run.of_type("assistant")
    assert assistant["message"]["id"] == main.message_id
    assert result["usage"]["input_tokens"] == assistant["message"]["usage"]["input_tokens"]
    assert result["usage"]["cache_creation_input_tokens"] > 1000  # the system prompt
    assert result["total_cost_usd"] > 0


def test_resume_carries_the_history(
    claude_bin: Path, fake_api: FakeAnthropic, claude_env: dict[str, str], workdir: Path
) -> None:
    fake_api.script([Text("first answer"), Text("second answer")])
    args = ["--model", MODEL]

    first = run_claude(claude_bin, "remember banana", args, claude_env, workdir)
    session = first.session_id
    second = run_claude(
        claude_bin, "what was it?", [*args, "--resume", session], claude_env, workdir
    )

    assert second.returncode == 0, second.describe()
    assert second.result["result"] == "second answer"
    assert second.session_id == session
    one, two = fake_api.main_requests()
    assert one.message_id != two.message_id
    assert [m["role"] for m in fake_api.messages(two)] == ["user", "assistant", "user"]
    assert fake_api.user_texts(two) == ["remember banana", "what was it?"]
    assert "first answer" in json.dumps(fake_api.messages(two)[1])
    # The second turn reads the prompt cache the first one wrote.
    assert second.result["usage"]["cache_read_input_tokens"] > 0


def test_sigint_mid_answer_ends_the_cli_and_the_session_resumes(
    claude_bin: Path, fake_api: FakeAnthropic, claude_env: dict[str, str], workdir: Path
) -> None:
    fake_api.script([Slow(30, then=Text("word " * 200)), Text("resumed")])
    args = ["--model", MODEL]
    proc = subprocess.Popen(
        claude_command(claude_bin, "take your time", [*args, "--include-partial-messages"]),
        env=claude_env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: what `communicate` reads next is what follows these lines
    )
    try:
        # Interrupt once the CLI has printed the start of the answer: it is mid-answer.
        assert proc.stdout is not None
        before = []
        for raw in iter(proc.stdout.readline, b""):
            before.append(json.loads(raw))
            event = before[-1].get("event", {})
            if before[-1]["type"] == "stream_event" and event["type"] == "content_block_delta":
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)  # SIGINT ends it: no grace needed
    finally:
        proc.kill()
        proc.wait()

    assert proc.returncode == 0, err.decode(errors="replace")
    session = before[0]["session_id"]
    after = parse_stream_json(out.decode())
    # Usually the CLI prints the interrupt and an error result; on a loaded machine it
    # sometimes exits 0 with nothing more (1 run in 10 with both cores busy). The harness
    # counts on neither: it knows it interrupted, and the session id comes with `init`.
    results = [line for line in after if line["type"] == "result"]
    if results:
        [result] = results
        assert after[-1] is result
        assert result["subtype"] == "error_during_execution"
        assert result["is_error"] is True
        assert result["terminal_reason"] == "aborted_streaming"
        assert result["session_id"] == session
        interrupted = [line for line in after if line["type"] == "user"]
        assert interrupted[-1]["message"]["content"] == [
            {"type": "text", "text": "[Request interrupted by user]"}
        ]
    # The fake saw the client go away mid-stream.
    request = fake_api.main_requests()[0]
    fake_api.wait_for(lambda _: request.done)
    assert request.aborted

    again = run_claude(claude_bin, "go on", [*args, "--resume", session], claude_env, workdir)
    assert again.returncode == 0, again.describe()
    assert again.result["result"] == "resumed"
    texts = fake_api.user_texts(fake_api.main_requests()[-1])
    assert "take your time" in texts[0]
    assert texts[-1] == "go on"


def test_401_is_retried_then_reported_as_authentication_failed(
    claude_bin: Path, fake_api: FakeAnthropic, claude_config: Path, workdir: Path
) -> None:
    fake_api.script([Error(401, "invalid x-api-key", times=None)])
    env = offline_env(fake_api.base_url, claude_config, {"CLAUDE_CODE_MAX_RETRIES": "1"})

    run = run_claude(claude_bin, "hello", ["--model", MODEL], env, workdir)

    assert run.returncode == 1, run.describe()
    [retry] = run.of_type("system", "api_retry")
    assert retry["attempt"] == 1
    assert retry["max_retries"] == 1
    assert retry["error_status"] == 401
    assert retry["error"] == "authentication_failed"
    [assistant] = run.of_type("assistant")
    assert assistant["error"] == "authentication_failed"
    assert assistant["message"]["model"] == "<synthetic>"
    result = run.result
    assert result["subtype"] == "success"  # sic: is_error and api_error_status tell
    assert result["is_error"] is True
    assert result["api_error_status"] == 401
    assert result["result"] == "Invalid API key · Fix external API key"
    assert len(fake_api.main_requests()) == 2  # the first try and one retry


def test_prompt_too_long_on_a_single_exchange_fails_the_turn(
    claude_bin: Path, fake_api: FakeAnthropic, claude_env: dict[str, str], workdir: Path
) -> None:
    fake_api.script([Error(400, "prompt is too long: 210000 tokens > 200000 maximum")])

    run = run_claude(claude_bin, "hello", ["--model", MODEL], claude_env, workdir)

    assert run.returncode == 1, run.describe()
    [assistant] = run.of_type("assistant")
    assert assistant["error"] == "invalid_request"
    result = run.result
    assert result["is_error"] is True
    assert result["api_error_status"] == 400
    assert result["terminal_reason"] == "prompt_too_long"
    assert result["result"].startswith("Prompt is too long")
    assert "cannot be compacted" in result["result"]
    assert fake_api.of_kind("compact") == []


def _two_reads_then_too_long(fake: FakeAnthropic, workdir: Path) -> None:
    note = workdir / "note.txt"
    note.write_text("a note\n")
    fake.script(
        [
            ToolUse("Read", {"file_path": str(note)}),
            ToolUse("Read", {"file_path": str(note)}),
            Error(400, "prompt is too long: 210000 tokens > 200000 maximum"),
            Text("after compaction"),
        ]
    )


def test_prompt_too_long_with_history_compacts_and_retries(
    claude_bin: Path, fake_api: FakeAnthropic, claude_env: dict[str, str], workdir: Path
) -> None:
    _two_reads_then_too_long(fake_api, workdir)
    fake_api.compact_entry = Text("<summary>SUMMARY-OF-EARLIER-TURNS</summary>")

    run = run_claude(
        claude_bin, "read it twice", ["--model", MODEL, "--allowedTools=Read"], claude_env, workdir
    )

    assert run.returncode == 0, run.describe()
    assert run.result["result"] == "after compaction"
    statuses = [line.get("status") for line in run.of_type("system", "status")]
    assert statuses == ["compacting", None]
    assert run.of_type("system", "status")[-1]["compact_result"] == "success"
    [boundary] = run.of_type("system", "compact_boundary")
    assert boundary["compact_metadata"]["trigger"] == "auto"
    assert [r.kind for r in fake_api.requests] == ["main", "main", "main", "compact", "main"]
    retried = fake_api.main_requests()[-1]
    assert "SUMMARY-OF-EARLIER-TURNS" in fake_api.user_texts(retried)[0]


def test_auto_compact_off_in_settings_also_stops_reactive_compaction(
    claude_bin: Path, fake_api: FakeAnthropic, claude_env: dict[str, str], workdir: Path
) -> None:
    _two_reads_then_too_long(fake_api, workdir)
    settings = json.dumps({"autoCompactEnabled": False})

    run = run_claude(
        claude_bin,
        "read it twice",
        ["--model", MODEL, "--allowedTools=Read", "--settings", settings],
        claude_env,
        workdir,
    )

    assert run.returncode == 1, run.describe()
    assert run.result["terminal_reason"] == "prompt_too_long"
    assert run.result["result"] == "Prompt is too long"
    assert run.of_type("system", "compact_boundary") == []
    assert fake_api.of_kind("compact") == []


def test_system_prompt_flags_and_no_builtin_tools(
    claude_bin: Path, fake_api: FakeAnthropic, claude_env: dict[str, str], workdir: Path
) -> None:
    fake_api.script([Text("ok")])
    args = [
        "--model",
        MODEL,
        "--system-prompt",
        "You are agent bob.",
        "--append-system-prompt",
        "APPENDED-LINE",
        "--tools=",
    ]

    run = run_claude(claude_bin, "hi", args, claude_env, workdir)

    assert run.returncode == 0, run.describe()
    [main] = fake_api.main_requests()
    system = main.json["system"]
    # A billing header and an identity line of the CLI's own, then ours.
    assert system[-1]["text"] == "You are agent bob.\n\nAPPENDED-LINE"
    assert len(system) == 3
    assert "software engineering" not in fake_api.system_text(main)
    assert fake_api.tool_names(main) == []
    assert run.init["tools"] == []


def test_mcp_tool_call_goes_through_real_stdio_mcp(
    claude_bin: Path,
    fake_api: FakeAnthropic,
    claude_env: dict[str, str],
    workdir: Path,
    tmp_path: Path,
) -> None:
    log = tmp_path / "echo.log"
    denied = workdir / "denied.txt"  # Write is not in --allowedTools
    mcp_config = {
        "mcpServers": {
            "t": {
                "command": sys.executable,
                "args": [str(ECHO_SERVER)],
                "env": {"ECHO_MCP_LOG": str(log)},
            }
        }
    }
    fake_api.script(
        [
            Blocks(
                [
                    ToolUse("mcp__t__echo", {"text": "ping"}, id="toolu_echo1"),
                    ToolUse("Write", {"file_path": str(denied), "content": "x"}, id="toolu_w1"),
                ]
            ),
            Text("done"),
        ]
    )
    args = [
        "--model",
        MODEL,
        "--mcp-config",
        json.dumps(mcp_config),
        "--strict-mcp-config",
        "--allowedTools",
        "mcp__t__echo",
    ]

    run = run_claude(claude_bin, "echo ping", args, claude_env, workdir)

    assert run.returncode == 0, run.describe()
    assert run.result["result"] == "done"
    assert run.init["mcp_servers"] == [{"name": "t", "status": "connected"}]
    assert "mcp__t__echo" in run.init["tools"]
    first, second = fake_api.main_requests()
    assert "mcp__t__echo" in fake_api.tool_names(first)
    assert fake_api.tool_results(second) == [
        ToolResult(tool_use_id="toolu_echo1", content="ping", is_error=False),
        ToolResult(
            tool_use_id="toolu_w1",
            content=f"Claude requested permissions to write to {denied}, but you haven't granted it yet.",
            is_error=True,
        ),
    ]
    assert log.read_text() == "ping\n"  # the MCP server itself ran the call
    assert not denied.exists()
    [denial] = run.result["permission_denials"]
    assert denial["tool_name"] == "Write"
    assert denial["tool_use_id"] == "toolu_w1"
