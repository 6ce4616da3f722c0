"""A small LangGraph graph with an async node, a `Send` fan-out of 3 branches, a tool and
a turnout-style agent node, all calling models through the scripted engine."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from turnout.engines import complete, complete_sync
from turnout.telemetry import traced_tool


class State(TypedDict, total=False):
    topic: str
    parts: list[str]
    findings: Annotated[list[str], operator.add]
    summary: str


class Branch(TypedDict):
    part: str


@traced_tool("lookup")
def lookup(part: str) -> str:
    return f"facts about {part}"


async def plan(state: State) -> dict[str, Any]:
    result = await complete("scripted/planner", f"split {state['topic']}")
    return {"parts": result.text.split(",")}


def plan_sync(state: State) -> dict[str, Any]:
    return {"parts": complete_sync("scripted/planner", f"split {state['topic']}").text.split(",")}


def fan_out(state: State) -> list[Send]:
    return [Send("research", {"part": part}) for part in state["parts"]]


async def research(state: Branch) -> dict[str, Any]:
    facts = lookup(state["part"])
    result = await complete("scripted/worker", f"summarise {facts}")
    return {"findings": [result.text]}


def research_sync(state: Branch) -> dict[str, Any]:
    facts = lookup(state["part"])
    return {"findings": [complete_sync("scripted/worker", f"summarise {facts}").text]}


class Summarizer:
    """Stands in for a turnout agent: a callable node that carries `agent_name`."""

    agent_name = "summarizer"

    def __call__(self, state: State) -> dict[str, Any]:
        result = complete_sync("scripted/summarizer", " ".join(sorted(state["findings"])))
        return {"summary": result.text}


def build_graph(*, sync: bool = False) -> Any:
    """Async nodes by default; `sync=True` for a graph that `invoke()` can run."""
    builder = StateGraph(State)
    builder.add_node("plan", plan_sync if sync else plan)
    builder.add_node("research", research_sync if sync else research)
    builder.add_node("summarize", Summarizer())
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["research"])
    builder.add_edge("research", "summarize")
    builder.add_edge("summarize", END)
    return builder.compile(checkpointer=InMemorySaver(), name="demo")
