"""One agent's harness: the turn loop around Claude Code, and its MCP tools.

`service` (run_harness: inbox → wake prompt → claude → events), `turns` (one
turn's events), `claude` (the CLI runner and stream-json parsing), `control`
(cancel_turn, kick from the bus), `prompts/` (jinja2), `mcp/` (the stdio tool
server Claude Code starts). It reaches c0re over the bus like any client.
"""
