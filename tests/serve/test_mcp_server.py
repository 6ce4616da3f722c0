"""`turnout mcp`, driven by the official SDK's client: each tool, bad input, and the privacy
policy applied to what a (remote) client is given."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.refactor_repo import PACKAGE, write_files
from turnout.config import load_settings, use_settings
from turnout.engines.scripted import Script
from turnout.errors import ConfigError, UserError
from turnout.telemetry import _conventions as sc

mcp = pytest.importorskip("mcp")
from mcp import Client  # noqa: E402

from turnout.serve.mcp import LentTools, build_mcp_server, http_app  # noqa: E402

CANARY = "zq7-canary-in-a-function-body"
TOOLS = {"search_code", "find_symbol", "ask_local", "plan_refactor", "run_refactor", "run_tests"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = dict(PACKAGE)
    files["shop/inventory.py"] = files["shop/inventory.py"].replace(
        "def total(path):\n", f"def total(path):\n    audit_note = \"{CANARY}\"\n")
    return write_files(tmp_path / "repo", files)


def serving(repo: Path, policy: str, client: str = "remote", **settings: Any) -> Any:
    use_settings(load_settings(policy={"mode": policy, "on_forbidden": "outline"}, **settings))
    return build_mcp_server(LentTools([repo], client=client))  # type: ignore[arg-type]


async def call(server: Any, tool: str, **arguments: Any) -> tuple[str, bool]:
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments)
    return "\n".join(block.text for block in result.content if block.type == "text"), result.is_error


async def test_the_tools_are_listed_for_the_sdk_client(repo: Path) -> None:
    async with Client(serving(repo, "no-code")) as client:
        listed = await client.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    assert all(t.description for t in listed.tools)


async def test_under_no_code_a_remote_client_gets_locations_never_source(repo: Path, spans: Any) -> None:
    text, failed = await call(serving(repo, "no-code"), "search_code", query="stock total")
    assert not failed and "shop/inventory.py:" in text and "total" in text
    assert CANARY not in text and "withheld by privacy policy no-code" in text
    (span,) = [s for s in spans.get_finished_spans() if "turnout.mcp.client" in (s.attributes or {})]
    assert span.name == "execute_tool search_code" and span.attributes["turnout.mcp.client"] == "remote"
    assert span.attributes["turnout.egress.decision"] == "rewritten"
    assert span.attributes[sc.EGRESS_SOURCE_BYTES] == 0 and "turnout.egress.sent_bytes.code" not in span.attributes


async def test_under_open_the_source_goes_and_a_local_client_gets_it_anyway(repo: Path) -> None:
    text, _ = await call(serving(repo, "open"), "search_code", query="stock total")
    assert CANARY in text
    text, _ = await call(serving(repo, "no-code", client="local"), "search_code", query="stock total")
    assert CANARY in text


async def test_find_symbol_and_plan_refactor_answer_with_names(repo: Path) -> None:
    server = serving(repo, "no-code")
    found, _ = await call(server, "find_symbol", name="total")
    assert found == "shop/inventory.py:6-8 def total(path)"
    planned, _ = await call(server, "plan_refactor", request="Rename function load_inventory to read_inventory")
    assert json.loads(planned.splitlines()[0]) == {"op": "rename", "old": "load_inventory", "new": "read_inventory"}


async def test_ask_local_answers_on_a_local_role_and_the_code_stays_here(repo: Path) -> None:
    script = Script([{"tool_calls": [{"name": "find_symbol", "arguments": {"name": "total"}}]},
                     {"answer": "total in shop/inventory.py adds up the stock counts."}])
    server = serving(repo, "no-code", roles={"retriever": script.model})
    answer, failed = await call(server, "ask_local", question="Where are the stock counts added up?")
    assert not failed and answer == "total in shop/inventory.py adds up the stock counts."
    assert "shop/inventory.py:6-8 def total(path)" in str(script.calls[1])  # the local model read the code


async def test_ask_local_refuses_a_remote_role(repo: Path) -> None:
    server = serving(repo, "open", roles={"retriever": {"model": "openai/gpt-4o-mini", "api_base": "https://api.example.com/v1"}})
    answer, failed = await call(server, "ask_local", question="Where?")
    assert failed and "role retriever runs remotely" in answer


async def test_run_tests_gives_counts(repo: Path) -> None:
    text, failed = await call(serving(repo, "no-code"), "run_tests", test_ids=["tests/test_inventory.py::test_total"])
    assert not failed and text.startswith("1 passed")


async def test_run_refactor_gives_a_verified_patch_and_the_diff_only_where_diffs_may_go(repo: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "start"], cwd=repo, check=True)
    auto = Script.auto()  # held: a Script lives while it is referenced
    reviewer = {"verifier": auto.model}
    request = "Rename function load_inventory to read_inventory"
    text, failed = await call(serving(repo, "no-code", roles=reviewer), "run_refactor", request=request)
    assert not failed and text.startswith("status: succeeded"), text
    assert "patch: " in text and "+def read_inventory" not in text and "withheld by privacy policy no-code" in text
    text, _ = await call(serving(repo, "open", roles=reviewer), "run_refactor", request=request)
    assert "+def read_inventory(path):" in text
    assert "load_inventory" in (repo / "shop/inventory.py").read_text()  # the repository itself is untouched


@pytest.mark.parametrize(("tool", "arguments", "says"), [
    ("search_code", {"query": "x", "limit": 0}, "limit"),
    ("search_code", {"query": "x", "repo": "/"}, "outside the ones this server works on"),
    ("no_such_tool", {}, "no_such_tool"),
])
async def test_bad_calls_are_errors_the_client_can_read(repo: Path, tool: str, arguments: dict[str, Any], says: str) -> None:
    server = serving(repo, "no-code")
    async with Client(server) as client:
        try:
            result = await client.call_tool(tool, arguments)
        except Exception as exc:  # the SDK raises for an unknown tool on some protocol versions
            assert says in str(exc)
            return
    assert result.is_error and says in "\n".join(b.text for b in result.content if b.type == "text")


def test_what_cannot_be_served_is_refused_at_start(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(load_settings(policy={"mode": "local-only"}))
    with pytest.raises(ConfigError, match="local-only lets nothing leave this machine"):
        LentTools([repo], client="remote")
    monkeypatch.setenv("TURNOUT_REPO_ROOTS", str(tmp_path / "elsewhere"))
    use_settings(load_settings())
    with pytest.raises(UserError, match="outside TURNOUT_REPO_ROOTS"):
        LentTools([repo])
    monkeypatch.delenv("TURNOUT_REPO_ROOTS")
    with pytest.raises(ConfigError, match="refusing to serve MCP on 0.0.0.0 without a key"):
        http_app(build_mcp_server(LentTools([repo])), host="0.0.0.0", api_key=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_served(repo: Path) -> Iterator[str]:
    import uvicorn

    use_settings(load_settings(policy={"mode": "no-code"}))
    app = http_app(build_mcp_server(LentTools([repo])), host="127.0.0.1", api_key="k3y")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(timeout=10)


async def test_over_http_the_key_is_required(http_served: str) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    keyed = httpx2.AsyncClient(headers={"Authorization": "Bearer k3y"})
    async with Client(streamable_http_client(http_served, http_client=keyed)) as client:
        result = await client.call_tool("find_symbol", {"name": "total"})
    assert result.content[0].text == "shop/inventory.py:6-8 def total(path)"
    with pytest.raises(Exception):
        async with Client(streamable_http_client(http_served, http_client=httpx2.AsyncClient())) as client:
            await client.list_tools()


async def test_the_turnout_mcp_command_over_stdio_logs_only_its_banner(repo: Path, tmp_path: Path) -> None:
    from mcp.client.stdio import StdioServerParameters, stdio_client

    command = shutil.which("turnout")
    if command is None:
        pytest.skip("the turnout command is not installed on PATH")
    answers = tmp_path / "retriever.json"  # ask_local's model call goes through litellm, which logs at INFO
    answers.write_text(json.dumps([{"answer": "total in shop/inventory.py adds up the stock counts."}]))
    params = StdioServerParameters(command=command, args=["mcp", "--repo", str(repo)],
                                   env={**os.environ, "TURNOUT_ROLES__RETRIEVER": f"scripted/{answers}"})
    with (tmp_path / "stderr.txt").open("w+") as stderr:
        async with Client(stdio_client(params, errlog=stderr), read_timeout_seconds=60) as client:
            found = await client.call_tool("find_symbol", {"name": "total"})
            answered = await client.call_tool("ask_local", {"question": "Where are the stock counts added up?"})
        stderr.seek(0)
        logged = stderr.read()
    assert found.content[0].text == "shop/inventory.py:6-8 def total(path)"
    assert answered.content[0].text == "total in shop/inventory.py adds up the stock counts."
    assert logged.startswith("turnout mcp · stdio · ") and "INFO" not in logged, logged


async def test_turnouts_mcp_client_reaches_it_with_a_header_from_a_named_variable(
    http_served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from turnout.agents.mcp import MCPTools
    from turnout.integrations.langchain import langchain_tool

    monkeypatch.setenv("TEAM_MCP_AUTH", "Bearer k3y")
    settings = load_settings(mcp={"servers": {"team": {"url": http_served, "headers": {"Authorization": "TEAM_MCP_AUTH"}}}})
    async with MCPTools(settings=settings) as servers:
        (find,) = [t for t in servers.tools() if t.name == "find_symbol"]
        assert str((await find.call({"name": "total"})).content) == "shop/inventory.py:6-8 def total(path)"
        as_langchain = await langchain_tool(find).ainvoke({"name": "total"})  # LangChain's way in: the same tool
    assert as_langchain == "shop/inventory.py:6-8 def total(path)"
