"""A fake Anthropic Messages API on loopback, for running the real Claude Code CLI offline.

The server runs in its own threads (`http.server.ThreadingHTTPServer`): it answers
whatever the test's event loop is doing, and several requests at once. Point the CLI
at it with `tests.claude_tools.offline_env(fake.base_url, config_dir)`.

What it answers:

* `POST /v1/messages` (the CLI adds `?beta=true`; the query is kept apart in
  `Request.query`): streaming (`"stream": true`: the SSE events of the real API,
  message_start, ping, content_block_start/delta/stop, message_delta, message_stop,
  in chunked transfer encoding) or plain JSON. Every answer has its own message id
  (the CLI's `--resume` keeps a session's history only then) and usage numbers
  shaped like the real ones (see `FakeAnthropic.usage`).
* `POST /v1/messages/count_tokens`: `{"input_tokens": N}` from a size estimate.
* `HEAD /` (the CLI's pre-connect probe) and `GET` on `/` or `/v1/...`: 200 `{}`.
* Anything else: 404 with the API's error body, recorded with kind "unknown".
* With `require_api_key` set, a `/v1/messages` request without exactly that
  `x-api-key` is answered 401 (`authentication_error`), as the real API does.

Which requests the script answers. Each `/v1/messages` request gets a kind:

* **compact**: the CLI's compaction request (auto or reactive compaction, and
  `/compact`). It looks like a main request (same model, tools, streaming) and is
  told apart by its last user message, which holds the compaction instructions
  (`COMPACT_MARKER`). Answered with `compact_entry` (a summary); the script is
  not touched.
* **side**: a small job of the CLI's own (titles, summaries, probes): a request
  that asks for no streaming *and* sends no tools, or whose max_tokens is tiny
  (<= `SIDE_MAX_TOKENS`). Answered with `side_entry`; the script is not touched.
  (2.1.197 in `--print` mode was seen making none; see CLAUDE_CLI_NOTES.md.)
* **main**: everything else, i.e. the conversation's own turns (streamed, with the
  tool list). A main request takes the next script entry. With `handler` set,
  `handler(body)` is asked first; an entry it returns is used instead, without
  touching the script (None: fall back to the script). When the script is
  exhausted the answer is `Text(final_text)`.

Entries: `Text`, `ToolUse`, `Blocks` (several content blocks in one answer), `Slow`
(answers slowly, stops the moment the client goes away) and `Error` (an HTTP error
with the API's JSON error body, optionally for several requests in a row).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})
SIDE_MAX_TOKENS = 32
COMPACT_MARKER = "create a detailed summary of the conversation so far"
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)

# The `error.type` the real API sends for each status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


# --- script entries ---------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A text block; stop_reason "end_turn" unless told otherwise.

    `usage` overrides fields of the computed usage (e.g. a huge
    `cache_read_input_tokens` to make the CLI think its context is full).
    """

    text: str
    stop_reason: str = "end_turn"
    usage: Mapping[str, int] | None = None


@dataclass(frozen=True)
class ToolUse:
    """A tool_use block (its input streamed as input_json_delta); stop_reason "tool_use".

    `text`, if given, is a text block sent before the call in the same answer.
    `id` defaults to a fresh `toolu_...` id.
    """

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    text: str | None = None
    usage: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Blocks:
    """Several blocks in one answer, e.g. a text and two parallel tool calls."""

    blocks: Sequence[Text | ToolUse]
    usage: Mapping[str, int] | None = None


Answer = Text | ToolUse | Blocks


@dataclass(frozen=True)
class Slow:
    """Answer `then` over `seconds`: its content trickles out in >= 20 small deltas.

    Streaming starts at once (message_start and the first delta), so the client is
    visibly mid-answer. The answer stops as soon as the client disconnects or the
    server stops; the request's record then has `aborted=True`.
    """

    seconds: float
    then: Answer = field(default_factory=lambda: Text("slow answer"))


@dataclass(frozen=True)
class Error:
    """An HTTP error: `{"type":"error","error":{"type":...,"message":...}}`.

    `times`: how many main requests in a row get it (None: every one from now on).
    The CLI retries 401, 408, 409, 429 and 5xx itself (see CLAUDE_CLI_NOTES.md), so
    a persistent failure needs `times=None` (or CLAUDE_CODE_MAX_RETRIES=0).
    """

    status: int
    message: str
    type: str | None = None
    times: int | None = 1
    headers: Mapping[str, str] | None = None

    @property
    def error_type(self) -> str:
        return self.type or ERROR_TYPES.get(self.status, "api_error")


Entry = Text | ToolUse | Blocks | Slow | Error
Handler = Callable[[dict[str, Any]], Entry | None]

DEFAULT_SUMMARY = (
    "<analysis>Fake analysis.</analysis>\n"
    "<summary>Fake summary of the conversation so far.</summary>"
)


# --- records ----------------------------------------------------------------------


@dataclass
class Request:
    """One request the fake received. Secret headers are kept as "<redacted>"."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    kind: str  # "main" | "compact" | "side" | "count_tokens" | "probe" | "unknown"
    time: float
    entry: Entry | None = None
    message_id: str | None = None
    deltas: int = 0  # content deltas written to the client so far (a streamed answer)
    aborted: bool = False
    done: bool = False

    @property
    def json(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}

    @property
    def model(self) -> str | None:
        model = self.json.get("model")
        return model if isinstance(model, str) else None


@dataclass(frozen=True)
class ToolResult:
    """A tool_result block the CLI sent back."""

    tool_use_id: str
    content: str
    is_error: bool


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        return content_text(block.get("content"))
    return ""


def content_text(content: Any) -> str:
    """The text of a `content`: a string, or its text and tool_result blocks, one a line."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_block_text(b) for b in content) if t)
    return ""


def without_reminders(text: str) -> str:
    """`text` without the CLI's `<system-reminder>...</system-reminder>` insertions."""
    return _REMINDER.sub("", text).strip()


def estimate_tokens(value: Any) -> int:
    """A token count of the right size (about 4 characters a token)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return max(1, len(text) // 4)


def _as_body(request: Request | Mapping[str, Any]) -> Mapping[str, Any]:
    return request.json if isinstance(request, Request) else request


def messages(request: Request | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `messages` of a request (or of a parsed body)."""
    found = _as_body(request).get("messages")
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def user_texts(request: Request | Mapping[str, Any], reminders: bool = False) -> list[str]:
    """The text of each user message, in order (see `last_user_text`)."""
    texts = []
    for message in messages(request):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = content if isinstance(content, list) else [content]
        parts = [_block_text(b) for b in blocks]
        if not reminders:
            parts = [without_reminders(p) for p in parts]
        texts.append("\n".join(p.strip() for p in parts if p.strip()))
    return texts


def last_user_text(request: Request | Mapping[str, Any], reminders: bool = False) -> str:
    """The text of the last *user* message: its text blocks and the contents of its
    tool_result blocks, one a line, without the `<system-reminder>` blocks the CLI
    inserts (unless `reminders`). The CLI puts the prompt in the last user message,
    after any reminders; it may add `system`-role messages of its own elsewhere."""
    texts = user_texts(request, reminders)
    return texts[-1] if texts else ""


def system_text(request: Request | Mapping[str, Any]) -> str:
    """The system prompt as one string (the CLI sends a list of text blocks)."""
    return content_text(_as_body(request).get("system"))


def tool_names(request: Request | Mapping[str, Any]) -> list[str]:
    """The names of the tools offered in a request."""
    tools = _as_body(request).get("tools")
    if not isinstance(tools, list):
        return []
    return [str(t.get("name")) for t in tools if isinstance(t, dict)]


def tool_results(request: Request | Mapping[str, Any]) -> list[ToolResult]:
    """The tool_result blocks of all user messages of a request, in order."""
    results: list[ToolResult] = []
    for message in messages(request):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                results.append(
                    ToolResult(
                        tool_use_id=str(block.get("tool_use_id", "")),
                        content=content_text(block.get("content")),
                        is_error=bool(block.get("is_error", False)),
                    )
                )
    return results


def classify(body: Any) -> str:
    """The kind of a /v1/messages request: "main", "compact" or "side" (module doc)."""
    if not isinstance(body, dict):
        return "side"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens <= SIDE_MAX_TOKENS:
        return "side"
    if not body.get("stream") and not body.get("tools"):
        return "side"
    if COMPACT_MARKER in last_user_text(body, reminders=True):
        return "compact"
    return "main"


# --- the server -------------------------------------------------------------------


class FakeAnthropic:
    """The fake API. `start()`, point the CLI at `base_url`, `script([...])`, `stop()`."""

    def __init__(self, final_text: str = "(script exhausted)") -> None:
        self.final_text = final_text
        self.side_entry: Entry = Text("Side answer.")
        self.compact_entry: Entry = Text(DEFAULT_SUMMARY)
        self.handler: Handler | None = None
        # Set: a `/v1/messages` request without exactly this `x-api-key` is answered
        # 401 authentication_error, as the real API answers a wrong key.
        self.require_api_key: str | None = None
        self.requests: list[Request] = []
        self._script: list[Entry] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._ids = itertools.count(1)
        self._seen_prefixes: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeAnthropic:
        fake = self

        class Handler(_RequestHandler):
            owner = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._closing.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-anthropic",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; answers in progress (e.g. a `Slow`) end at once."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake API is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # scripting

    def script(self, entries: Sequence[Entry]) -> None:
        """Append entries: each answers the next main request."""
        with self._lock:
            self._script.extend(entries)

    @property
    def remaining(self) -> list[Entry]:
        """The entries not used yet."""
        with self._lock:
            return list(self._script)

    def _next_entry(self, kind: str, body: dict[str, Any]) -> Entry:
        if kind == "side":
            return self.side_entry
        if kind == "compact":
            return self.compact_entry
        handler = self.handler
        if handler is not None:
            entry = handler(body)
            if entry is not None:
                return entry
        with self._lock:
            if not self._script:
                return Text(self.final_text)
            entry = self._script[0]
            if isinstance(entry, Error) and entry.times != 1:
                if entry.times is not None:
                    self._script[0] = replace(entry, times=entry.times - 1)
                return entry
            return self._script.pop(0)

    def new_message_id(self) -> str:
        return f"msg_fake{next(self._ids):04d}{uuid.uuid4().hex[:16]}"

    # records

    def _record(self, request: Request) -> None:
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def _touch(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_for(
        self, predicate: Callable[[list[Request]], bool], timeout: float = 10.0
    ) -> list[Request]:
        """Block until `predicate(requests)` holds; AssertionError after `timeout` s.

        Blocking: from async code run it in a thread (`asyncio.to_thread`)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.requests)):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ", ".join(f"{r.method} {r.path} ({r.kind})" for r in self.requests)
                    raise AssertionError(
                        f"fake API: condition not met within {timeout}s; requests: {seen or 'none'}"
                    )
                self._changed.wait(min(left, 0.1))
            return list(self.requests)

    def wait_main(self, count: int = 1, timeout: float = 10.0) -> Request:
        """Wait until `count` main requests have arrived; return the `count`-th."""
        reqs = self.wait_for(lambda rs: sum(r.kind == "main" for r in rs) >= count, timeout)
        return [r for r in reqs if r.kind == "main"][count - 1]

    async def await_for(
        self, predicate: Callable[[list[Request]], bool], timeout: float = 10.0
    ) -> list[Request]:
        """`wait_for` for async tests (waits in a thread, the loop runs on)."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    async def await_main(self, count: int = 1, timeout: float = 10.0) -> Request:
        """`wait_main` for async tests."""
        return await asyncio.to_thread(self.wait_main, count, timeout)

    def of_kind(self, *kinds: str) -> list[Request]:
        return [r for r in list(self.requests) if r.kind in kinds]

    def main_requests(self) -> list[Request]:
        return self.of_kind("main")

    def unknown_requests(self) -> list[Request]:
        """Requests to paths the fake does not serve (a test may assert there are none)."""
        return self.of_kind("unknown")

    def models(self) -> list[str]:
        """The model of every /v1/messages request (main, compact and side), in order."""
        return [m for r in self.of_kind("main", "compact", "side") if (m := r.model)]

    # the helpers of the module, as methods for `fake_api.last_user_text(r)` etc.
    messages = staticmethod(messages)
    user_texts = staticmethod(user_texts)
    last_user_text = staticmethod(last_user_text)
    system_text = staticmethod(system_text)
    tool_names = staticmethod(tool_names)
    tool_results = staticmethod(tool_results)

    # usage

    def usage(self, body: Mapping[str, Any], output: Any) -> dict[str, Any]:
        """Usage like the real API's with prompt caching: everything before the last
        message counts as cached (created the first time this system prompt and tool
        list are seen, read afterwards); the last message is plain input."""
        msgs = messages(body)
        head = {"system": body.get("system"), "tools": body.get("tools"), "messages": msgs[:-1]}
        cached = estimate_tokens(head)
        key = system_text(body)[-4000:] + json.dumps(body.get("tools"))[:4000]
        with self._lock:
            seen = key in self._seen_prefixes
            self._seen_prefixes.add(key)
        created = 0 if seen else cached
        return {
            "input_tokens": estimate_tokens(msgs[-1] if msgs else ""),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": cached if seen else 0,
            "cache_creation": {
                "ephemeral_5m_input_tokens": created,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": estimate_tokens(output),
            "service_tier": "standard",
        }


# --- answering --------------------------------------------------------------------


class _ClientGone(Exception):
    pass


def _blocks(entry: Answer) -> list[dict[str, Any]]:
    """The content blocks of an answer, as in a non-streaming response."""
    if isinstance(entry, Text):
        return [{"type": "text", "text": entry.text}]
    if isinstance(entry, ToolUse):
        blocks: list[dict[str, Any]] = []
        if entry.text:
            blocks.append({"type": "text", "text": entry.text})
        blocks.append(
            {
                "type": "tool_use",
                "id": entry.id or f"toolu_fake{uuid.uuid4().hex[:20]}",
                "name": entry.name,
                "input": dict(entry.input),
            }
        )
        return blocks
    return [b for part in entry.blocks for b in _blocks(part)]


def _stop_reason(entry: Answer) -> str:
    if isinstance(entry, ToolUse):
        return "tool_use"
    if isinstance(entry, Blocks):
        if any(isinstance(b, ToolUse) for b in entry.blocks):
            return "tool_use"
        last = entry.blocks[-1] if entry.blocks else None
        return last.stop_reason if isinstance(last, Text) else "end_turn"
    return entry.stop_reason


def _chunks(text: str, size: int) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def _error_body(status: int, error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": f"req_fake{uuid.uuid4().hex[:20]}",
    }


class _RequestHandler(BaseHTTPRequestHandler):
    owner: FakeAnthropic
    protocol_version = "HTTP/1.1"
    server_version = "fake-anthropic/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the requests are recorded; no noise on stderr

    # plumbing

    def _read_body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _record(self, kind: str, body: Any) -> Request:
        headers = {
            k.lower(): "<redacted>" if k.lower() in SECRET_HEADERS else v
            for k, v in self.headers.items()
        }
        path, _, query = self.path.partition("?")
        request = Request(
            method=self.command,
            path=path,
            query=query,
            headers=headers,
            body=body,
            kind=kind,
            time=time.time(),
        )
        self.owner._record(request)
        return request

    def _send_json(
        self,
        status: int,
        payload: Any,
        head_only: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_fake{uuid.uuid4().hex[:20]}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def _client_gone(self) -> bool:
        """True when the client closed its end, or the server is stopping."""
        if self.owner._closing.is_set():
            return True
        sock: socket.socket = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
        return False

    def _sleep(self, seconds: float) -> None:
        """Sleep, but raise _ClientGone as soon as the client goes away."""
        deadline = time.monotonic() + seconds
        while True:
            if self._client_gone():
                raise _ClientGone
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.02))  # sleep-ok: paces a slow answer, checking the client

    def _write_chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone from exc

    def _event(self, payload: dict[str, Any]) -> None:
        name = payload["type"]
        self._write_chunk(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

    # verbs

    def do_HEAD(self) -> None:
        self._record("probe", None)
        self._send_json(200, {}, head_only=True)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("", "/") or path.startswith("/v1/"):
            self._record("probe", None)
            self._send_json(200, {})
            return
        self._record("unknown", None)
        self._send_json(404, _error_body(404, "not_found_error", f"Not found: {path}"))

    def do_POST(self) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        if path == "/v1/messages/count_tokens":
            self._record("count_tokens", body)
            payload = body if isinstance(body, dict) else {}
            count = {k: payload.get(k) for k in ("system", "tools", "messages")}
            self._send_json(200, {"input_tokens": estimate_tokens(count)})
            return
        if path != "/v1/messages":
            self._record("unknown", body)
            self._send_json(404, _error_body(404, "not_found_error", f"Not found: {path}"))
            return
        kind = classify(body)
        request = self._record(kind, body)
        payload = body if isinstance(body, dict) else {}
        wanted = self.owner.require_api_key
        if wanted is not None and self.headers.get("x-api-key") != wanted:
            request.entry = Error(401, "invalid x-api-key")
            self._send_json(401, _error_body(401, "authentication_error", "invalid x-api-key"))
            request.done = True
            self.owner._touch()
            return
        try:
            entry = self.owner._next_entry(kind, payload)
            request.entry = entry
            self._answer(request, payload, entry)
        except _ClientGone:
            request.aborted = True
            self.close_connection = True
        finally:
            request.done = True
            self.owner._touch()

    # answers

    def _answer(self, request: Request, body: dict[str, Any], entry: Entry) -> None:
        if isinstance(entry, Error):
            self._send_json(
                entry.status,
                _error_body(entry.status, entry.error_type, entry.message),
                headers=entry.headers,
            )
            return
        delay = 0.0
        if isinstance(entry, Slow):
            delay, entry = entry.seconds, entry.then
        message_id = self.owner.new_message_id()
        request.message_id = message_id
        blocks = _blocks(entry)
        usage = self.owner.usage(body, blocks)
        usage.update(entry.usage or {})
        model = str(body.get("model") or "claude-fake")
        if body.get("stream"):
            self._stream(request, message_id, model, blocks, _stop_reason(entry), usage, delay)
            return
        if delay:
            self._sleep(delay)
        self._send_json(
            200,
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": _stop_reason(entry),
                "stop_sequence": None,
                "usage": usage,
            },
        )

    def _stream(
        self,
        request: Request,
        message_id: str,
        model: str,
        blocks: list[dict[str, Any]],
        stop_reason: str,
        usage: dict[str, Any],
        delay: float,
    ) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", f"req_fake{uuid.uuid4().hex[:20]}")
        self.end_headers()
        self._event(
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 1},
                },
            }
        )
        self._event({"type": "ping"})
        # (block index, delta); a slow answer cuts its deltas small (20 or more).
        pieces: list[tuple[int, dict[str, Any]]] = []
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                text = block["text"]
                size = max(1, len(text) // 20) if delay else 64
                parts = list(_chunks(text, size)) or [""]
                pieces += [(index, {"type": "text_delta", "text": p}) for p in parts]
            else:
                raw = json.dumps(block["input"])
                size = max(1, len(raw) // 20) if delay else 64
                pieces += [
                    (index, {"type": "input_json_delta", "partial_json": p})
                    for p in _chunks(raw, size)
                ]
        pause = delay / max(1, len(pieces)) if delay else 0.0
        current: int | None = None
        for index, delta in pieces:
            if index != current:
                if current is not None:
                    self._event({"type": "content_block_stop", "index": current})
                current = index
                block = blocks[index]
                start = (
                    {"type": "text", "text": ""}
                    if block["type"] == "text"
                    else {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                )
                self._event({"type": "content_block_start", "index": index, "content_block": start})
            self._event({"type": "content_block_delta", "index": index, "delta": delta})
            request.deltas += 1
            self.owner._touch()
            if pause:
                self._sleep(pause)
        if current is not None:
            self._event({"type": "content_block_stop", "index": current})
        self._event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {k: v for k, v in usage.items() if k.endswith("_tokens")},
            }
        )
        self._event({"type": "message_stop"})
        self._write_chunk(b"")  # the last chunk: the connection stays open for the next request
