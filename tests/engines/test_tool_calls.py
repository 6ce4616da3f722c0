"""Tool calling through the door: `tools` and `tool_choice` on every engine.

Local engines decode under a constraint that admits only well-formed calls to the declared
tools (or, where allowed, a final answer); remote models use litellm's native tool calling,
through a loopback fake of the OpenAI API, and arguments that fail their tool's schema are
re-asked. Calls are typed, streamed, recorded and replayed with their ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.engines.conftest import EngineUnderTest
from tests.privacy.fake_provider import Calls, FakeProvider, cloud_role, fake_provider_fixture  # noqa: F401
from turnout.engines import Completion, complete, stream, tag
from turnout.engines.scripted import Script
from turnout.engines.tool_calls import MAX_LOCAL_CALLS, ToolCall, ToolCallDelta, ToolSpec, tool_set
from turnout.errors import EgressRefused, SchemaError, SchemaRefused, UserError

SEARCH = {"type": "function", "function": {
    "name": "search_code", "description": "Search the repository's code for a phrase.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string", "maxLength": 80}}, "required": ["query"]}}}
READ = ToolSpec(name="read_file", description="Read lines of a file of the repository.", parameters={
    "type": "object", "properties": {"path": {"type": "string", "maxLength": 120},
                                     "start": {"type": "integer", "minimum": 1, "maximum": 9999}},
    "required": ["path", "start"], "additionalProperties": False})
TOOLS = [SEARCH, READ]


class Where(BaseModel):
    path: str
    line: int


def _valid(call: ToolCall) -> None:
    assert call.id.startswith("call_")
    if call.name == "search_code":
        assert isinstance(call.arguments["query"], str)
    else:
        assert call.name == "read_file" and set(call.arguments) == {"path", "start"}
        assert 1 <= call.arguments["start"] <= 9999


def _model(engine: EngineUnderTest) -> str | Script:
    return Script.auto() if engine.name == "scripted" else engine.model


@pytest.mark.parametrize("choice", ["required", "read_file", "auto"])
async def test_every_engine_answers_a_tool_call_that_is_well_formed(engine: EngineUnderTest, choice: str) -> None:
    result = await complete(_model(engine), "Read the first lines of shop/pricing.py.", tools=TOOLS,
                            tool_choice=choice, temperature=0, max_tokens=256)
    if choice == "auto" and not result.tool_calls:
        assert result.text and result.finish_reason in ("stop", "length")
        return
    assert result.tool_calls and result.finish_reason == "tool_calls" and result.text == ""
    for call in result.tool_calls:
        _valid(call)
    if choice == "read_file":
        assert {c.name for c in result.tool_calls} == {"read_file"}


async def test_every_engine_answers_in_the_output_schema_when_tools_are_not_called(engine: EngineUnderTest) -> None:
    result = await complete(_model(engine), "Where is the tax computed?", tools=TOOLS, tool_choice="none",
                            schema=Where, temperature=0, max_tokens=128)
    assert result.tool_calls == [] and isinstance(result.output, Where)


async def test_a_local_engine_sees_the_tools_and_the_earlier_calls_and_results() -> None:
    seen: list[tuple[list[dict[str, Any]], dict[str, Any] | None]] = []

    def responder(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> dict[str, Any]:
        seen.append((messages, schema))
        if len(seen) == 1:
            return {"tool_calls": [{"name": "search_code", "arguments": {"query": "tax"}},
                                   {"name": "read_file", "arguments": {"path": "shop/tax.py", "start": 1}}]}
        return {"answer": "shop/tax.py:3 computes it"}

    script = Script(responder)
    first = await complete(script, "Where is tax computed?", tools=TOOLS)
    assert [c.name for c in first.tool_calls] == ["search_code", "read_file"]  # parallel calls
    conversation = [{"role": "user", "content": "Where is tax computed?"}, first.message(),
                    *(call.result(f"result of {call.name}") for call in first.tool_calls)]
    second = await complete(script, conversation, tools=TOOLS)
    assert second.text == "shop/tax.py:3 computes it" and second.tool_calls == []

    system, *rest = seen[1][0]
    assert system["role"] == "system" and "search_code: Search the repository's code" in system["content"]
    assert json.loads(rest[1]["content"]) == {"tool_calls": [
        {"name": "search_code", "arguments": {"query": "tax"}},
        {"name": "read_file", "arguments": {"path": "shop/tax.py", "start": 1}}]}
    assert rest[2] == {"role": "user", "content": f"Result of search_code (call {first.tool_calls[0].id}):\nresult of search_code"}
    schema = seen[0][1]
    assert schema is not None and [set(branch["properties"]) for branch in schema["anyOf"]] == [{"tool_calls"}, {"answer"}]


def test_the_constraint_admits_only_declared_tools_and_fits_the_budget() -> None:
    tools = tool_set(TOOLS, "auto")
    assert tools is not None
    calls = tools.local_schema(None, 4096)["anyOf"][0]["properties"]["tool_calls"]
    assert calls["maxItems"] == MAX_LOCAL_CALLS
    assert [b["properties"]["name"] for b in calls["items"]["anyOf"]] == [{"const": "search_code"}, {"const": "read_file"}]
    small = tools.local_schema(None, 128)["anyOf"][0]["properties"]["tool_calls"]
    assert small["maxItems"] == 1  # fewer parallel calls rather than arguments squeezed to nothing
    named = tool_set(TOOLS, "read_file")
    assert named is not None and "anyOf" not in named.local_schema(None, 512)
    assert named.local_schema(None, 512)["properties"]["tool_calls"]["items"]["properties"]["name"] == {"const": "read_file"}
    single = tool_set(TOOLS, "auto", parallel_tool_calls=False)
    assert single is not None and single.local_schema(None, 4096)["anyOf"][0]["properties"]["tool_calls"]["maxItems"] == 1


async def test_nested_argument_and_output_models_keep_their_references() -> None:
    class Span(BaseModel):
        start: int
        end: int

    class Args(BaseModel):
        path: str
        lines: Span

    tool = ToolSpec(name="read_lines", parameters=Args.model_json_schema())
    result = await complete(Script.auto(), "read", tools=[tool], tool_choice="required")
    assert Args.model_validate(result.tool_calls[0].arguments).lines == Span(start=0, end=0)

    class Found(BaseModel):
        where: Span

    answered = await complete(Script.auto(), "find", tools=[tool], tool_choice="none", schema=Found)
    assert answered.output == Found(where=Span(start=0, end=0))


async def test_a_streamed_local_turn_gives_each_call_with_its_id() -> None:
    script = Script([{"tool_calls": [{"name": "search_code", "arguments": {"query": "tax"}}]}, {"answer": "done here"}])
    answer = stream(script, "find tax", tools=TOOLS)
    events = [event async for event in answer.events()]
    assert answer.result is not None
    call = answer.result.tool_calls[0]
    assert events == [ToolCallDelta(index=0, id=call.id, name="search_code", arguments='{"query": "tax"}')]
    text = stream(script, "find tax", tools=TOOLS)
    assert [piece async for piece in text] == ["done here"]


@pytest.mark.parametrize(("tools", "choice", "says"), [
    ([SEARCH, SEARCH], "auto", "two tools are named 'search_code'"),
    (TOOLS, "delete_repo", "tool_choice names 'delete_repo', which is not among the tools given (read_file, search_code)"),
    (None, "required", "tool_choice='required' was given without tools"),
    ([{"type": "function"}], "auto", "not a tool"),
])
async def test_bad_tools_are_refused_before_any_call(tools: Any, choice: str, says: str) -> None:
    script = Script(["unused"])
    with pytest.raises(UserError, match=says.replace("(", r"\(").replace(")", r"\)")):
        await complete(script, "q", tools=tools, tool_choice=choice)
    assert script.calls == []


async def test_a_tool_schema_past_the_limits_is_refused() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        deep = {"type": "array", "items": deep}
    tool = ToolSpec(name="deep", parameters={"type": "object", "properties": {"x": deep}})
    with pytest.raises(SchemaRefused):
        await complete(Script(["unused"]), "q", tools=[tool])


# --- remote models: litellm's native tool calling ------------------------------------------


@pytest.fixture
def cloud(fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    cloud_role(fake_provider, monkeypatch)
    yield fake_provider


async def test_a_remote_model_gets_native_tools_and_its_calls_are_typed(cloud: FakeProvider) -> None:
    cloud.answer = lambda request: Calls([("search_code", {"query": "tax"}), ("read_file", {"path": "a.py", "start": 2})])
    whole = await complete("planner", tag.request("find tax"), tools=TOOLS, tool_choice="auto")
    answer = stream("planner", tag.request("find tax"), tools=TOOLS)
    events = [event async for event in answer.events()]
    streamed = answer.result
    assert streamed is not None
    expected = [ToolCall(id="call_fake_0", name="search_code", arguments={"query": "tax"}),
                ToolCall(id="call_fake_1", name="read_file", arguments={"path": "a.py", "start": 2})]
    assert whole.tool_calls == expected == streamed.tool_calls
    assert whole.finish_reason == streamed.finish_reason == "tool_calls"
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(pieces) == 4 and pieces[0].name == "search_code" and pieces[1].name is None  # arguments in fragments
    sent = cloud.requests[0]
    assert [t["function"]["name"] for t in sent["tools"]] == ["search_code", "read_file"]
    assert whole.egress is not None and whole.egress.sent_bytes["schema"] == len(json.dumps(sent["tools"]))  # counted
    assert sent["tool_choice"] == "auto" and "response_format" not in sent


async def test_a_remote_call_with_bad_arguments_is_asked_again_then_refused(cloud: FakeProvider) -> None:
    answers = iter([Calls([("read_file", {"path": "a.py", "start": 0})]),
                    Calls([("read_file", {"path": "a.py", "start": 3})])])
    cloud.answer = lambda request: next(answers)
    result = await complete("planner", tag.request("read a.py"), tools=TOOLS, tool_choice="read_file")
    assert result.attempts == 2 and result.tool_calls[0].arguments == {"path": "a.py", "start": 3}
    assert "start: 0 is less than the minimum of 1" in str(cloud.requests[1]["messages"][-1]["content"])
    assert cloud.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "read_file"}}

    cloud.answer = lambda request: Calls([("drop_tables", "{}")])
    with pytest.raises(SchemaError, match="names 'drop_tables', which is not a tool it may call"):
        await complete("planner", tag.request("read a.py"), tools=TOOLS)
    cloud.answer = lambda request: "I would rather not"
    with pytest.raises(SchemaError, match="tool_choice is required: the answer must call a tool"):
        await complete("planner", tag.request("read a.py"), tools=TOOLS, tool_choice="required")


async def test_under_no_code_a_tool_result_never_reaches_a_remote_model(
    cloud: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "zq7-canary-source-text-in-a-tool-result"
    cloud_role(cloud, monkeypatch, policy={"mode": "no-code", "on_forbidden": "refuse"})
    call = ToolCall(id="call_1", name="read_file", arguments={"path": "a.py", "start": 1})
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": tag.request("read a.py")},
        {"role": "assistant", "content": None, "tool_calls": [call.openai()]},
        call.result(f"def f():\n    return '{canary}'\n"),
    ]
    cloud.answer = lambda request: "fine"
    with pytest.raises(EgressRefused, match="tool output from read_file"):
        await complete("planner", conversation, tools=TOOLS)
    assert cloud.requests == []
    conversation[-1] = call.result(tag.path("a.py"))  # a tool that declares its output: a path may go
    result = await complete("planner", conversation, tools=TOOLS)
    assert result.text == "fine" and not cloud.received(canary)
    assert result.egress is not None and result.egress.parts.get("path") == 1


async def test_a_recorded_tool_call_replays_with_its_id(spans: Any, tmp_path: Any) -> None:
    from turnout.engines._replay import ReplaySession, replaying
    from turnout.telemetry._calls import CALLS_DIR, read_calls

    script = Script([{"tool_calls": [{"name": "search_code", "arguments": {"query": "tax"}}]}])
    original = await complete(script, "find tax", tools=TOOLS)
    (recording,) = sorted((Path(".turnout/traces") / CALLS_DIR).glob("*.jsonl"))
    (record,) = read_calls(recording)
    assert record.tool_calls == [original.tool_calls[0].model_dump()]
    with replaying(ReplaySession([record])):
        replayed: Completion[Any] = await complete(script.model, "find tax", tools=TOOLS)
    assert replayed.tool_calls == original.tool_calls
