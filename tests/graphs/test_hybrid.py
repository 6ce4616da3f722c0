"""The hybrid graph's control flow, pinned with the scripted engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from tests.scripted_team import Team, finish, in_order, plan, route
from turnout.config import load_settings, use_settings
from turnout.graphs import Budget, build_hybrid_graph

TASK = "Where is the tax for a region computed?"
CHANGE = "Make tax_for_region round to cents"  # a task that may write code (a question may not)


def _config(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


async def _run(team: Team, thread: str = "t", task: str = TASK, **kwargs: Any) -> dict[str, Any]:
    graph = build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver(), **kwargs)
    return await graph.ainvoke({"task": task}, _config(thread))


async def test_a_plan_runs_to_a_finished_answer(team: Team) -> None:
    planner = team.use(
        "planner",
        [
            plan(("retrieve", "find the tax code", []), ("answer", "say where it is", [0])),
            {"text": "In shop/pricing.py, tax_for_region."},
            finish("tax_for_region in shop/pricing.py"),
        ],
    )
    state = await _run(team)
    assert (state["status"], state["answer"]) == (
        "finished", "tax_for_region in shop/pricing.py (shop/pricing.py:4 tax_for_region)"
    )
    retrieve, answer = sorted(state["results"], key=lambda r: r.index)
    assert (retrieve.agent, retrieve.status, retrieve.tier) == ("retriever", "ok", "local")
    assert retrieve.evidence.snippets[0].path == "shop/pricing.py"
    assert answer.answer == "In shop/pricing.py, tax_for_region."
    assert "shop/pricing.py" in planner.calls[1][-1]["content"]  # the answer step saw the evidence
    assert state["usage"].calls == 3 + 2 + 1 and state["usage"].remote_tokens == 0


async def test_independent_steps_run_concurrently(team: Team) -> None:
    barrier = asyncio.Barrier(3)

    async def retriever(messages: list[dict[str, Any]]) -> dict[str, Any]:
        await asyncio.wait_for(barrier.wait(), timeout=10)  # passes only if all 3 branches overlap
        return {"keywords": ["tax"]}

    team.use("retriever", retriever)
    team.use(
        "planner",
        [plan(*[("retrieve", f"look {i}", []) for i in range(3)]), finish()],
    )
    state = await _run(team)
    assert state["status"] == "finished"
    assert len(state["results"]) == 3


async def test_dependent_steps_wait_for_their_dependencies(team: Team) -> None:
    team.use("coder", [{"edits": [{"path": "shop/pricing.py", "code": "def f():\n    return 1\n"}], "explanation": "x"}])
    team.use(
        "planner",
        [plan(("retrieve", "find", []), ("code", "change it", [0])), finish()],
    )
    coder_script = team.scripts["coder"]
    state = await _run(team, task=CHANGE)
    assert state["status"] == "finished"
    assert "shop/pricing.py" in coder_script.calls[0][-1]["content"]  # coder saw step 0's evidence


async def test_the_step_budget_stops_a_run_before_it_starts_too_many_steps(team: Team) -> None:
    team.use("planner", [plan(*[("retrieve", f"look {i}", []) for i in range(3)])])
    graph = build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver())
    state = await graph.ainvoke({"task": TASK, "budget": Budget(max_steps=2)}, _config())
    assert state["status"] == "budget_exceeded"
    assert "max_steps 2" in state["reason"]
    assert state.get("results", []) == []


async def test_the_token_budget_stops_a_run_once_it_is_spent(team: Team) -> None:
    planner = team.use("planner", [plan(("retrieve", "find the tax code", []))])
    graph = build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver())
    state = await graph.ainvoke({"task": TASK, "budget": Budget(max_tokens=20)}, _config())
    assert state["status"] == "budget_exceeded"
    assert "> max_tokens 20" in state["reason"]
    assert state["usage"].tokens > 20
    assert len(planner.calls) == 1  # the planner was not asked to decide or replan


async def test_the_same_plan_twice_ends_the_run_as_stuck(team: Team) -> None:
    same = plan(("retrieve", "find the tax code", []))
    team.use("planner", [same, {"action": "replan", "answer": "", "steps": same["steps"]}])
    state = await _run(team)
    assert state["status"] == "stuck"
    assert "same plan twice" in state["reason"]


async def test_a_failing_sub_agent_fails_its_branch_only_and_the_planner_sees_it(team: Team) -> None:
    def broken(messages: list[dict[str, Any]]) -> str:
        raise ValueError("index on fire")

    team.use("retriever", broken)
    planner = team.use("planner", [plan(("retrieve", "find", []), ("answer", "answer anyway", [])), {"text": "guess"},
                                   finish("a guess")])
    state = await _run(team)
    assert (state["status"], state["reason"]) == ("unanswered", "the steps found no evidence to answer the question from")
    failed = next(r for r in state["results"] if r.agent == "retriever")
    assert failed.status == "error" and "index on fire" in (failed.error or "")
    assert "index on fire" in planner.calls[-1][-1]["content"]


async def test_low_router_confidence_escalates_to_the_remote_tier(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_HYBRID__ESCALATE_TO", "scripted/t-cloud")
    use_settings(load_settings())
    cloud = team.use("cloud", lambda m: {"keywords": ["tax"]})
    team.use("router", route(confidence=0.2))
    team.use("planner", [plan(("retrieve", "find", [])), finish()])
    state = await _run(team)
    [result] = state["results"]
    assert (result.tier, result.escalated, result.model) == ("remote", True, "scripted/t-cloud")
    assert "router confidence 0.20 < 0.50" in (result.escalation_reason or "")
    assert len(cloud.calls) == 1 and len(team.scripts["retriever"].calls) == 0


async def test_confident_routes_stay_local(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_HYBRID__ESCALATE_TO", "scripted/t-cloud")
    use_settings(load_settings())
    cloud = team.use("cloud", [])
    team.use("planner", [plan(("retrieve", "find", [])), finish()])
    state = await _run(team)
    assert [r.escalated for r in state["results"]] == [False]
    assert cloud.calls == []


async def test_a_local_result_that_fails_verification_is_retried_remotely(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_HYBRID__ESCALATE_TO", "scripted/t-cloud")
    use_settings(load_settings())
    team.use("coder", [{"edits": [{"path": "shop/pricing.py", "code": "def broken(:"}], "explanation": "oops"}])
    team.use("cloud", [{"edits": [{"path": "shop/pricing.py", "code": "def fixed():\n    return 1\n"}], "explanation": "ok"}])
    team.use("planner", [plan(("code", "fix it", [])), finish()])
    state = await _run(team, task=CHANGE)
    [result] = state["results"]
    assert (result.status, result.tier, result.escalated) == ("ok", "remote", True)
    assert "failed verification" in (result.escalation_reason or "")
    assert result.code.edits[0].code.startswith("def fixed")


async def test_without_a_remote_tier_a_failed_result_stays_failed(team: Team) -> None:
    team.use("coder", [{"edits": [{"path": "shop/pricing.py", "code": "def broken(:"}], "explanation": "oops"}])
    team.use("planner", [plan(("code", "fix it", [])), finish()])
    state = await _run(team, task=CHANGE)
    [result] = state["results"]
    assert (result.status, result.tier) == ("failed", "local")
    assert "verification failed" in result.summary


async def test_a_run_resumes_after_an_exception_without_redoing_steps(team: Team) -> None:
    team.use(
        "planner",
        in_order(plan(("retrieve", "find", []), ("retrieve", "find more", [])), RuntimeError("crash"), finish("tax_for_region, after resume")),
    )
    graph = build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver())
    with pytest.raises(Exception, match="crash"):
        await graph.ainvoke({"task": TASK}, _config("resume"))
    retrieved = len(team.scripts["retriever"].calls)
    assert retrieved == 2
    state = await graph.ainvoke(None, _config("resume"))
    assert (state["status"], state["answer"]) == ("finished", "tax_for_region, after resume (shop/pricing.py:4 tax_for_region)")
    assert len(team.scripts["retriever"].calls) == retrieved  # no step was redone
    assert len(state["results"]) == 2
    assert len(team.scripts["planner"].calls) == 3


async def test_remote_calls_wait_for_approval_when_config_asks(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_HYBRID__ESCALATE_TO", "anthropic/claude-sonnet-4-5")
    monkeypatch.setenv("TURNOUT_HYBRID__APPROVE_REMOTE", "true")
    use_settings(load_settings())
    team.use("router", route(tier="remote"))
    team.use("planner", [plan(("retrieve", "find", [])), finish()])
    graph = build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver())
    paused = await graph.ainvoke({"task": TASK}, _config("approve"))
    [request] = paused["__interrupt__"]
    assert request.value["model"] == "anthropic/claude-sonnet-4-5"
    state = await graph.ainvoke(Command(resume={"approve": False}), _config("approve"))
    [result] = state["results"]
    assert (result.tier, result.status) == ("local", "ok")
    assert "not approved" in (result.escalation_reason or "")


async def test_an_unusable_planner_answer_ends_the_run_as_stuck(team: Team) -> None:
    team.use("planner", ["not json", "still not json"])
    state = await _run(team)
    assert state["status"] == "stuck"
    assert "planner's answer was unusable" in state["reason"]


async def test_repeated_steps_and_impossible_dependencies_are_dropped(team: Team) -> None:
    team.use(
        "planner",
        [plan(("retrieve", "find", [3, 2]), ("retrieve", "find", []), ("answer", "say", [0, 1, 3])), {"text": "x"}, finish()],
    )
    state = await _run(team)
    assert [(s.kind, s.depends_on) for s in state["plan"]] == [("retrieve", []), ("answer", [0])]


async def test_the_code_index_is_cached_outside_the_repository(team: Team) -> None:
    from turnout.tools import tree_fingerprint

    before = tree_fingerprint(team.repo)
    team.use("planner", [plan(("retrieve", "find", [])), finish()])
    await _run(team)
    assert tree_fingerprint(team.repo) == before
    assert not (team.repo / ".turnout").exists()
    assert list(Path(".turnout/index").iterdir())


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("finish", "is a control word, not an answer"),
        ("  ", "empty answer"),
        (TASK, "repeats the task"),
        ("The weather module handles it.", "mentions nothing any step found"),
    ],
)
async def test_a_finish_without_a_supported_answer_is_unanswered(team: Team, answer: str, reason: str) -> None:
    """What the embedded planner did on the quick-start question: `{"action": "finish",
    "answer": "finish"}` after steps that found the code, reported as `finished`."""
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish(answer)])
    state = await _run(team)
    assert state["status"] == "unanswered"
    assert reason in state["reason"]


async def test_an_answer_needs_a_step_that_worked(team: Team) -> None:
    team.use("retriever", [RuntimeError("index unavailable")])
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("tax_for_region in shop/pricing.py")])
    state = await _run(team)
    assert (state["status"], state["reason"]) == ("unanswered", "the steps found no evidence to answer the question from")


async def test_a_cost_budget_stops_a_run_when_a_remote_call_has_no_known_price(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER__MODEL", "scripted/t-planner")
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER__LOCALITY", "remote")  # a model litellm has no price for
    monkeypatch.delenv("TURNOUT_ROLES__PLANNER")
    use_settings(load_settings())
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish()])
    graph = build_hybrid_graph(repo=team.repo, checkpointer=InMemorySaver())
    state = await graph.ainvoke({"task": TASK, "budget": Budget(max_cost_usd=1.0)}, _config())
    assert state["status"] == "budget_exceeded" and state["usage"].unpriced_calls == 1, state["usage"]
    assert "1 remote call(s) had no price litellm knows" in state["reason"]
    assert state["usage"].cost_usd == 0.0  # what is known; the reason says it is not all
