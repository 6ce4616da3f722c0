"""A small MCP server for the tests (the official SDK's MCPServer), over stdio or HTTP.

    python tests/agents/mcp_server.py                 # stdio
    python tests/agents/mcp_server.py --http PORT     # streamable HTTP on 127.0.0.1:PORT/mcp
    python tests/agents/mcp_server.py --name other    # another server with a clashing tool name
    python tests/agents/mcp_server.py --hang          # never answers its initialize
    python tests/agents/mcp_server.py --exit-at-start # fails before serving, with a message on stderr
    python tests/agents/mcp_server.py --odd-tool      # also a tool whose name a model cannot call
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build(name: str, odd_tool: bool = False) -> MCPServer:
    server = MCPServer(name)
    if odd_tool:

        @server.tool(name="notes.search")
        def search(words: str) -> str:
            """A name no OpenAI-style tool may have (a dot)."""
            return words

    @server.tool()
    def read_note(title: str) -> str:
        """The text of a note by its title."""
        notes = {"groceries": "eggs, flour, zq7-canary-note-body", "todo": "ship the release"}
        if title not in notes:
            raise ToolError(f"no note titled {title!r}")
        return notes[title]

    @server.tool()
    def add(a: int, b: int) -> int:
        """The sum of two integers."""
        return a + b

    @server.tool()
    def secret_env() -> str:
        """The value of NOTES_TOKEN in the server's environment."""
        return os.environ.get("NOTES_TOKEN", "(unset)")

    @server.tool()
    def crash() -> str:
        """Ends the server process."""
        os._exit(3)

    @server.tool()
    def big() -> str:
        """A long result."""
        return "y" * 20_000

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int)
    parser.add_argument("--name", default="notes")
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--exit-at-start", action="store_true")
    parser.add_argument("--odd-tool", action="store_true")
    args = parser.parse_args()
    if args.exit_at_start:
        print("notes server: cannot open the notes database (missing file notes.db)", file=sys.stderr)
        sys.exit(2)
    if args.hang:
        time.sleep(3600)
    server = build(args.name, args.odd_tool)
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
