"""The exact span tree of a traced graph run: names, parents, kinds and GenAI attributes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.telemetry.graph_fixture import build_graph
from turnout.engines import scripted
from turnout.telemetry import instrument

SECRET = "sk-ant-api03-" + "A" * 40


@pytest.fixture
def scripts() -> Iterator[None]:
    with scripted.scripted("planner", ["alpha,beta,gamma"]), scripted.scripted(
        "worker", lambda messages: "found " + messages[-1]["content"].split()[-1]
    ), scripted.scripted("summarizer", ["all three parts covered"]):
        yield


def _tree(spans: Any) -> list[tuple[str, str | None, str]]:
    by_id = {s.context.span_id: s for s in spans}
    rows = []
    for s in spans:
        parent = by_id.get(s.parent.span_id).name if s.parent and s.parent.span_id in by_id else None
        rows.append((s.name, parent, s.kind.name))
    return sorted(rows, key=lambda r: (r[1] or "", r[0]))


def _one(spans: Any, name: str) -> Any:
    matches = [s for s in spans if s.name == name]
    assert len(matches) == 1, [s.name for s in spans]
    return matches[0]


EXPECTED_TREE = sorted(
    [
        ("invoke_workflow demo", None, "INTERNAL"),
        ("plan", "invoke_workflow demo", "INTERNAL"),
        ("research", "invoke_workflow demo", "INTERNAL"),
        ("research", "invoke_workflow demo", "INTERNAL"),
        ("research", "invoke_workflow demo", "INTERNAL"),
        ("invoke_agent summarizer", "invoke_workflow demo", "INTERNAL"),
        ("chat planner", "plan", "CLIENT"),
        ("chat worker", "research", "CLIENT"),
        ("chat worker", "research", "CLIENT"),
        ("chat worker", "research", "CLIENT"),
        ("execute_tool lookup", "research", "INTERNAL"),
        ("execute_tool lookup", "research", "INTERNAL"),
        ("execute_tool lookup", "research", "INTERNAL"),
        ("chat summarizer", "invoke_agent summarizer", "CLIENT"),
    ],
    key=lambda r: (r[1] or "", r[0]),
)


async def test_an_async_run_gives_the_exact_span_tree(scripts: None, spans: Any) -> None:
    graph = instrument(build_graph())
    state = await graph.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "t-1"}})
    assert state["summary"] == "all three parts covered"
    finished = spans.get_finished_spans()
    assert _tree(finished) == EXPECTED_TREE
    assert len({s.context.trace_id for s in finished}) == 1


def test_a_sync_run_gives_the_same_tree(scripts: None, spans: Any) -> None:
    graph = instrument(build_graph(sync=True))
    graph.invoke({"topic": "trains"}, {"configurable": {"thread_id": "t-2"}})
    assert _tree(spans.get_finished_spans()) == EXPECTED_TREE


async def test_fanned_out_branches_are_siblings_of_one_step(scripts: None, spans: Any) -> None:
    graph = instrument(build_graph())
    await graph.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "t-3"}})
    finished = spans.get_finished_spans()
    branches = [s for s in finished if s.name == "research"]
    assert len({s.parent.span_id for s in branches}) == 1
    assert {s.attributes["langgraph.step"] for s in branches} == {2}
    assert _one(finished, "plan").attributes["langgraph.step"] == 1


async def test_node_spans_carry_thread_and_checkpoint(scripts: None, spans: Any) -> None:
    graph = instrument(build_graph())
    await graph.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "t-4"}})
    finished = spans.get_finished_spans()
    root = _one(finished, "invoke_workflow demo")
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["gen_ai.workflow.name"] == "demo"
    assert root.attributes["gen_ai.conversation.id"] == "t-4"
    plan = _one(finished, "plan")
    assert plan.attributes["langgraph.node"] == "plan"
    assert plan.attributes["gen_ai.conversation.id"] == "t-4"
    assert plan.attributes["langgraph.checkpoint.id"]
    agent = _one(finished, "invoke_agent summarizer")
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "summarizer"


async def test_model_call_spans_follow_the_genai_conventions(scripts: None, spans: Any) -> None:
    graph = instrument(build_graph())
    await graph.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "t-5"}})
    chat = _one(spans.get_finished_spans(), "chat planner")
    assert dict(chat.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "scripted",
        "gen_ai.request.model": "planner",
        "gen_ai.response.model": "planner",
        "gen_ai.usage.input_tokens": 2,
        "gen_ai.usage.output_tokens": 1,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.response.time_to_first_chunk": chat.attributes["turnout.time_to_first_token_s"],
        "turnout.model": "scripted/planner",
        "turnout.engine": "scripted",
        "turnout.locality": "local",
        "turnout.attempts": 1,
        "turnout.time_to_first_token_s": chat.attributes["turnout.time_to_first_token_s"],
        "turnout.tokens_per_s": chat.attributes["turnout.tokens_per_s"],
        "turnout.cost_usd": 0.0,
        "turnout.egress.policy": "open",
        "turnout.egress.decision": "local",
        "turnout.egress.sent_bytes": 0,
        "turnout.egress.source_bytes_sent": 0,
        "turnout.egress.parts.untagged": 1,
    }
    assert "gen_ai.input.messages" not in chat.attributes
    assert not chat.events


async def test_instrumenting_twice_changes_nothing(scripts: None, spans: Any) -> None:
    graph = build_graph()
    assert instrument(instrument(graph)) is graph
    await graph.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "t-6"}})
    assert len(spans.get_finished_spans()) == len(EXPECTED_TREE)


async def test_copies_of_an_instrumented_graph_stay_traced(scripts: None, spans: Any) -> None:
    graph = instrument(build_graph())
    copied = graph.with_config({"recursion_limit": 50}).copy({"name": "renamed"})
    assert copied is not graph and isinstance(copied, type(graph).__mro__[1])
    await copied.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "t-8"}})
    assert _tree(spans.get_finished_spans()) == EXPECTED_TREE  # the root keeps the name it was given


async def test_a_failing_node_marks_its_span_and_the_root(spans: Any) -> None:
    with scripted.scripted("planner", []):
        graph = instrument(build_graph())
        with pytest.raises(Exception, match="exhausted"):
            await graph.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "t-7"}})
    finished = spans.get_finished_spans()
    for name in ("chat planner", "plan", "invoke_workflow demo"):
        span = _one(finished, name)
        assert span.status.status_code.name == "ERROR"
        assert span.attributes["error.type"] == "ScriptExhausted"


def test_an_interrupt_inside_an_agent_span_is_no_error(spans: Any) -> None:
    from langgraph.errors import GraphInterrupt

    from turnout.telemetry import agent_span

    with pytest.raises(GraphInterrupt), agent_span("coder"):
        raise GraphInterrupt(())
    span = _one(spans.get_finished_spans(), "invoke_agent coder")
    assert span.status.status_code.name == "UNSET" and "error.type" not in span.attributes
