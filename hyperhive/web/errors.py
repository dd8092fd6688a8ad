"""Refusals as HTTP: one JSON line for the API, a redirect to sign in for pages.

    {"ok": false, "error": "<one line a person can act on>"}

A `HyperhiveError` carries its own status (`http_status`: 400 a bad name, 404
an unknown hive, 409 a refusal by c0re, 503 no NATS); a body that does not fit
its struct is 400; no session is 401 for the API and a redirect to `/login` for
a page; a failed CSRF check is 403. Nothing else escapes as a traceback: an
unexpected error is logged and answered 500 with its one-line reason.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect

from hyperhive.errors import HyperhiveError

log = logging.getLogger("hyperhive.web")


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    return not path.startswith(("/api/", "/ui/", "/schema")) and request.method == "GET"


def refusal(status: int, error: str) -> Response[dict[str, Any]]:
    return Response(
        {"ok": False, "error": " ".join(error.split())[:2000] or "refused"},
        status_code=status,
        media_type=MediaType.JSON,
    )


def on_hyperhive_error(_: Request[Any, Any, Any], exc: HyperhiveError) -> Response[Any]:
    return refusal(exc.http_status, str(exc))


def on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    details = "; ".join(
        f"{e.get('key') or ''}: {e.get('message')}".strip(": ")
        for e in extra
        if isinstance(e, dict)
    )
    return refusal(400, f"invalid request: {details or exc.detail}")


SIGN_IN = (
    "sign in first: the operator token opens a session at /login "
    "(or send it as `Authorization: Bearer <token>`)"
)


def on_not_authorized(
    request: Request[Any, Any, Any], exc: NotAuthorizedException
) -> Response[Any]:
    if _wants_page(request) and "authorization" not in request.headers:
        target = quote(request.url.path, safe="/")
        return Redirect(f"/login?next={target}", status_code=303)
    if exc.detail == "that is not the operator token":
        return refusal(401, f"{exc.detail}: `hyperhive token` makes a new one")
    return refusal(401, SIGN_IN)


def on_forbidden(_: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Any]:
    return refusal(403, f"refused: {exc.detail}")


def on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"nothing here: {request.url.path[:200]}"
    elif exc.status_code == 400 and not detail.startswith("invalid request"):
        detail = f"invalid request: {detail}"
    return refusal(exc.status_code, detail)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("dashboard: %s %s failed", request.method, request.url.path, exc_info=exc)
    return refusal(500, f"the dashboard failed: {type(exc).__name__}: {exc}")


HANDLERS: dict[type[Exception] | int, Any] = {
    HyperhiveError: on_hyperhive_error,
    ValidationException: on_validation,
    NotAuthorizedException: on_not_authorized,
    PermissionDeniedException: on_forbidden,
    HTTPException: on_http,
    Exception: on_unexpected,
}
