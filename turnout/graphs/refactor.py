"""The refactor graph: prepare → plan → edit → verify → finish, or back to edit for another
attempt (the coder model, the remote tier last), or give_up.

    graph = build_refactor_graph()
    state = await graph.ainvoke({"request": "Rename load_inventory to read_inventory",
                                 "repo": "examples/sample_repo"}, {"configurable": {"thread_id": "r1"}})
    state["status"], state["patch"]

Everything happens in an isolated copy of the repository (`Workspace`); the user's tree is
never written — `turnout refactor --apply` copies a verified result back, and only if the
tree has not changed since the run began. Tests run before any edit (the baseline), so
failures that already existed are never reported as the refactoring's success.

Each node is a module-level function of the state and LangGraph's `Runtime`; its agents,
settings and work folder come from its `RefactorContext` (see `_running.required_context`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from turnout.agents import Coder, Verifier
from turnout.agents.refactor_planner import RefactorPlanner
from turnout.agents.schemas import Verdict
from turnout.config import Settings
from turnout.engines import check_policy, tag, usage_meter
from turnout.engines.scripted import Script
from turnout.errors import ConfigError, ModelBehaviorError, TurnoutError
from turnout.graphs import _refactor_steps as steps
from turnout.graphs._refactor_state import Attempt, RefactorState
from turnout.graphs._running import required_context, role_models, with_context
from turnout.graphs.refactor_run import refactor_settings
from turnout.tools.operations import Plan, PlanError, parse_plan
from turnout.tools.operations.edit import coder_task
from turnout.tools.operations.phrasing import read_request, uncovered
from turnout.tools.operations.running import apply_plan, check_plan, plan_postconditions
from turnout.tools.sandbox import Sandbox
from turnout.tools.test_env import TestEnvironment, WorkspaceNotTested, resolve_test_environment
from turnout.tools.test_runner import TestReport, detect_test_command, run_tests
from turnout.tools.workspace import Workspace
from turnout.telemetry import agent_node

DEFAULT_MAX_ATTEMPTS = 3
TEST_TIMEOUT_S = 600.0


@dataclass
class RefactorContext:
    """What the refactor graph's nodes work with: its agents, settings, where workspaces go,
    the test time limit. `build_refactor_graph` binds one to the graph; a run may pass its
    own through LangGraph's runtime (`context=RefactorContext(…)`)."""

    planner: RefactorPlanner
    coder: Coder
    verifier: Verifier
    settings: Settings
    work_dir: Path = field(default_factory=lambda: Path(".turnout"))
    test_timeout_s: float = TEST_TIMEOUT_S


def build_refactor_graph(
    *,
    settings: Settings | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    work_dir: Path | str | None = None,
    test_timeout_s: float = TEST_TIMEOUT_S,
    models: Mapping[str, str | Script] | None = None,
    name: str = "refactor",
) -> CompiledStateGraph[RefactorState, RefactorContext, RefactorState, RefactorState]:
    """A compiled refactor graph. `work_dir`: where workspaces and patches go
    (default `.turnout/` in the working directory). It runs under policy `no-code` unless
    config chose one (`refactor_settings`), wherever it runs: here, under `turnout refactor`
    or on LangGraph Server. A config that contradicts its privacy policy (a remote model
    under `local-only`) fails here, before any run. `models`: a model string or a `Script`
    (in a test) for a role, instead of config's."""
    models = role_models(models)
    settings = refactor_settings(settings)
    check_policy(settings, roles=("planner", "coder", "verifier"), models={"[hybrid] escalate_to": settings.hybrid.escalate_to})
    context = RefactorContext(
        planner=RefactorPlanner(settings=settings, model=models.get("planner")),
        coder=Coder(settings=settings, model=models.get("coder")),
        verifier=Verifier(settings=settings, model=models.get("verifier")),
        settings=settings, work_dir=Path(work_dir) if work_dir is not None else Path(".turnout"), test_timeout_s=test_timeout_s,
    )
    builder = StateGraph(RefactorState)
    for node in (prepare, plan, edit, verify, finish, give_up):
        builder.add_node(node.__name__, node)
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", after_prepare, ["plan", END])
    builder.add_conditional_edges("plan", after_plan, ["edit", END])
    builder.add_edge("edit", "verify")
    builder.add_conditional_edges("verify", after_verify, ["finish", "edit", "give_up"])
    builder.add_edge("finish", END)
    builder.add_edge("give_up", END)
    return with_context(builder.compile(checkpointer=checkpointer, name=name), context)


def _workspace(state: RefactorState) -> Path:
    return Path(state["workspace"])


async def prepare(state: RefactorState, runtime: Runtime[RefactorContext]) -> dict[str, Any]:
    """Copy the repository, choose the test environment and command, run the tests before any edit."""
    context = required_context(runtime, RefactorContext, "refactor")
    run_id = state.get("run_id") or uuid.uuid4().hex[:12]
    ws = await asyncio.to_thread(Workspace.create, Path(state["repo"]), run_id, base_dir=context.work_dir / "work")
    update: dict[str, Any] = {"run_id": run_id, "workspace": str(ws.path), "status": "running",
                              "run_folder": str((context.work_dir / "runs" / run_id).resolve())}
    try:
        configured = context.settings.refactor
        sandbox = await asyncio.to_thread(
            Sandbox.resolve, state.get("sandbox") or configured.sandbox, hide=[Path(state["repo"])],
            pass_env=[*configured.pass_env, *state.get("pass_env", [])])
        env = await resolve_test_environment(
            Path(state["repo"]), ws.path, state.get("python") or configured.python,
            fallback=configured.environment, needs_pytest=not state.get("test_command"), sandbox=sandbox)
    except (WorkspaceNotTested, ConfigError) as exc:
        return {**update, "status": "no_test_environment", "reason": str(exc)}
    command = state.get("test_command") or detect_test_command(ws.path, env.python)
    update.update(test_env=env, test_command=command)
    if command is None:
        return {**update, "status": "no_test_command",
                "reason": "no test command found (pytest, tox or `make test`); pass --test-cmd"}
    baseline = await tests_leaving_no_trace(ws, command, timeout_s=context.test_timeout_s, env=env)
    update["baseline"] = baseline
    if baseline.no_tests_ran:  # proves nothing, whatever --allow-failing-baseline says
        return {**update, "status": "baseline_failing",
                "reason": f"no tests ran before any edit ({baseline.summary()}) with `{baseline.command}`, "
                          f"interpreter {env.describe()}; a run in which no test runs cannot verify an edit. "
                          "Pass --python or --test-cmd with what runs this repository's tests"}
    if not baseline.ok and not state.get("allow_failing_baseline"):
        failing = ", ".join(baseline.failures[:5]) or baseline.summary()
        return {**update, "status": "baseline_failing",
                "reason": f"the tests already fail before any edit ({failing}); fix them or pass --allow-failing-baseline"}
    return update


@agent_node("refactor_planner")
async def plan(state: RefactorState, runtime: Runtime[RefactorContext]) -> dict[str, Any]:
    """The plan: given (a plan file, the command line), read from the request's words, or the planner's; checked."""
    context = required_context(runtime, RefactorContext, "refactor")
    index = await asyncio.to_thread(steps.index_for, _workspace(state))
    update: dict[str, Any] = {}
    if (given := state.get("plan")) is not None:  # a plan file or the command line: the plan is the request
        try:  # a client of LangGraph Server sends it as JSON
            made = given if isinstance(given, Plan) else parse_plan(given, "the plan given")
        except PlanError as exc:
            return {"status": "failed", "reason": str(exc)}
        source, not_covered = state.get("plan_source") or "plan file", []
    else:
        reading = read_request(state["request"])
        made, source = reading.plan, "phrasing"
        if made is None or reading.problems:
            with usage_meter() as meter:
                try:
                    answer = await context.planner.run(
                        state["request"],
                        symbols=steps.candidate_symbols(index, state["request"]),
                        modules=steps.modules_of(index),
                        new_names=steps.candidate_new_names(index, state["request"]),
                    )
                except ModelBehaviorError as exc:
                    return {"status": "failed", "reason": f"the planner's answer was unusable: {exc}",
                            "usage": meter.totals}
            update.update(usage=meter.totals, planner_answer=answer)
            if problem := steps.plan_problem(answer, index):
                return {**update, "status": "nothing_to_change", "reason": problem}
            if mismatch := steps.request_mismatch(answer, state["request"]):
                return {**update, "status": "failed", "reason": f"the planner misread the request: {mismatch}"}
            made, source = steps.plan_from_answer(answer, state["request"]), "model"
    checked, problems = await asyncio.to_thread(check_plan, made, _workspace(state))
    if source in ("phrasing", "model"):  # the plan as checked names where things are (a move's old module)
        not_covered = uncovered(state["request"], checked, steps.known_names(index))
        if source == "phrasing":  # what the patterns left unread (the model read the whole request)
            not_covered += reading.unread_changes()
        not_covered += [f"{p}: the words were read, but make no operation" for p in reading.problems]
    update.update(plan=checked, plan_source=source, uncovered=list(dict.fromkeys(not_covered)))
    if problems:
        explicit = source in ("plan file", "command line")
        status = "nothing_to_change" if not problems.invalid and not explicit else "failed"
        return {**update, "status": status, "reason": f"the plan cannot run: {problems.describe()}"}
    return {**update, "evidence": steps.evidence_for(index, checked, state["request"])}


async def edit(state: RefactorState, runtime: Runtime[RefactorContext]) -> dict[str, Any]:
    """One attempt, from the untouched copy: codemods first, then the coder (local, or the remote tier last)."""
    context = required_context(runtime, RefactorContext, "refactor")
    ws = Workspace.open(_workspace(state))
    await asyncio.to_thread(ws.reset)  # every attempt starts from the untouched copy
    previous = list(state.get("attempts", []))
    number = len(previous) + 1
    max_attempts = state.get("max_attempts") or DEFAULT_MAX_ATTEMPTS
    remote = context.settings.hybrid.escalate_to
    tier = "remote" if number > max_attempts and remote else "local"
    made: Plan = state["plan"]
    kinds = [op.op for op in made.operations if not op.needs_model]
    use_codemod = bool(kinds) and not any(a.method.startswith("codemod:") for a in previous)
    writer = f"model:{remote if tier == 'remote' else context.coder.model}"
    method = "codemod:" + "+".join(dict.fromkeys(kinds)) if use_codemod else writer
    if use_codemod and made.needs_model:
        method += f", {writer}"
    remaining: list[str] = []
    ran: Plan | None = None
    with usage_meter() as meter:
        try:
            changed: list[str] = []
            if use_codemod:
                applied = await asyncio.to_thread(apply_plan, made, _workspace(state), state.get("test_env"))
                changed, ran = applied.changed_files, Plan(operations=applied.operations)
                remaining = [f"{m.path}:{m.line}: {m.text.strip()[:100]}" for m in applied.remaining]
            if not use_codemod or made.needs_model:
                written = await steps.run_model_edit(
                    _workspace(state), coder_task(state["request"], made.operations), state["evidence"], context.coder, previous,
                    remote if tier == "remote" else None,
                )
                changed = sorted({*changed, *written})
        except (TurnoutError, ValueError, SyntaxError) as exc:
            attempt = Attempt(number=number, method=method, tier=tier, problem=str(exc))  # type: ignore[arg-type]
            return {"attempts": [attempt], "usage": meter.totals}
    attempt = Attempt(number=number, method=method, tier=tier, changed_files=changed, remaining=remaining,  # type: ignore[arg-type]
                      plan=ran)
    return {"attempts": [attempt], "usage": meter.totals}


async def _keep(state: RefactorState, attempt: Attempt, diff: str, tests: Any = None) -> None:
    if state.get("run_folder"):
        await asyncio.to_thread(steps.keep_attempt, Path(state["run_folder"]), attempt, diff, tests)


async def verify(state: RefactorState, runtime: Runtime[RefactorContext]) -> dict[str, Any]:
    """The attempt judged: it changed something, the tests hold, the postconditions; a review can only lower it."""
    context = required_context(runtime, RefactorContext, "refactor")
    attempt = state["attempts"][-1]
    ws = Workspace.open(_workspace(state))
    diff = await asyncio.to_thread(ws.diff)
    if attempt.problem:
        await _keep(state, attempt, diff)
        return {}
    if not await asyncio.to_thread(ws.changed_files):
        await _keep(state, attempt.model_copy(update={"problem": "the edit changed nothing"}), diff)
        return _reject(attempt, "the edit changed nothing")
    env = state.get("test_env")  # absent in a run checkpointed before environments were chosen
    after = await tests_leaving_no_trace(ws, state["test_command"], timeout_s=context.test_timeout_s, env=env)
    problem = steps.tests_problem(state["baseline"], after, bool(state.get("allow_failing_baseline")))
    if problem:
        await _keep(state, attempt.model_copy(update={"problem": problem}), diff, after)
        return _reject(attempt, problem, after)
    missing = await asyncio.to_thread(plan_postconditions, attempt.plan or state["plan"], ws.path, env)
    accepted = attempt.model_copy(update={"missing": missing})
    await _keep(state, accepted, diff, after)
    review: Verdict | None = None
    with usage_meter() as meter:
        try:
            review = await context.verifier.run(
                tag.compose("Request: {request}", request=tag.request(state["request"])),
                evidence=tag.compose(
                    "Tests: {tests}\nDiff:\n{diff}",
                    tests=tag.test_output(after.summary(), origin="tests"),
                    diff=tag.diff(diff[:3000], origin="workspace diff"),
                ),
            )
        except ModelBehaviorError as exc:  # a review can only lower the verdict: without one, nothing is lowered
            update = {"review_problem": str(exc)[:300]}
        else:
            update = {"review": review}
    usable = steps.usable_reasons(review, diff) if review is not None else []
    update.update({"review_usable": bool(usable), "usage": meter.totals, **_accept(accepted, after)})
    shortfalls = [*(f"not proven: {m}" for m in missing), *(f"not done: {u}" for u in state.get("uncovered", []))]
    if usable and review is not None and not review.passed:  # a review can lower the verdict, never raise it
        shortfalls.append("the review doubts the change: " + "; ".join(usable[:3]))
    if shortfalls:
        update.update(status="partial", reason="the tests pass, but " + "; ".join(shortfalls))
    return update


def after_verify(state: RefactorState, runtime: Runtime[RefactorContext]) -> str:
    if state.get("status") in ("succeeded", "partial"):
        return "finish"
    max_attempts = state.get("max_attempts") or DEFAULT_MAX_ATTEMPTS
    remote = required_context(runtime, RefactorContext, "refactor").settings.hybrid.escalate_to
    allowed = max_attempts + (1 if remote else 0)
    return "edit" if len(state.get("attempts", [])) < allowed else "give_up"


async def finish(state: RefactorState, runtime: Runtime[RefactorContext]) -> dict[str, Any]:
    """The verified change, exported as a patch."""
    ws = Workspace.open(_workspace(state))
    patch = await asyncio.to_thread(ws.export_patch, required_context(runtime, RefactorContext, "refactor").work_dir / "patches")
    return {"patch": str(patch), "changed_files": await asyncio.to_thread(ws.changed_files)}


async def give_up(state: RefactorState) -> dict[str, Any]:
    """Every attempt failed: the run says which and why."""
    attempts = state["attempts"]
    each = "; ".join(f"{a.number} ({a.method}): {(a.problem or '')[:300]}" for a in attempts)
    return {"status": "failed", "reason": f"{len(attempts)} attempt(s) failed: {each}"}


def after_prepare(state: RefactorState) -> str:
    return "plan" if state.get("status") == "running" else END


def after_plan(state: RefactorState) -> str:
    return "edit" if state.get("status") == "running" else END


async def tests_leaving_no_trace(ws: Workspace, command: list[str] | str | None, *, timeout_s: float,
                                 env: TestEnvironment | None) -> TestReport:
    """The repository's tests, run in the workspace; whatever they write there is put back
    afterwards, so the patch holds turnout's edits only."""
    before = await asyncio.to_thread(ws.snapshot)
    sandbox = await asyncio.to_thread(env.runner) if env else None
    try:
        return await run_tests(ws.path, command, timeout_s=timeout_s, python=env.python if env else None,
                               pythonpath=env.pythonpath if env else None, sandbox=sandbox)
    finally:
        await asyncio.to_thread(ws.restore, before)


def _reject(attempt: Attempt, problem: str, tests: Any = None) -> dict[str, Any]:
    return {"attempts": [attempt.model_copy(update={"problem": problem, "tests": tests})]}


def _accept(attempt: Attempt, tests: Any) -> dict[str, Any]:
    return {"attempts": [attempt.model_copy(update={"tests": tests})], "status": "succeeded"}
