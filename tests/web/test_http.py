"""The dashboard over HTTP against a real hive: who may in, what is refused and how, and
the JSON API's answers."""

from __future__ import annotations

import httpx
import pytest

from hyperhive.commands import verbs as v
from hyperhive.statedir import StateDir
from hyperhive.web import tokens
from hyperhive.web.errors import SIGN_IN
from tests.web.conftest import Dash, csrf_of, post_json, sign_in

pytestmark = pytest.mark.nats

PAGES = ["/", "/h/web", "/h/web/agents/alice", "/ui/h/web/snapshot", "/ui/h/web/feed"]
API_GETS = [
    "/api/hives",
    "/api/h/web/agents",
    "/api/h/web/questions",
    "/api/h/web/approvals",
    "/api/h/web/events",
    "/api/h/web/ports",
    "/api/h/web/stream",
    "/api/h/web/agents/alice/logs",
    "/api/h/web/agents/alice/login",
    "/schema/openapi.json",
]
API_POSTS = [
    "/api/h/web/agents",
    "/api/h/web/agents/alice/stop",
    "/api/h/web/agents/alice/purge",
    "/api/h/web/send",
    "/api/h/web/compose",
    "/api/h/web/questions/x/answer",
    "/api/h/web/approvals/x/approve",
    "/api/h/web/agents/alice/login/api-key",
]


async def test_without_a_session_only_login_and_static_files_answer(dash: Dash) -> None:
    async with httpx.AsyncClient(base_url=dash.url, timeout=30) as anon:
        for path in PAGES:
            r = await anon.get(path)
            assert r.status_code in (303, 401), (path, r.status_code)
            if r.status_code == 303:
                assert r.headers["location"].startswith("/login")
        for path in API_GETS:
            r = await anon.get(path)
            assert r.status_code == 401, (path, r.status_code)
            assert r.json() == {"ok": False, "error": SIGN_IN}
        page = await anon.get("/login")
        assert page.status_code == 200
        for path in API_POSTS:
            r = await anon.post(path, json={}, headers={"x-csrf-token": csrf_of(anon)})
            assert r.status_code == 401, (path, r.status_code)
        for path in ("/static/hive.css", "/static/live.js", "/static/login.js"):
            assert (await anon.get(path)).status_code == 200
    assert set(dash.live.core.state.agents) == {"manager", "alice", "bob"}


async def test_a_wrong_token_is_refused_and_a_new_token_signs_everyone_out(dash: Dash) -> None:
    async with httpx.AsyncClient(base_url=dash.url, timeout=30) as c:
        page = await c.get("/login")
        csrf = csrf_of(c)
        wrong = await c.post("/login", data={"token": "nope", "_csrf_token": csrf})
        assert wrong.status_code == 401
        assert "not the operator token" in wrong.text
        assert (await c.get("/api/h/web/agents")).status_code == 401
        assert page.status_code == 200
        await sign_in(c, dash.token)
        assert (await c.get("/api/h/web/agents")).status_code == 200
        state = StateDir.at(dash.live.cfg.state_dir)
        tokens.mint(state, sign_out=False)  # `hyperhive up` starting again: still signed in
        assert (await c.get("/api/h/web/agents")).status_code == 200
        fresh = tokens.mint(state, sign_out=True)  # `hyperhive token`: everyone signs in again
        assert (await c.get("/api/h/web/agents")).status_code == 401
        await sign_in(c, fresh)
        assert (await c.get("/api/h/web/agents")).status_code == 200


async def test_the_session_cookie_is_httponly_and_samesite_strict(dash: Dash) -> None:
    async with httpx.AsyncClient(base_url=dash.url, timeout=30) as c:
        await c.get("/login")
        r = await c.post(
            "/login", data={"token": dash.token, "_csrf_token": csrf_of(c), "next": "/h/web"}
        )
        cookie = next(
            h for h in r.headers.get_list("set-cookie") if h.startswith("hyperhive_session=")
        )
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert r.headers["location"] == "/h/web"
        evil = await c.post(
            "/login",
            data={"token": dash.token, "_csrf_token": csrf_of(c), "next": "//evil.example/"},
        )
        assert evil.headers["location"] == "/"


async def test_state_changing_requests_need_the_csrf_token_and_this_origin(
    client: httpx.AsyncClient, dash: Dash
) -> None:
    body = {"to": "alice", "body": "hi"}
    no_token = await client.post("/api/h/web/send", json=body, headers={"x-csrf-token": ""})
    assert no_token.status_code == 403
    forged = await client.post("/api/h/web/send", json=body, headers={"x-csrf-token": "f" * 128})
    assert forged.status_code == 403
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ):
        r = await client.post("/api/h/web/send", json=body, headers=headers)
        assert r.status_code == 403, headers
        assert "another site" in r.json()["error"]
    ok = await client.post("/api/h/web/send", json=body, headers={"origin": dash.url.rstrip("/")})
    assert ok.status_code == 200
    assert ok.json()["ok"] is True


async def test_hostile_and_unknown_names_get_one_line_refusals(
    client: httpx.AsyncClient, dash: Dash
) -> None:
    cases = {
        "/api/h/nope/agents/alice/stop": (404, "does not serve hive"),
        "/api/h/..%2F../agents/alice/stop": (404, "nothing here"),
        "/api/h/web/agents/%2E%2E/purge": (400, "invalid agent name"),
        "/api/h/web/agents/%2A/stop": (400, "invalid agent name"),
        "/api/h/web/agents/%3E/stop": (400, "invalid agent name"),
        "/api/h/web/agents/a%2Fb/destroy": (404, "nothing here"),
        "/api/h/web/agents/nobody/stop": (409, "unknown agent 'nobody'"),
        "/api/h/web/agents/alice/explode": (400, "action"),
        "/api/h/web/questions/nope/answer": (409, "an answer needs"),
        "/api/h/web/approvals/nope/approve": (409, "unknown approval 'nope'"),
        "/api/h/web/approvals/nope/maybe": (400, "decision"),
    }
    for path, (status, words) in cases.items():
        r = await post_json(client, path)
        assert r.status_code == status, (path, r.status_code, r.text)
        error = r.json()["error"]
        assert words in error, (path, error)
        assert "\n" not in error
    manager = await post_json(client, "/api/h/web/agents/manager/destroy")
    assert manager.status_code == 409
    assert "manager may not be destroyed" in manager.json()["error"]


async def test_bad_bodies_are_refused_before_anything_happens(client: httpx.AsyncClient) -> None:
    huge = await client.post(
        "/api/h/web/send",
        content=b'{"to":"alice","body":"' + b"x" * 400_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    for bad in (
        b"{not json",
        b'{"to": "alice"}',
        b'{"to": "alice", "body": "x", "extra": 1}',
        b"[]",
    ):
        r = await client.post(
            "/api/h/web/send", content=bad, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, bad
        assert r.json()["ok"] is False
        assert r.json()["error"].startswith("invalid request")
    too_long = await post_json(client, "/api/h/web/send", {"to": "alice", "body": "x" * 70_000})
    assert too_long.status_code == 400
    nothing = await post_json(client, "/api/h/web/compose", {"text": "no recipient here"})
    assert nothing.status_code == 400
    assert "@<agent>" in nothing.json()["error"]
    to_me = await post_json(client, "/api/h/web/compose", {"text": "@operator hi"})
    assert to_me.status_code == 400
    assert "your own inbox" in to_me.json()["error"]
    sent = await post_json(client, "/api/h/web/compose", {"text": "@bob: the build is green"})
    assert sent.status_code == 200
    assert sent.json()["result"]["to"] == "bob"


async def test_answering_twice_and_deciding_twice_are_refused(
    client: httpx.AsyncClient, dash: Dash
) -> None:
    await dash.live.op(v.Send(to="alice", body="ask:600:deploy now?"))
    qid = await _open_question(dash)
    first = await post_json(client, f"/api/h/web/questions/{qid}/answer", {"text": "yes"})
    assert first.status_code == 200
    second = await post_json(client, f"/api/h/web/questions/{qid}/answer", {"text": "no"})
    assert second.status_code == 409
    assert "already answered by operator" in second.json()["error"]
    asked = await dash.live.agent_says("manager", v.RequestSpawn(name="frank"))
    aid = asked["approval_id"]
    denied = await post_json(client, f"/api/h/web/approvals/{aid}/deny", {"note": "not today"})
    assert denied.status_code == 200
    assert denied.json()["result"]["status"] == "denied"
    again = await post_json(client, f"/api/h/web/approvals/{aid}/approve")
    assert again.status_code == 409
    assert "already denied" in again.json()["error"]


async def _open_question(dash: Dash) -> str:
    from tests.helpers import wait_until

    def find() -> str | None:
        for q in dash.live.core.state.questions.values():
            if q.status == "open":
                return q.question_id
        return None

    found = await wait_until(find, what="alice's question")
    assert isinstance(found, str)
    return found


async def test_the_read_api_says_what_hivectl_says(client: httpx.AsyncClient, dash: Dash) -> None:
    await dash.caught_up()
    ours = (await client.get("/api/h/web/agents")).json()["result"]
    theirs = await dash.live.op(v.ListAgents())
    assert [a["name"] for a in ours["agents"]] == [a["name"] for a in theirs["agents"]]
    for mine, c0re in zip(ours["agents"], theirs["agents"], strict=True):
        assert {k: mine[k] for k in ("state", "model", "port", "paused")} == {
            k: c0re[k] for k in ("state", "model", "port", "paused")
        }
    events = (
        await client.get("/api/h/web/events", params={"kind": "agent.started", "limit": 2})
    ).json()
    rows = events["result"]["events"]
    assert len(rows) == 2
    assert all(r["event"]["kind"] == "agent.started" for r in rows)
    assert rows[0]["seq"] < rows[1]["seq"]
    hives = (await client.get("/api/hives")).json()["result"]
    assert hives == {"hives": ["web"], "default": "web"}
    bad = await client.get("/api/h/web/events", params={"kind": "turn.$$$"})
    assert bad.status_code == 400


async def test_the_openapi_schema_documents_the_api(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/api/h/{hive}/agents",
        "/api/h/{hive}/agents/{name}/{action}",
        "/api/h/{hive}/questions/{question_id}/answer",
        "/api/h/{hive}/approvals/{approval_id}/{decision}",
        "/api/h/{hive}/stream",
        "/api/h/{hive}/agents/{name}/say",
    ):
        assert path in paths, path
    answer = paths["/api/h/{hive}/questions/{question_id}/answer"]["post"]
    assert "requestBody" in answer


async def test_logs_come_from_the_agents_harness_log(client: httpx.AsyncClient, dash: Dash) -> None:
    from tests.helpers import wait_until

    path = dash.live.state_dir / "agents" / "bob" / "harness.log"
    await wait_until(path.exists, what="bob's harness.log")
    with path.open("a") as f:
        f.write("the last line of bob\n")
    r = await client.get("/api/h/web/agents/bob/logs", params={"lines": 3})
    lines = r.json()["result"]["lines"]
    assert lines[-1] == "the last line of bob"
    assert len(lines) <= 3
    assert (
        await client.get("/api/h/web/agents/bob/logs", params={"lines": 100000})
    ).status_code == 400


async def test_too_many_wrong_tokens_are_slowed_down(dash: Dash) -> None:
    async with httpx.AsyncClient(base_url=dash.url, timeout=30) as c:
        await c.get("/login")
        csrf = csrf_of(c)
        statuses = [
            (await c.post("/login", data={"token": f"guess{i}", "_csrf_token": csrf})).status_code
            for i in range(32)
        ]
    assert statuses[:30] == [401] * 30
    assert statuses[-1] == 429


async def test_a_script_may_use_the_token_itself_as_a_bearer_token(dash: Dash) -> None:
    auth = {"authorization": f"Bearer {dash.token}"}
    async with httpx.AsyncClient(base_url=dash.url, timeout=30) as c:
        agents = await c.get("/api/h/web/agents", headers=auth)
        assert agents.status_code == 200
        assert {a["name"] for a in agents.json()["result"]["agents"]} == {"manager", "alice", "bob"}
        # no cookie, so no CSRF token: a browser never sends this header by itself
        sent = await c.post("/api/h/web/send", json={"to": "bob", "body": "scripted"}, headers=auth)
        assert sent.status_code == 200, sent.text
        assert "hyperhive_session" not in c.cookies
        wrong = await c.get("/api/h/web/agents", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"].startswith("that is not the operator token")
        forged = await c.post(
            "/api/h/web/send",
            json={"to": "bob", "body": "x"},
            headers={**auth, "sec-fetch-site": "cross-site"},
        )
        assert forged.status_code == 403
        tokens.mint(StateDir.at(dash.live.cfg.state_dir), sign_out=True)
        assert (await c.get("/api/h/web/agents", headers=auth)).status_code == 401
