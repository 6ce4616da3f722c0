"""The hybrid graph: planner → router per step → parallel sub-agents (`Send`) → join →
planner finishes or replans.

    graph = build_hybrid_graph(repo="path/to/repo", checkpointer=saver)
    state = await graph.ainvoke({"task": "Where is tax computed?"}, {"configurable": {"thread_id": "t1"}})
    state["status"], state["answer"]

It is an ordinary compiled LangGraph graph: add it to your own graph, stream it, resume it
from its checkpoints. A plan that does not fit the task (every step the same, code written for
a question, nothing that finds or changes anything) is re-planned once with the reason; the
planner's final answer cites evidence ids (`_answer_check`). Runs stop with a status —
`finished` (an answer grounded in what a step found, citing `path:line symbol`), `unanswered`
(the planner stopped without one), `stuck` (a plan that did not fit twice, the same plan
twice, or too many rounds), or `budget_exceeded` — never by spinning.

Each node is a module-level function of the state and LangGraph's `Runtime`; its agents and
code index come from its `HybridContext` (see `_running.required_context`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from turnout.agents import Coder, Planner, Retriever, Router, Verifier
from turnout.agents.schemas import STEP_KINDS, Decision, PlanStep, StepKind
from turnout.config import Settings, get_settings
from turnout.engines import check_policy, tag, usage_meter
from turnout.engines.scripted import Script
from turnout.errors import ModelBehaviorError, UserError
from turnout.graphs._answer_check import describe_evidence, evidence_items, ground, is_question
from turnout.graphs._hybrid_state import Assignment, Budget, HybridState, StepResult, WorkOrder
from turnout.graphs._hybrid_work import CANDIDATES, Team, run_step
from turnout.graphs._running import required_context, role_models, with_context
from turnout.telemetry import agent_node


def budget_from(settings: Settings) -> Budget:
    h = settings.hybrid
    return Budget(
        max_steps=h.max_steps,
        max_rounds=h.max_rounds,
        max_tokens=h.max_tokens,
        max_cost_usd=h.max_cost_usd,
        max_wall_s=h.max_wall_s,
    )


def _fingerprint(plan: list[PlanStep]) -> str:
    text = json.dumps([(s.kind, s.description.strip().lower()) for s in plan])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sanitized(plan: list[PlanStep]) -> list[PlanStep]:
    """Repeated steps are dropped, and dependencies may only point at earlier steps: what a
    small model writes beyond that is noise, not a plan."""
    unique: list[PlanStep] = []
    for step in plan:
        if all((s.kind, s.description.strip()) != (step.kind, step.description.strip()) for s in unique):
            unique.append(step)
    return [
        s.model_copy(update={"depends_on": sorted({d for d in s.depends_on if 0 <= d < i})})
        for i, s in enumerate(unique)
    ]


AnswerT = TypeVar("AnswerT")
QUESTION_KINDS: tuple[StepKind, ...] = ("retrieve", "answer", "verify")  # a question's plan writes no code
FINDING_KINDS: tuple[StepKind, ...] = ("retrieve", "code")  # steps whose results can answer a task


def check_task(task: object, settings: Settings | None = None) -> str:
    """The task, or UserError saying what is wrong with it: before any model call, so a task
    no model could take is never silently cut."""
    if not isinstance(task, str) or not task.strip():
        raise UserError('the task is empty; say what to do, e.g. "where is X computed?"')
    limit = (settings or get_settings()).hybrid.max_task_chars
    if len(task) > limit:
        raise UserError(
            f"the task is {len(task):,} characters; the limit is {limit:,} ([hybrid] max_task_chars), "
            "so that it fits the planner's context with the plan: shorten it, or raise the limit"
        )
    return task


def plan_problem(task: str, steps: list[PlanStep], *, first: bool) -> str | None:
    """Why a plan does not fit the task (None if it does): every step the same, code written
    for a question, or (a first plan) no step that finds facts or makes a change."""
    if len(steps) > 1 and len({(s.kind, s.description.strip().lower()) for s in steps}) == 1:
        return f"all {len(steps)} steps are the same step"
    if is_question(task) and any(s.kind == "code" for s in steps):
        return "the task is a question, and the plan writes code: plan retrieve steps to find the answer"
    if first and not any(s.kind in FINDING_KINDS for s in steps):
        return "no step finds anything or changes anything, so no step result could answer the task"
    return None


async def _asked_twice(
    ask: Callable[[tuple[str, AnswerT] | None], Awaitable[AnswerT]], problem_of: Callable[[AnswerT], str | None]
) -> tuple[AnswerT, str | None]:
    """The planner's answer, asked again once with the reason when it does not fit (`ask`
    gets the reason and the rejected answer); the problem that remains, if any."""
    answer = await ask(None)
    if (problem := problem_of(answer)) is None:
        return answer, None
    answer = await ask((problem, answer))
    return answer, problem_of(answer)


def _over_budget(state: HybridState, upcoming_steps: int = 0) -> str | None:
    budget = state.get("budget") or Budget()
    usage = state.get("usage")
    done = len(state.get("results", []))
    if done + upcoming_steps > budget.max_steps:
        return f"step budget: {done} done + {upcoming_steps} next > max_steps {budget.max_steps}"
    if usage is not None and budget.max_tokens is not None and usage.tokens > budget.max_tokens:
        return f"token budget: {usage.tokens} > max_tokens {budget.max_tokens}"
    if usage is not None and budget.max_cost_usd is not None and usage.cost_usd > budget.max_cost_usd:
        return f"cost budget: ${usage.cost_usd:.4f} > max_cost_usd ${budget.max_cost_usd}"
    if usage is not None and budget.max_cost_usd is not None and usage.unpriced_calls:
        return (f"cost budget: {usage.unpriced_calls} remote call(s) had no price litellm knows, so the spend is "
                f"unknown and max_cost_usd ${budget.max_cost_usd} cannot be kept; use priced models or no cost budget")
    started = state.get("started_at")
    if started is not None and budget.max_wall_s is not None and time.time() - started > budget.max_wall_s:
        return f"time budget: {time.time() - started:.1f}s > max_wall_s {budget.max_wall_s}"
    return None


def _round_results(state: HybridState) -> dict[int, StepResult]:
    current = state.get("round", 0)
    return {r.index: r for r in state.get("results", []) if r.round == current}


def _ready(state: HybridState) -> list[int]:
    done = _round_results(state)
    return [
        i
        for i, step in enumerate(state.get("plan", []))
        if i not in done and all(d in done for d in step.depends_on)
    ]


def index_repository(repo: Path | str) -> Any:
    """The code index of `repo`, built or refreshed from its cache beside the run
    (./.turnout/index/<hash of the path>), never inside the user's repository."""
    from turnout.tools.code_index import CodeIndex

    root = Path(repo).resolve()
    cache = Path(".turnout") / "index" / hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return CodeIndex.build(root, cache_dir=cache)


@dataclass
class HybridContext:
    """What the hybrid graph's nodes work with: the team of agents, the router, the
    repository's code index. `build_hybrid_graph` binds one to the graph; a run may pass its
    own through LangGraph's runtime (`graph.ainvoke(state, config, context=HybridContext(…))`),
    and a test calls a node alone with one (`await route(state, Runtime(context=…))`)."""

    team: Team
    router: Router
    index: Any | None = None  # the repository's CodeIndex, when the graph has a repository

    @property
    def settings(self) -> Settings:
        return self.team.settings or get_settings()


def build_hybrid_graph(
    *,
    repo: Path | str | None = None,
    index: Any | None = None,
    settings: Settings | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    models: Mapping[str, str | Script] | None = None,
    name: str = "hybrid",
) -> CompiledStateGraph[HybridState, HybridContext, HybridState, HybridState]:
    """A compiled hybrid graph over `repo` (its code index is built or refreshed here).

    `checkpointer`: any LangGraph saver (the CLI uses SQLite at `.turnout/checkpoints.sqlite`;
    async runs need `AsyncSqliteSaver`). Config decides every agent's model unless `models`
    names one for a role (a model string, or a `Script` in a test); a config that contradicts
    its privacy policy (a remote model under `local-only`) fails here, before any run.
    """
    models = role_models(models)
    startup = settings or get_settings()
    check_policy(startup, models={"[hybrid] escalate_to": startup.hybrid.escalate_to})
    if index is None and repo is not None:
        index = index_repository(repo)
        if not index.files:
            raise UserError(
                f"{repo} has no files the code index can read (Python or other text, outside .git and "
                "virtualenvs): point the graph at a repository"
            )
    team = Team(
        planner=Planner(settings=settings, model=models.get("planner")),
        retriever=Retriever(index, settings=settings, model=models.get("retriever")),
        coder=Coder(settings=settings, model=models.get("coder")),
        verifier=Verifier(settings=settings, model=models.get("verifier")),
        settings=settings,
    )
    builder = StateGraph(HybridState)
    builder.add_node("plan", plan)
    builder.add_node("route", route)
    builder.add_node("work", work)
    builder.add_node("decide", decide)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", after_plan, ["route", END])
    builder.add_conditional_edges("route", fan_out, ["work", "decide", END])
    builder.add_edge("work", "decide")
    builder.add_conditional_edges("decide", after_decide, ["route", END])
    graph = builder.compile(checkpointer=checkpointer, name=name)
    return with_context(graph, HybridContext(team=team, router=Router(settings=settings, model=models.get("router")), index=index))


@agent_node("planner")
async def plan(state: HybridState, runtime: Runtime[HybridContext]) -> dict[str, Any]:
    """The first plan for the task: asked again once with the reason when it does not fit."""
    context = required_context(runtime, HybridContext, "hybrid")
    update: dict[str, Any] = {
        "status": "running",
        "started_at": state.get("started_at") or time.time(),
        "budget": state.get("budget") or budget_from(context.settings),
    }
    index = context.index
    files = tag.compose("Files: {files}", files=tag.path(", ".join(index.files[:40]))) if index is not None else ""
    task = check_task(state.get("task"), context.settings)
    kinds = QUESTION_KINDS if is_question(task) else STEP_KINDS
    planner = context.team.planner
    with usage_meter() as meter:
        try:
            async def ask(rejected: tuple[str, list[PlanStep]] | None) -> list[PlanStep]:
                if rejected is None:
                    return (await planner.run(task, context=files, kinds=kinds)).steps
                problem, steps = rejected
                again = tag.compose("{context}\nA plan was rejected: {why}.", context=files, why=tag.instructions(problem))
                finding = [k for k in FINDING_KINDS if k in kinds]  # the kinds it left out, now the only choice
                only = finding if not any(s.kind in FINDING_KINDS for s in steps) else kinds
                return (await planner.run(task, context=again, kinds=tuple(only))).steps

            steps, problem = await _asked_twice(ask, lambda steps: plan_problem(task, steps, first=True))
            if problem:
                return {**update, "status": "stuck", "reason": f"the plan did not fit the task twice: {problem}",
                        "usage": meter.totals}
        except ModelBehaviorError as exc:
            return {**update, "status": "stuck", "reason": f"the planner's answer was unusable: {exc}", "usage": meter.totals}
    update.update(_adopt({**state, **update}, steps), usage=meter.totals)  # type: ignore[typeddict-item]
    return update


@agent_node("router")
async def route(state: HybridState, runtime: Runtime[HybridContext]) -> dict[str, Any]:
    """Every step whose dependencies are done, routed to an agent and a tier."""
    router = required_context(runtime, HybridContext, "hybrid").router
    ready = _ready(state)
    exceeded = _over_budget(state, len(ready))
    if exceeded:
        return {"status": "budget_exceeded", "reason": exceeded, "pending": []}
    steps = state["plan"]
    with usage_meter() as meter:
        routes = await asyncio.gather(*(router.run(steps[i], candidates=CANDIDATES[steps[i].kind]) for i in ready))
    pending = [
        Assignment(index=i, round=state.get("round", 0), step=steps[i], route=r)
        for i, r in zip(ready, routes, strict=True)
    ]
    return {"pending": pending, "usage": meter.totals}


def fan_out(state: HybridState) -> list[Send] | str:
    """One `work` branch per routed step (in parallel), with the results it depends on."""
    if state.get("status") != "running":
        return END
    pending = state.get("pending") or []
    if not pending:
        return "decide"
    context = list(_round_results(state).values())
    return [
        Send("work", WorkOrder(task=state["task"], assignment=a,
                               context=[r for r in context if r.index in a.step.depends_on]))
        for a in pending
    ]


async def work(order: WorkOrder, runtime: Runtime[HybridContext]) -> dict[str, Any]:
    """One routed step, done by its agent (see `_hybrid_work.run_step`)."""
    return await run_step(required_context(runtime, HybridContext, "hybrid").team, order)


@agent_node("planner")
async def decide(state: HybridState, runtime: Runtime[HybridContext]) -> dict[str, Any]:
    """After a round: route what became ready, or let the planner finish (an answer grounded
    in the evidence it cites) or replan."""
    planner = required_context(runtime, HybridContext, "hybrid").team.planner
    exceeded = _over_budget(state)
    if exceeded:
        return {"status": "budget_exceeded", "reason": exceeded}
    if _ready(state):
        return {}  # more steps of this plan became ready: route them
    results = sorted(_round_results(state).values(), key=lambda r: r.index)
    summaries = [
        tag.compose(f"step {r.index} [{r.kind} by {r.agent}, {r.status}]: {{s}}", s=tag.summary(r.summary))
        for r in results
    ]
    task = state["task"]
    all_results = list(state.get("results") or [])
    evidence = evidence_items(all_results, task)
    with usage_meter() as meter:
        try:
            async def ask(rejected: tuple[str, Decision] | None) -> Decision:
                why = [tag.instructions(f"(a new plan was rejected: {rejected[0]})")] if rejected else []
                return await planner.decide(
                    task, state["plan"], [*summaries, *why], evidence=describe_evidence(evidence), cite_ids=list(evidence)
                )

            def problem_of(decision: Decision) -> str | None:
                replans = decision.action == "replan" and decision.steps
                return plan_problem(task, decision.steps, first=False) if replans else None

            decision, problem = await _asked_twice(ask, problem_of)
            if problem:
                return {"status": "stuck", "reason": f"the new plan did not fit the task twice: {problem}",
                        "usage": meter.totals}
        except ModelBehaviorError as exc:
            return {"status": "stuck", "reason": f"the planner's answer was unusable: {exc}", "usage": meter.totals}
    if decision.action == "finish" or not decision.steps:
        grounded = ground(decision.answer, decision.cites, task, all_results)
        done = {"answer": grounded.answer, "citations": grounded.citations, "usage": meter.totals}
        if grounded.problem:
            return {**done, "status": "unanswered", "reason": grounded.problem}
        return {**done, "status": "finished"}
    return {**_adopt(state, decision.steps), "usage": meter.totals}


def after_plan(state: HybridState) -> str:
    return "route" if state.get("status") == "running" else END


def after_decide(state: HybridState) -> str:
    return "route" if state.get("status") == "running" else END


def _adopt(state: HybridState, steps: list[PlanStep]) -> dict[str, Any]:
    """Take a new plan for the next round, unless it repeats one or rounds are used up."""
    plan = _sanitized(steps)
    fingerprint = _fingerprint(plan)
    seen = list(state.get("plans_seen", []))
    budget = state.get("budget") or Budget()
    next_round = state.get("round", 0) + 1
    if fingerprint in seen:
        return {"status": "stuck", "reason": "the planner proposed the same plan twice"}
    if next_round > budget.max_rounds:
        return {"status": "stuck", "reason": f"no answer after {budget.max_rounds} planning rounds"}
    return {"plan": plan, "plans_seen": [*seen, fingerprint], "round": next_round, "status": "running"}
