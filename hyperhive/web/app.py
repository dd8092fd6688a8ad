"""`create_app`: the dashboard as a litestar application.

    app = create_app(cfg, hub, logins)

The hub (NATS, every hive's folded state) and the login flows are made by the
caller and put on `app.state`; handlers get them through `deps`. Pages are
jinja2 templates, the JSON API is documented by the OpenAPI schema at
`/schema/openapi.json`, the live stream is server-sent events.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.logging import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from hyperhive import __version__
from hyperhive.config import HiveConfig
from hyperhive.statedir import StateDir
from hyperhive.web import render
from hyperhive.web.api import API_HANDLERS
from hyperhive.web.deps import DEPENDENCIES, Dashboard
from hyperhive.web.errors import HANDLERS
from hyperhive.web.hives import Hub
from hyperhive.web.login import LoginFlows
from hyperhive.web.pages import PAGE_HANDLERS
from hyperhive.web.security import (
    CsrfUnlessBearer,
    Generations,
    SecurityMiddleware,
    csrf_config,
    session_auth,
)
from hyperhive.web.sse import stream

STATIC_DIR = Path(__file__).with_name(render.STATIC)
MAX_BODY = 256 * 1024  # a message body is at most 64 KiB; nothing the pages send is larger


def create_app(cfg: HiveConfig, hub: Hub, logins: LoginFlows) -> Litestar:
    state_dir = StateDir.at(cfg.state_dir)
    auth = session_auth(state_dir, Generations(state_dir))
    env = render.environment()
    return Litestar(
        route_handlers=[
            *PAGE_HANDLERS,
            *API_HANDLERS,
            stream,
            create_static_files_router(path="/static", directories=[STATIC_DIR]),
        ],
        dependencies=DEPENDENCIES,
        state=State({"dashboard": Dashboard(cfg, hub, state_dir, logins)}),
        middleware=[
            DefineMiddleware(SecurityMiddleware),
            auth.middleware,
            DefineMiddleware(CsrfUnlessBearer, config=csrf_config(state_dir)),
        ],
        exception_handlers=HANDLERS,
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(env)),
        openapi_config=OpenAPIConfig(
            title="hyperhive dashboard",
            version=__version__,
            description="The JSON API behind the operator dashboard (session cookie + CSRF header).",
            path="/schema",
            use_handler_docstrings=True,
            render_plugins=[JsonRenderPlugin()],
        ),
        request_max_body_size=MAX_BODY,
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        debug=False,
    )
