"""`turnout mcp`: the team's local sub-agents and turnout's tools, served to MCP clients."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from turnout.cli._common import ConfigOption, PolicyOption, errors, fail, settings_from
from turnout.errors import TurnoutError


def mcp(
    repo: Annotated[list[Path], typer.Option("--repo", help="Repository to serve (repeatable; the first is the default).")],
    http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="With --http: address to bind (off loopback a key is needed).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --http: port to bind.")] = 8765,
    api_key: Annotated[str | None, typer.Option("--api-key", help="With --http: the Bearer key clients must send "
                                                "(or TURNOUT_MCP_API_KEY).")] = None,
    client: Annotated[str, typer.Option(help="Where the client runs: remote (a cloud assistant; the privacy policy "
                                        "applies to every result) or local.")] = "remote",
    ask_role: Annotated[str, typer.Option(help="The local role that answers ask_local.")] = "retriever",
    policy: PolicyOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve turnout's tools over MCP (stdio by default): search_code, find_symbol, ask_local,
    plan_refactor, run_refactor, run_tests — results under the privacy policy."""
    from turnout.serve.mcp import LentTools, build_mcp_server, http_app

    if client not in ("remote", "local"):
        raise fail(TurnoutError(f"--client {client!r}: say remote or local"))
    try:
        settings = settings_from(config, policy=policy)
        tools = LentTools(repo, client=client, ask_role=ask_role, settings=settings)  # type: ignore[arg-type]
        server = build_mcp_server(tools)
        key = api_key or os.environ.get("TURNOUT_MCP_API_KEY") or None
        app = http_app(server, host=host, api_key=key) if http else None
    except TurnoutError as exc:
        raise fail(exc) from None
    mode = settings.policy.for_role(None)[0]
    if app is None:
        errors.print(f"turnout mcp · stdio · {escape(str(tools.repos[0]))} · policy {mode} for a {client} client",
                     style="dim", highlight=False)
        server.run()
        return
    import uvicorn

    errors.print(f"[bold]turnout mcp[/] · [cyan]http://{escape(host)}:{port}/mcp[/] · {escape(str(tools.repos[0]))} · "
                 f"policy {mode} for a {client} client · key {'required' if key else 'none (loopback only)'}",
                 highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
