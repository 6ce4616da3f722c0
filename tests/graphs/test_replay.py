"""Replaying a recorded run: answered from the recording with no model, swaps, divergence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests.scripted_team import Team, finish, plan, route, team  # noqa: F401
from turnout.config import ROLE_NAMES
from turnout.engines import scripted
from turnout.errors import UserError
from turnout.graphs import build_hybrid_graph
from turnout.graphs.replay import ReplayMismatch, recorded_runs, replay
from turnout.telemetry import instrument
from turnout.telemetry._calls import RecordingError, calls_path, read_calls

TASK = "Where is tax computed?"
TRACES = Path(".turnout/traces")


def volatile_free(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "started_at"}  # a wall-clock time


async def record_run(team: Team) -> tuple[str, dict[str, Any]]:
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("in shop/pricing.py")])
    graph = instrument(build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()))
    state = await graph.ainvoke({"task": TASK}, {"configurable": {"thread_id": "original"}})
    (manifest,) = recorded_runs(TRACES)
    return manifest.run_id, dict(state)


def another_graph() -> Any:
    """A graph of another shape than the hybrid graph: one node."""
    from langgraph.graph import END, START, StateGraph

    other = StateGraph(dict)
    other.add_node("only", lambda s: s)
    other.add_edge(START, "only")
    other.add_edge("only", END)
    return other.compile()


def forget_every_model() -> None:
    for role in ROLE_NAMES:
        scripted.unregister(f"t-{role}")


async def test_a_replay_needs_no_model_and_reproduces_the_run(team: Team) -> None:
    run_id, original = await record_run(team)
    assert [c.node for c in read_calls(calls_path(TRACES, run_id))] == ["plan", "route", "work", "decide"]
    forget_every_model()  # any live call would now fail: no script, no model
    result = await replay(run_id[:8], build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()))
    assert result.diverged is None and result.identical
    assert result.replayed_calls == 4 and result.live_calls == 0
    assert volatile_free(result.state) == volatile_free(original)
    assert result.run_id is not None and result.run_id != run_id


async def test_a_live_router_changes_only_what_it_decides(team: Team) -> None:
    run_id, original = await record_run(team)
    forget_every_model()
    scripted.register("unsure-router", route(confidence=0.1))
    try:
        result = await replay(run_id, build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()),
                              live=["router=scripted/unsure-router"])
    finally:
        scripted.unregister("unsure-router")
    assert result.diverged is None and result.live_calls == 1 and result.replayed_calls == 3
    assert result.unused_calls == 1  # the original router call
    [step] = result.state["results"]
    assert "router confidence 0.10 < 0.50" in (step.escalation_reason or "")
    assert result.state["answer"] == original["answer"]
    assert result.run_id is not None
    routes = [c.text for c in read_calls(calls_path(TRACES, result.run_id)) if c.node == "route"]
    assert '"confidence": 0.1' in routes[0]


async def test_a_live_planner_that_plans_differently_diverges_at_the_first_new_request(team: Team) -> None:
    run_id, _ = await record_run(team)
    forget_every_model()
    scripted.register("other-planner", [plan(("retrieve", "find the discount code", []))])
    try:
        result = await replay(run_id, build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()),
                              live=["plan=scripted/other-planner"])
    finally:
        scripted.unregister("other-planner")
    assert result.diverged is not None
    assert "replay diverged at call 2 (node 'route', step 2, router)" in result.diverged
    assert "-user: find the tax code" in result.diverged
    assert "+user: find the discount code" in result.diverged


async def test_live_names_must_be_nodes_or_roles(team: Team) -> None:
    run_id, _ = await record_run(team)
    with pytest.raises(UserError, match="nodes are decide, plan, route, work; roles are planner"):
        await replay(run_id, build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()), live=["routr"])


async def test_a_changed_graph_is_refused_unless_forced(team: Team) -> None:
    run_id, _ = await record_run(team)
    with pytest.raises(ReplayMismatch, match="pass --force"):
        await replay(run_id, another_graph())


async def test_a_corrupt_recording_fails_cleanly(team: Team) -> None:
    run_id, _ = await record_run(team)
    path = calls_path(TRACES, run_id)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1][: len(lines[1]) // 2], *lines[2:]]) + "\n")
    with pytest.raises(RecordingError, match="line 2 is corrupt"):
        await replay(run_id, build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()))
    path.unlink()
    with pytest.raises(RecordingError, match="no call recording"):
        await replay(run_id, build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()))


async def test_a_live_router_swap_shows_as_the_first_divergence_in_trace_diff(team: Team, spans: Any) -> None:
    from turnout.telemetry._diff import diff_runs, recorded_calls
    from turnout.telemetry._files import TraceFileExporter, read_trace

    run_id, _ = await record_run(team)
    forget_every_model()
    scripted.register("unsure-router", route(confidence=0.1))
    try:
        result = await replay(run_id, build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver()),
                              live=["router=scripted/unsure-router"])
    finally:
        scripted.unregister("unsure-router")
    TraceFileExporter(TRACES).export(spans.get_finished_spans())
    original, replayed = read_trace(TRACES / f"{run_id}.jsonl"), read_trace(TRACES / f"{result.run_id}.jsonl")
    diff = diff_runs(original, replayed, recorded_calls(original), recorded_calls(replayed))
    assert diff.first_divergence is not None
    row = diff.rows[diff.first_divergence]
    assert row.describe().startswith("route") and "outputs differ" in row.describe()
    assert [r.differs for r in diff.rows].count(True) == 1  # plan, work and decide replayed the same


async def test_a_forced_replay_of_a_changed_graph_runs_and_leaves_the_recording_unused(team: Team) -> None:
    run_id, _ = await record_run(team)
    result = await replay(run_id, another_graph(), force=True)
    assert result.diverged is None and result.unused_calls == 4 and not result.identical
