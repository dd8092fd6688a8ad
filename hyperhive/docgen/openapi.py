"""`docs/openapi.json` and `docs/api.md`: the dashboard's JSON API, from litestar's own schema.

The app is built as `hyperhive dashboard` builds it (in a throwaway state dir: it
makes a session key there), and its OpenAPI document is written out whole; the
Markdown page is a table of every path and method with the handler's docstring.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

from hyperhive.config import HiveConfig
from hyperhive.docgen.fields import GENERATED_NOTE
from hyperhive.statedir import StateDir
from hyperhive.web import render
from hyperhive.web.app import create_app
from hyperhive.web.hives import Hub
from hyperhive.web.login import LoginFlows

METHODS = ("get", "post", "put", "patch", "delete")


def openapi_schema() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hyperhive-docgen-") as tmp:
        cfg = HiveConfig(state_dir=tmp)
        state = StateDir.at(tmp)
        app = create_app(
            cfg, Hub(cfg, render.Parts(render.environment())), LoginFlows(state, "claude")
        )
        schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def render_openapi_json() -> str:
    return json.dumps(openapi_schema(), indent=2, sort_keys=True) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_api_md() -> str:
    schema = openapi_schema()
    rows = []
    for path, item in sorted(schema["paths"].items()):
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            what = op.get("description") or op.get("summary") or ""
            rows.append(f"| `{method.upper()}` | `{path}` | {_cell(what)} |")
    return "\n".join(
        [
            GENERATED_NOTE,
            "",
            "# The dashboard's JSON API",
            "",
            "What the dashboard's pages call, and what a script may call: with the operator "
            "token as `Authorization: Bearer <token>` on every request, or with a browser's "
            "session (signed in at `/login`, the `hyperhive_csrf` cookie's value as the "
            "`x-csrf-token` header on every POST). Every answer is "
            '`{"ok": true, "result": {...}}` or `{"ok": false, "error": "<one line>"}` with '
            "400 (a bad name or body), 401 (no session), 403 (CSRF, another site), 404 (no such "
            "hive), 409 (refused by c0re, with its reason), 413 (a body over 256 KiB) or 503 (no "
            "NATS). The whole OpenAPI document is [openapi.json](openapi.json); a running "
            "dashboard serves it at `/schema/openapi.json`. See [dashboard.md](dashboard.md).",
            "",
            "| method | path | what |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )


GENERATED = {"docs/openapi.json": render_openapi_json, "docs/api.md": render_api_md}
