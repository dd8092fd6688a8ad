"""A tiny stdio MCP server for the CLI tests: one tool, `echo(text) -> text`.

Run it by path: `python tests/harness/echo_mcp_server.py`. With `ECHO_MCP_LOG` set,
each call appends its text to that file, so a test can see the tool really ran.
The result is plain text (no structuredContent: given both, the CLI passes the
structured JSON, `{"result": "ping"}`, to the model instead of the text).
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server: MCPServer[object] = MCPServer("t")


@server.tool(structured_output=False)
def echo(text: str) -> str:
    """Return the text unchanged."""
    log = os.environ.get("ECHO_MCP_LOG")
    if log:
        with Path(log).open("a", encoding="utf-8") as f:
            f.write(text + "\n")
    return text


if __name__ == "__main__":
    server.run("stdio")
