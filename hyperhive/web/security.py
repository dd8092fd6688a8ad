"""Who may use the dashboard, and what a page may do in the browser.

* The operator token (printed by `hyperhive up`, stored hashed: `tokens`) is
  exchanged once at `/login` for a sealed session cookie (HttpOnly,
  SameSite=Strict) that names the token generation it was issued under;
  `hyperhive token` starts a new generation and every session ends.
* A script may instead send the token itself, `Authorization: Bearer <token>`,
  on every request (no cookie, so no CSRF token either: a browser never adds
  that header on its own).
* Without a session or the token, pages redirect to `/login` and the API
  answers 401; only `/login` and `/static/` are open.
* Every state-changing request carries the CSRF token (litestar's CSRF
  middleware, header `x-csrf-token`), and one that says it comes from another
  site (`Origin`, `Sec-Fetch-Site`) is refused before anything else.
* Every response carries a Content-Security-Policy without inline script,
  `nosniff`, a same-origin referrer policy and no framing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.authentication import AuthenticationResult
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.security.session_auth import SessionAuth
from litestar.security.session_auth.middleware import SessionAuthMiddleware
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from hyperhive.statedir import StateDir
from hyperhive.web import tokens

SESSION_COOKIE = "hyperhive_session"
CSRF_COOKIE = "hyperhive_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_MAX_AGE = 7 * 24 * 3600
OPEN_PATHS = ["^/login$", "^/static/"]
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class Generations:
    """The current sign-in generation, read from the token file when it changes."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self._seen: tuple[float, int] | None = None
        self._generation: str | None = None

    def current(self) -> str | None:
        path = self.state.operator_token
        try:
            st = os.stat(path)
            stamp = (st.st_mtime, st.st_ino)
        except OSError:
            return None
        if stamp != self._seen:
            self._generation = tokens.current_generation(self.state)
            self._seen = stamp
        return self._generation


class TokenCheck:
    """Is this the operator token? (the stored hash read again only when the file changes)"""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self._seen: tuple[float, int] | None = None
        self._record: tokens.TokenRecord | None = None

    def __call__(self, presented: str) -> bool:
        try:
            st = os.stat(self.state.operator_token)
        except OSError:
            return False
        if (st.st_mtime, st.st_ino) != self._seen:
            self._record = tokens.read_record(self.state)
            self._seen = (st.st_mtime, st.st_ino)
        record = self._record
        if record is None or not presented or len(presented) > tokens.MAX_TOKEN:
            return False
        return hmac.compare_digest(tokens.digest(presented), record.sha256)


BEARER = "bearer"


def _auth_middleware(check: TokenCheck) -> type[SessionAuthMiddleware]:
    class OperatorAuth(SessionAuthMiddleware):
        """A session cookie, or the operator token as a bearer token (scripts)."""

        async def authenticate_request(
            self, connection: ASGIConnection[Any, Any, Any, Any]
        ) -> AuthenticationResult:
            header = connection.headers.get("authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() == BEARER:
                if check(value.strip()):
                    return AuthenticationResult(user="operator", auth=BEARER)
                raise NotAuthorizedException("that is not the operator token")
            return await super().authenticate_request(connection)

    return OperatorAuth


def session_auth(state: StateDir, generations: Generations) -> SessionAuth[Any, Any]:
    async def operator(session: dict[str, Any], _conn: ASGIConnection[Any, Any, Any, Any]) -> Any:
        gen = generations.current()
        seen = session.get("gen")
        if gen is not None and isinstance(seen, str) and hmac.compare_digest(seen, gen):
            return "operator"
        return None

    cookie = CookieBackendConfig(
        secret=tokens.session_key(state),
        key=SESSION_COOKIE,
        httponly=True,
        samesite="strict",
        max_age=SESSION_MAX_AGE,
    )
    return SessionAuth(
        session_backend_config=cookie,
        retrieve_user_handler=operator,
        exclude=OPEN_PATHS,
        authentication_middleware_class=_auth_middleware(TokenCheck(state)),
    )


def csrf_config(state: StateDir) -> CSRFConfig:
    secret = hashlib.sha256(b"hyperhive-csrf" + tokens.session_key(state)).hexdigest()
    return CSRFConfig(
        secret=secret,
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_httponly=True,
        cookie_samesite="strict",
    )


class CsrfUnlessBearer:
    """litestar's CSRF middleware, for every request but one signed with the bearer token."""

    def __init__(self, app: ASGIApp, config: CSRFConfig) -> None:
        self.app = app
        self.csrf = CSRFMiddleware(app=app, config=config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("auth") == BEARER:
            await self.app(scope, receive, send)
        else:
            await self.csrf(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cross_site(scope: Scope) -> str | None:
    """Why an unsafe request comes from another site, or None if it doesn't.

    A browser says where a request comes from in `Sec-Fetch-Site`; only
    `same-origin` (and `none`, typed by the user) may change anything. Without
    it, `Origin` must be this dashboard's own.
    """
    fetch_site = _header(scope, b"sec-fetch-site")
    if fetch_site is not None:
        return None if fetch_site in ("same-origin", "none") else f"Sec-Fetch-Site is {fetch_site}"
    origin = _header(scope, b"origin")
    if origin is None:
        return None
    host = _header(scope, b"host")
    if origin == "null" or host is None:
        return "Origin is null"
    if origin.split("://", 1)[-1] != host:
        return f"Origin {origin[:100]} is not this dashboard"
    return None


class SecurityMiddleware:
    """Security headers on every response; cross-site unsafe requests refused at the door."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS:
                    headers[name.decode()] = value.decode()
                if "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
            await send(message)

        why = cross_site(scope) if scope.get("method") in UNSAFE else None
        if why is not None:
            body = (
                b'{"ok":false,"error":"refused: a request from another site ('
                + why.encode("latin-1", "replace").replace(b'"', b"'")
                + b')"}'
            )
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
            await with_headers(start)
            end: HTTPResponseBodyEvent = {
                "type": "http.response.body",
                "body": body,
                "more_body": False,
            }
            await send(end)
            return
        await self.app(scope, receive, with_headers)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this dashboard, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target[:512]
