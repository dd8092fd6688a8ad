"""The fake Anthropic API on its own (no CLI): wire format, script rules, records."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.claude_tools import offline_env
from tests.harness.fake_anthropic import (
    COMPACT_MARKER,
    Blocks,
    Error,
    FakeAnthropic,
    Slow,
    Text,
    ToolUse,
    classify,
    last_user_text,
)

TOOLS = [{"name": "t", "description": "d", "input_schema": {"type": "object"}}]


def _body(prompt: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 1000,
        "stream": True,
        "tools": TOOLS,
        "system": [{"type": "text", "text": "You are a test."}],
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


def _post(
    fake: FakeAnthropic, body: Any, path: str = "/v1/messages?beta=true"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        conn.request(
            "POST", path, json.dumps(body), {"content-type": "application/json", "x-api-key": "k"}
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _events(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for chunk in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line)
        if "data" in lines:
            data = json.loads(lines["data"])
            assert data["type"] == lines["event"]
            events.append(data)
    return events


def _streamed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The content blocks a client assembles from the events."""
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    for e in events:
        if e["type"] == "content_block_start":
            blocks[e["index"]] = dict(e["content_block"])
        elif e["type"] == "content_block_delta":
            d = e["delta"]
            if d["type"] == "text_delta":
                blocks[e["index"]]["text"] += d["text"]
            else:
                partial[e["index"]] = partial.get(e["index"], "") + d["partial_json"]
        elif e["type"] == "content_block_stop" and e["index"] in partial:
            blocks[e["index"]]["input"] = json.loads(partial[e["index"]])
    return [blocks[i] for i in sorted(blocks)]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as f:
        yield f


def test_stream_has_the_real_event_sequence_and_unique_ids(fake: FakeAnthropic) -> None:
    fake.script(
        [
            Blocks([Text("let me"), ToolUse("mcp__x__send", {"to": "bob", "body": "x" * 300})]),
            Text("done"),
        ]
    )
    status, headers, raw = _post(fake, _body())
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    events = _events(raw)
    types = [e["type"] for e in events]
    assert types[:2] == ["message_start", "ping"]
    assert types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_start") == types.count("content_block_stop") == 2
    blocks = _streamed(events)
    assert blocks[0] == {"type": "text", "text": "let me"}
    assert blocks[1]["name"] == "mcp__x__send"
    assert blocks[1]["input"] == {"to": "bob", "body": "x" * 300}
    assert blocks[1]["id"].startswith("toolu_")
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    usage = events[0]["message"]["usage"]
    assert usage["cache_creation_input_tokens"] > 0
    assert usage["cache_read_input_tokens"] == 0

    _, _, raw2 = _post(fake, _body())
    second = _events(raw2)
    assert second[0]["message"]["id"] != events[0]["message"]["id"]
    assert second[-2]["delta"]["stop_reason"] == "end_turn"
    # Same system prompt and tools again: now read from the cache.
    assert second[0]["message"]["usage"]["cache_read_input_tokens"] > 0
    assert [r.message_id for r in fake.main_requests()] == [
        events[0]["message"]["id"],
        second[0]["message"]["id"],
    ]


def test_non_streaming_json_answer(fake: FakeAnthropic) -> None:
    fake.script([ToolUse("t", {"a": 1}, id="toolu_1", text="calling")])
    status, _, raw = _post(fake, _body(stream=False))
    answer = json.loads(raw)
    assert status == 200
    assert answer["type"] == "message"
    assert answer["id"].startswith("msg_")
    assert answer["content"] == [
        {"type": "text", "text": "calling"},
        {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"a": 1}},
    ]
    assert answer["stop_reason"] == "tool_use"
    assert set(answer["usage"]) >= {"input_tokens", "output_tokens", "cache_read_input_tokens"}


def test_errors_count_tokens_probes_and_unknown_paths(fake: FakeAnthropic) -> None:
    fake.script([Error(529, "Overloaded", times=2), Error(401, "bad key"), Text("fine")])
    for expected in (529, 529, 401):
        status, headers, raw = _post(fake, _body())
        assert status == expected
        assert json.loads(raw)["type"] == "error"
        assert "request-id" in headers
    assert json.loads(raw)["error"] == {"type": "authentication_error", "message": "bad key"}
    assert _post(fake, _body())[0] == 200
    assert _post(fake, _body())[0] == 200  # exhausted: the final text
    assert fake.main_requests()[-1].entry == Text(fake.final_text)

    status, _, raw = _post(fake, _body(), "/v1/messages/count_tokens")
    assert status == 200
    assert json.loads(raw)["input_tokens"] > 0
    assert _post(fake, {}, "/v1/elsewhere")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    conn.request("HEAD", "/")
    assert conn.getresponse().status == 200
    conn.close()
    assert [r.kind for r in fake.requests][-3:] == ["count_tokens", "unknown", "probe"]
    assert [r.path for r in fake.unknown_requests()] == ["/v1/elsewhere"]
    assert fake.main_requests()[0].query == "beta=true"
    assert fake.main_requests()[0].headers["x-api-key"] == "<redacted>"


def test_side_and_compact_requests_do_not_consume_the_script(fake: FakeAnthropic) -> None:
    fake.script([Text("main answer")])
    side = {
        "model": "claude-haiku",
        "max_tokens": 512,
        "messages": [{"role": "user", "content": "title?"}],
    }
    compact = _body(f"{COMPACT_MARKER}, paying close attention...")
    _post(fake, side)
    _post(fake, compact)
    _, _, raw = _post(fake, _body())
    assert _streamed(_events(raw)) == [{"type": "text", "text": "main answer"}]
    assert [r.kind for r in fake.requests] == ["side", "compact", "main"]
    assert fake.models() == ["claude-haiku", "claude-test", "claude-test"]
    assert classify(_body(max_tokens=1)) == "side"


def test_handler_answers_before_the_script(fake: FakeAnthropic) -> None:
    fake.script([Text("from script")])
    fake.handler = lambda body: (
        Text("echo: " + last_user_text(body)) if "dyn" in str(body) else None
    )
    _, _, raw = _post(fake, _body("dyn one"))
    assert _streamed(_events(raw))[0]["text"] == "echo: dyn one"
    _, _, raw = _post(fake, _body("plain"))
    assert _streamed(_events(raw))[0]["text"] == "from script"


def test_message_helpers() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>\nx\n</system-reminder>"},
                    {"type": "text", "text": "wake up"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "a", "name": "t", "input": {}}],
            },
            {"role": "system", "content": "a system message of the CLI's"},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "a",
                        "content": [{"type": "text", "text": "pong"}],
                    },
                    {"type": "tool_result", "tool_use_id": "b", "content": "bad", "is_error": True},
                ],
            },
        ]
    }
    assert FakeAnthropic.user_texts(body) == ["wake up", "pong\nbad"]
    assert FakeAnthropic.last_user_text(body) == "pong\nbad"
    assert "<system-reminder>" in FakeAnthropic.user_texts(body, reminders=True)[0]
    results = FakeAnthropic.tool_results(body)
    assert [(r.tool_use_id, r.content, r.is_error) for r in results] == [
        ("a", "pong", False),
        ("b", "bad", True),
    ]
    assert (
        FakeAnthropic.system_text(
            {"system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}
        )
        == "A\nB"
    )


def test_slow_answer_stops_when_the_client_goes_away(fake: FakeAnthropic) -> None:
    fake.script([Slow(30, then=Text("word " * 100))])
    payload = json.dumps(_body()).encode()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        received = b""
        while b"content_block_delta" not in received:  # mid-answer
            chunk = sock.recv(65536)
            assert chunk, f"the stream ended early: {received!r}"
            received += chunk
        request = fake.wait_main(1)
    fake.wait_for(lambda _: request.done, timeout=5)  # not the 30 s of the answer
    assert request.aborted


def test_stop_ends_a_slow_answer_and_serves_concurrently(fake: FakeAnthropic) -> None:
    fake.script([Slow(30), Text("quick")])
    failures: list[BaseException] = []

    def post_slow() -> None:
        try:
            _post(fake, _body())
        except http.client.HTTPException as exc:  # the stream is cut when the server stops
            failures.append(exc)

    slow = threading.Thread(target=post_slow, daemon=True)
    slow.start()
    fake.wait_main(1)
    # A second request is answered while the first is still streaming.
    _, _, raw = _post(fake, _body())
    assert _streamed(_events(raw))[0]["text"] == "quick"
    fake.stop()
    slow.join(5)
    assert not slow.is_alive()
    assert fake.main_requests()[0].aborted
    assert len(failures) == 1


def test_offline_env_is_loopback_only(tmp_path: Any) -> None:
    env = offline_env("http://127.0.0.1:1234", tmp_path / "cfg", {"X": "1"})
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1234"
    assert env["CLAUDE_CONFIG_DIR"] == env["HOME"] == str(tmp_path / "cfg")
    assert (tmp_path / "cfg").is_dir()
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    assert env["X"] == "1"
    with pytest.raises(ValueError, match="loopback"):
        offline_env("https://api.anthropic.com", tmp_path / "cfg")


async def test_async_waits_leave_the_event_loop_free(fake: FakeAnthropic) -> None:
    fake.script([Text("hi")])
    waiting = asyncio.ensure_future(fake.await_main(1, timeout=5))
    await asyncio.to_thread(_post, fake, _body())  # the loop runs while the fake waits
    request = await waiting
    assert request.kind == "main"
    assert (await fake.await_for(lambda rs: len(rs) == 1)) == [request]
