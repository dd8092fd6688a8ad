"""The MCP tool server: hyperhive's verbs as tools for Claude Code (stdio)."""
