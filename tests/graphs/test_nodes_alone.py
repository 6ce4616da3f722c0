"""The graphs' nodes are module-level functions of (state, runtime): each can be read and
tested alone, with its agents in LangGraph's runtime context instead of a builder's closure."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.runtime import Runtime

from tests.scripted_team import Team, route, team  # noqa: F401
from turnout.agents import Coder, Planner, Retriever, Router, Verifier
from turnout.agents.schemas import PlanStep
from turnout.errors import UserError
from turnout.graphs import hybrid
from turnout.graphs._hybrid_work import Team as AgentTeam
from turnout.telemetry._graph import agent_name


def _context() -> hybrid.HybridContext:
    agents = AgentTeam(planner=Planner(), retriever=Retriever(None), coder=Coder(), verifier=Verifier())
    return hybrid.HybridContext(team=agents, router=Router())


async def test_the_route_node_runs_alone_with_its_router_from_the_context(team: Team) -> None:  # noqa: F811
    team.use("router", route(confidence=0.8))
    state: Any = {"plan": [PlanStep(kind="retrieve", description="find the tax rate")], "results": [], "round": 1}
    update = await hybrid.route(state, Runtime(context=_context()))
    (assignment,) = update["pending"]
    assert (assignment.index, assignment.route.agent, assignment.route.confidence) == (0, "retriever", 0.8)


async def test_a_node_without_its_context_says_how_to_give_one() -> None:
    with pytest.raises(UserError, match="build_hybrid_graph"):  # called alone, outside any run
        await hybrid.route({"plan": []}, Runtime(context=None))  # type: ignore[arg-type]


def test_nodes_say_which_agent_they_are_for_tracing() -> None:
    assert (agent_name(hybrid.plan), agent_name(hybrid.route), agent_name(hybrid.decide)) == ("planner", "router", "planner")
    assert agent_name(hybrid.work) is None  # the step's own agent span is opened inside


async def test_a_run_may_bring_its_own_context(team: Team) -> None:  # noqa: F811
    from langgraph.checkpoint.memory import InMemorySaver

    from tests.scripted_team import finish, plan
    from turnout.engines import scripted

    team.use("planner", [plan(("retrieve", "find the tax rate", [])), finish()])
    graph = hybrid.build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver())
    mine = _context()
    mine.team.retriever = Retriever(hybrid.index_repository(team.repo))
    mine.router = Router(model="scripted/my-router")
    with scripted.scripted("my-router", route(confidence=0.7)) as my_router:
        state = await graph.ainvoke({"task": "Where is the tax for a region computed?"},
                                    {"configurable": {"thread_id": "own-1"}}, context=mine)
    assert len(my_router.calls) == 1  # the run's router, not the one the builder bound
    assert state["results"][0].agent == "retriever"
