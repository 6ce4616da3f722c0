"""Tools from MCP servers, for `Agent(tools=…)`, `ChatTurnout.bind_tools` and LangGraph nodes.

    async with MCPTools(["files"]) as servers:       # [mcp.servers.files] in turnout.toml
        agent = Agent("helper", tools=servers.tools())
        await agent.run("What is in notes.txt?")

Each server is started once (a `command` over stdio, or a `url` over streamable HTTP, with
environment variables and headers taken from variables named in config), kept by one task
that owns its connection, restarted after a crash (`max_restarts`, then a clear error), and
shut down when the block ends. Its tools become turnout `Tool`s: each call is an
`execute_tool` span naming the server, recorded and replayed like any tool call, its
result `tool_output` to the egress guard. A tool whose schema cannot be used is skipped
with a warning naming it; two servers' tools of one name are both prefixed with their
server's name (`files__read`). Where a server runs decides its locality (stdio and loopback
are local, any other URL remote; `locality` in config overrides), and under `local-only` a
remote server is refused before anything starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from turnout.agents.tools import Tool
from turnout.config import MCPServerConfig, Settings, get_settings
from turnout.engines import tag
from turnout.engines.privacy import mcp_server_locality
from turnout.engines.schema_bounds import check_schema
from turnout.engines.tool_calls import ToolSpec
from turnout.errors import ConfigError, EgressRefused, TurnoutError, UserError

logger = logging.getLogger("turnout")
STDERR_TAIL = 2_000


class MCPServerError(TurnoutError):
    """An MCP server could not be started, answered nothing in time, or kept failing."""


@dataclass
class _Request:
    name: str
    arguments: dict[str, Any]
    answer: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MCPConnection:
    """One server's connection, owned by one task: started, restarted after a crash, closed."""

    def __init__(self, name: str, config: MCPServerConfig) -> None:
        self.name = name
        self.config = config
        self.listed: list[Any] = []
        self._requests: asyncio.Queue[_Request | None] = asyncio.Queue()
        self._ready: asyncio.Future[None] | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        self.restarts = 0
        self.gone: TurnoutError | None = None  # why the server was given up

    async def start(self) -> None:
        self._ready = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own(), name=f"mcp-{self.name}")
        await self._ready

    async def close(self) -> None:
        if self._owner is not None and not self._owner.done():
            await self._requests.put(None)
            try:
                await asyncio.wait_for(self._owner, timeout=self.config.timeout_s)
            except (TimeoutError, asyncio.CancelledError):
                self._owner.cancel()
        self._stderr.close()

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if self.gone is not None:
            raise self.gone
        if self._owner is None or self._owner.done():
            raise MCPServerError(f"MCP server {self.name} is not running")
        request = _Request(name, arguments)
        await self._requests.put(request)
        return await asyncio.wait_for(request.answer, timeout=self.config.timeout_s)

    async def _own(self) -> None:
        """Hold the connection; on a crash reconnect (up to max_restarts), then fail every call."""
        while True:
            try:
                await self._serve()
                return  # closed on request
            except Exception as exc:  # the server died or never started
                failure = self._failure(exc)
                if self._ready is not None and not self._ready.done():
                    self._ready.set_exception(failure)
                    return
                if self.restarts >= self.config.max_restarts:
                    logger.warning("MCP server %s failed %d time(s) and is given up: %s", self.name, self.restarts + 1, failure)
                    self.gone = MCPServerError(f"{failure} (given up after {self.restarts} restart(s))")
                    self._fail_waiting(self.gone)
                    return
                self.restarts += 1
                logger.warning("MCP server %s failed (%s); restarting it (%d of %d)", self.name, failure,
                               self.restarts, self.config.max_restarts)

    async def _serve(self) -> None:
        from mcp import Client

        async with Client(self._transport(), read_timeout_seconds=self.config.timeout_s) as client:
            async with asyncio.timeout(self.config.timeout_s):
                listed = await client.list_tools()
            self.listed = list(listed.tools)
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            while True:
                request = await self._requests.get()
                if request is None:
                    return
                try:
                    result = await client.call_tool(request.name, request.arguments,
                                                    read_timeout_seconds=self.config.timeout_s)
                except Exception as exc:
                    if not request.answer.done():
                        request.answer.set_exception(exc)
                    if _connection_lost(exc):
                        raise
                    continue
                if not request.answer.done():
                    request.answer.set_result(result)

    def _transport(self) -> Any:
        config = self.config
        if config.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=config.command[0], args=config.command[1:], cwd=config.cwd,
                                           env={key: _variable(self.name, var) for key, var in config.env.items()} or None)
            return stdio_client(params, errlog=self._stderr)  # type: ignore[arg-type]
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        headers = {key: _variable(self.name, var) for key, var in config.headers.items()}
        http = httpx2.AsyncClient(headers=headers, timeout=config.timeout_s)
        return streamable_http_client(config.url or "", http_client=http)

    def _failure(self, exc: BaseException) -> TurnoutError:
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # anyio's task groups wrap what failed
            exc = exc.exceptions[0]
        if isinstance(exc, (MCPServerError, UserError)):  # config that cannot work: said as it is
            return exc
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError) or "timed out" in str(exc):
            what = f"no answer within {self.config.timeout_s:g}s" + (f" ({exc})" if str(exc) else "")
        where = " ".join(self.config.command) if self.config.command else self.config.url
        tail = self._stderr_tail()
        return MCPServerError(f"MCP server {self.name} ({where}) failed: {what}" + (f"; its stderr ends:\n{tail}" if tail else ""))

    def _stderr_tail(self) -> str:
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            return self._stderr.read()[-STDERR_TAIL:].strip()
        except (OSError, ValueError):
            return ""

    def _fail_waiting(self, failure: BaseException) -> None:
        while not self._requests.empty():
            request = self._requests.get_nowait()
            if request is not None and not request.answer.done():
                request.answer.set_exception(failure)


class MCPTools:
    """The tools of the named MCP servers (all of `[mcp.servers]` by default), while the
    `async with` block lasts."""

    def __init__(self, servers: Sequence[str] | None = None, *, settings: Settings | None = None,
                 max_result_chars: int = 8_000) -> None:
        self.settings = settings or get_settings()
        configured = self.settings.mcp.servers
        names = list(configured) if servers is None else list(servers)
        for name in names:
            if name not in configured:
                known = ", ".join(sorted(configured)) or "none"
                raise UserError(f"no MCP server named {name!r} in [mcp.servers] (configured: {known}); "
                                f"add [mcp.servers.{name}] with command = [...] or url = \"…\"")
        self.connections = {name: MCPConnection(name, configured[name]) for name in names}
        self.max_result_chars = max_result_chars
        self._tools: list[Tool] = []

    async def __aenter__(self) -> MCPTools:
        self._check_policy()
        try:
            await asyncio.gather(*(c.start() for c in self.connections.values()))
        except BaseException:
            await self.aclose()
            raise
        self._tools = self._build_tools()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections.values()), return_exceptions=True)

    def tools(self) -> list[Tool]:
        return list(self._tools)

    def _check_policy(self) -> None:
        mode, _ = self.settings.policy.for_role(None)
        for name, connection in self.connections.items():
            if mode == "local-only" and mcp_server_locality(connection.config, self.settings) == "remote":
                raise EgressRefused(
                    f"egress refused: MCP server {name} ({connection.config.url}) is remote and privacy policy "
                    "local-only allows no remote call; nothing was started. Use a local server, or add its host "
                    "to [policy] local_hosts", role=None, model=f"mcp/{name}", policy=mode, part=None, report=None)

    def _build_tools(self) -> list[Tool]:
        seen: dict[str, int] = {}
        for connection in self.connections.values():
            for listed in connection.listed:
                seen[listed.name] = seen.get(listed.name, 0) + 1
        tools = []
        for server, connection in self.connections.items():
            for listed in connection.listed:
                name = f"{server}__{listed.name}" if seen[listed.name] > 1 else listed.name
                try:
                    spec = ToolSpec(name=name, description=listed.description or "", parameters=dict(listed.input_schema))
                    check_schema(spec.parameters)
                except Exception as exc:
                    logger.warning("MCP server %s: tool %r is skipped, its schema cannot be used: %s", server, listed.name, exc)
                    continue
                tools.append(Tool.remote(spec, _caller(connection, listed.name), timeout_s=connection.config.timeout_s,
                                         max_result_chars=self.max_result_chars,
                                         span_attributes={"turnout.mcp.server": server}))
        return tools


def _caller(connection: MCPConnection, name: str) -> Any:
    async def call(arguments: dict[str, Any]) -> Any:
        result = await connection.call(name, arguments)
        text = "\n".join(_text(block) for block in result.content)
        if result.is_error:
            raise MCPToolError(text or "the tool reported an error")
        return tag.tool_output(text, origin=f"mcp {connection.name}/{name}")

    return call


class MCPToolError(Exception):
    """A tool of an MCP server reported an error (the model is told its text)."""


def _text(block: Any) -> str:
    if getattr(block, "type", None) == "text":
        return str(block.text)
    return f"[{getattr(block, 'type', 'content')} content not shown]"


def _variable(server: str, name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(f"MCP server {server}: environment variable {name} is not set (config names it)")
    return value


def _connection_lost(exc: BaseException) -> bool:
    """Whether a call failed because the connection to its server is gone (a crash)."""
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED

    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(exc, (ConnectionError, EOFError, OSError)) or type(exc).__name__ in (
        "ClosedResourceError", "BrokenResourceError", "EndOfStream")
