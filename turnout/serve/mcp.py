"""`turnout mcp`: the team's local sub-agents and turnout's tools, lent to any MCP client.

    turnout mcp --repo .                          # stdio: the command line a coding assistant runs
    turnout mcp --repo . --http --port 8765       # streamable HTTP on loopback

Tools, over one repository (`--repo`, several allowed; each tool takes `repo` to choose):
`search_code`, `find_symbol`, `ask_local` (a question answered by a local role over the
code: the code stays here, the answer goes back), `plan_refactor` / `run_refactor` (a
verified patch from the refactoring graph) and `run_tests` (in a copy; counts and failures).

The client is usually a cloud assistant, so the privacy policy applies to every result
(`turnout.engines.privacy.release`): the client is `remote` unless declared `--client local`,
the policy is `no-code` unless config chose one, and under `no-code` a result holds paths, signatures, summaries written by local agents and
test counts, never source text or diffs (they are rewritten by `[policy] on_forbidden`).
Each call is an `execute_tool` span with its egress record (`turnout.egress.*`), so
`turnout trace summary` shows what the client was given. Off loopback the HTTP transport
needs a key; a repository outside `TURNOUT_REPO_ROOTS` (or, without it, the `--repo` ones)
is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from turnout.agents import Agent
from turnout.agents.repository_tools import RepositoryTools
from turnout.config import Settings, get_settings
from turnout.engines import tag
from turnout.engines.privacy import EgressReport, deployments, own_locality, release
from turnout.engines.tag import Part, Tagged
from turnout.errors import BudgetExceeded, ConfigError, EgressRefused, TurnoutError, UserError
from turnout.graphs.server import REPO_ROOTS_ENV, repo_roots
from turnout.telemetry._spans import mark_error, tool_span

Client = Literal["remote", "local"]


class LentTools:
    """The tools `turnout mcp` serves, as plain async functions (the MCP server wraps them)."""

    def __init__(self, repos: Sequence[Path | str], *, client: Client = "remote", ask_role: str = "retriever",
                 settings: Settings | None = None) -> None:
        if not repos:
            raise UserError("give the repository to serve: turnout mcp --repo DIR")
        settings = settings or get_settings()
        # what a remote client is given follows no-code unless config chose a policy, as refactoring does
        self.settings = settings if settings.policy_configured or client == "local" else settings.with_policy("no-code")
        self.client: Client = client
        self.ask_role = ask_role
        self.repos = [_checked_dir(Path(r)) for r in repos]
        self._roots = _allowed_roots(self.repos)
        if client == "remote" and self.settings.policy.for_role(None)[0] == "local-only":
            raise ConfigError("privacy policy local-only lets nothing leave this machine, and the MCP client is "
                              "remote: declare it local (--client local) if it runs here, or use another policy")

    def repo(self, repo: str | None) -> Path:
        """The repository a call names (the first `--repo` by default), when it may be served."""
        if repo is None:
            return self.repos[0]
        resolved = Path(repo).expanduser().resolve()
        if not any(resolved == root or root in resolved.parents for root in self._roots):
            shown = os.environ.get(REPO_ROOTS_ENV) or os.pathsep.join(str(r) for r in self.repos)
            raise UserError(f"repository {repo!r} is outside the ones this server works on ({shown}); "
                            "ask for one under those")
        return _checked_dir(resolved)

    async def served(self, name: str, work: Callable[[], Awaitable[Tagged | Part]]) -> str:
        """One call under its `execute_tool` span: its result released to the client under the
        policy, the egress record on the span."""
        with tool_span(name, **{"turnout.mcp.client": self.client}) as span:
            try:
                content = tag.as_tagged(await work())
                released, report = await release(content, self.settings, client=self.client, what=f"{name}'s result")
            except EgressRefused as exc:
                if isinstance(exc.report, EgressReport):
                    span.set_attributes(exc.report.attributes())
                mark_error(span, "EgressRefused", str(exc))
                raise
            except TurnoutError as exc:
                mark_error(span, type(exc).__name__, str(exc))
                raise
            span.set_attributes(report.attributes())
            return str(released)

    # --- the tools ----------------------------------------------------------------------

    async def search_code(self, query: str, limit: int = 5, repo: str | None = None) -> Tagged:
        return RepositoryTools(self.repo(repo)).search_code(query, limit)

    async def find_symbol(self, name: str, repo: str | None = None) -> Tagged:
        return RepositoryTools(self.repo(repo)).find_symbol(name)

    async def ask_local(self, question: str, repo: str | None = None) -> Part:
        root = self.repo(repo)
        config = self.settings.roles.get(self.ask_role)
        if own_locality(deployments(self.ask_role, config.model, config.api_base, self.settings)) != "local":
            raise UserError(f"role {self.ask_role} runs remotely ({config.model}): ask_local answers only on a local "
                            "model; point the role at one, or start turnout mcp with --ask-role NAME")
        agent: Agent[Any] = Agent("ask_local", model=self.ask_role, tools=RepositoryTools(root).reading(), max_turns=4,
                      max_tokens=256, settings=self.settings,
                      instructions="Answer the question about this repository: look the code up with the tools, "
                                   "then answer in at most three sentences, naming files and functions.")
        try:
            result = await agent.run(question)
        except BudgetExceeded as exc:
            return tag.summary(f"unanswered: {exc}", origin=f"local role {self.ask_role}")
        return tag.summary(result.text or "unanswered: the local model gave no answer", origin=f"local role {self.ask_role}")

    async def plan_refactor(self, request: str, repo: str | None = None) -> Part:
        from turnout.tools.operations.phrasing import read_request

        self.repo(repo)
        reading = read_request(request)
        if not reading.operations:
            return tag.summary("no operation read from the request's words; run_refactor would ask the planner model"
                               + (f" (not understood: {'; '.join(reading.problems)})" if reading.problems else ""))
        lines = [json.dumps(op) for op in reading.operations]
        lines += [f"not covered: {piece}" for piece in reading.unread_changes()]
        return tag.summary("\n".join(lines), origin="turnout's reading of the request")

    async def run_refactor(self, request: str, repo: str | None = None) -> Tagged:
        from turnout.graphs.refactor_run import run_refactor

        root = self.repo(repo)
        state = await run_refactor(root, request, settings=self.settings)
        parts: list[Part | Tagged] = [
            tag.instructions(f"status: {state.get('status')}\n"),
            tag.summary(f"reason: {state.get('reason') or '-'}\n"),
            tag.path("changed: " + (", ".join(state.get("changed_files") or []) or "nothing") + "\n"),
        ]
        patch = Path(state["patch"]).resolve() if state.get("patch") else None
        if patch is not None:
            parts.append(tag.path(f"patch: {patch}\n"))
            text = patch.read_text(encoding="utf-8", errors="replace") if patch.is_file() else ""
            if text:
                parts.append(tag.diff(text, origin=str(patch)))
        return tag.join(parts, "")

    async def run_tests(self, test_ids: list[str] | None = None, repo: str | None = None) -> Tagged:
        tools = RepositoryTools(self.repo(repo))
        try:
            return await tools.run_tests(test_ids)
        finally:
            tools.workspace.remove()


def build_mcp_server(tools: LentTools) -> Any:
    """The MCP server (the official SDK's `MCPServer`) serving `tools`."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    # The SDK sets the root logger to its level: at its default, INFO, every library's INFO lines
    # (litellm's on every model call) would go to the client's stderr log.
    server = MCPServer("turnout", log_level="WARNING", instructions=(
        "Tools over the team's repository, run on its own machines: code search, symbol lookup, questions "
        "answered by a local model, verified refactorings and test runs. Results follow the team's privacy policy."))

    async def answer(name: str, work: Callable[[], Awaitable[Tagged | Part]]) -> str:
        try:
            return await tools.served(name, work)
        except (UserError, EgressRefused) as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    async def search_code(query: str, limit: Annotated[int, Field(ge=1, le=20)] = 5, repo: str | None = None) -> str:
        """Search the repository's code for words (BM25): the best matches' locations and symbols
        (and their text, when the privacy policy lets source leave)."""
        return await answer("search_code", lambda: tools.search_code(query, limit, repo))

    @server.tool()
    async def find_symbol(name: str, repo: str | None = None) -> str:
        """Where a function, class or method (`Class.method`) is defined: file, lines and signature."""
        return await answer("find_symbol", lambda: tools.find_symbol(name, repo))

    @server.tool()
    async def ask_local(question: str, repo: str | None = None) -> str:
        """A question about the repository, answered by a local model that reads the code here:
        the code stays on this machine, the answer comes back."""
        return await answer("ask_local", lambda: tools.ask_local(question, repo))

    @server.tool()
    async def plan_refactor(request: str, repo: str | None = None) -> str:
        """The refactoring operations a request's words ask for (rename, move, …), without running them."""
        return await answer("plan_refactor", lambda: tools.plan_refactor(request, repo))

    @server.tool()
    async def run_refactor(request: str, repo: str | None = None) -> str:
        """Run a refactoring in a copy of the repository, checked by its tests: the status, the files
        changed, the patch's path (and the diff, when the privacy policy lets diffs leave)."""
        return await answer("run_refactor", lambda: tools.run_refactor(request, repo))

    @server.tool()
    async def run_tests(test_ids: list[str] | None = None, repo: str | None = None) -> str:
        """Run the repository's tests (or the pytest ids given) in a copy: counts and failing tests."""
        return await answer("run_tests", lambda: tools.run_tests(test_ids, repo))

    return server


def http_app(server: Any, *, host: str, api_key: str | None) -> Any:
    """The streamable-HTTP app; off loopback it needs `api_key`, sent as a Bearer token."""
    from turnout.engines.privacy import is_loopback_host

    if not is_loopback_host(host) and not api_key:
        raise ConfigError(f"refusing to serve MCP on {host} without a key: anyone who can reach this machine could "
                          "read the repository through it. Give --api-key (or TURNOUT_MCP_API_KEY), or bind 127.0.0.1")
    app = server.streamable_http_app(host=host)
    if not api_key:
        return app
    expected = f"Bearer {api_key}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope.get("headers") or []).get(b"authorization") != expected:
            body = b'{"error": "missing or wrong API key: send Authorization: Bearer <key>"}'
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return guarded


def _checked_dir(path: Path) -> Path:
    resolved = path.expanduser().resolve()
    if not resolved.is_dir():
        raise UserError(f"repository {str(path)!r} is not a directory; pass the folder that holds the code")
    return resolved


def _allowed_roots(repos: Sequence[Path]) -> list[Path]:
    named = repo_roots()
    if named:
        for repo in repos:
            if not any(repo == root or root in repo.parents for root in named):
                raise UserError(f"repository {str(repo)!r} is outside {REPO_ROOTS_ENV} ({os.environ[REPO_ROOTS_ENV]})")
        return named
    return list(repos)
