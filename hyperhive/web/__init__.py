"""The operator dashboard and the agents' pages (litestar, jinja2, server-sent events)."""
