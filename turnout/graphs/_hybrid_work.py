"""One fan-out branch of the hybrid graph: do a routed step, verify it, escalate if needed.

A step runs on the local tier unless the router asked for the remote tier or was unsure;
a local result that fails verification is retried once on the remote tier when config
names one (`[hybrid] escalate_to`). Why it escalated is kept in the result. An exception
fails this branch only: the planner sees the error in the next round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.types import interrupt

from turnout.agents import Coder, Planner, Retriever, Verifier, edit_problems
from turnout.agents.schemas import Evidence, Tier
from turnout.config import HybridSettings, Settings, get_settings
from turnout.engines import resolve, tag, usage_meter
from turnout.engines.privacy import deployments, own_locality
from turnout.errors import EgressRefused, TurnoutError, TurnoutSignal
from turnout.graphs._hybrid_state import Assignment, StepResult, WorkOrder
from turnout.telemetry import agent_span
from turnout.telemetry._spans import mark_error

# Which agents may take a step of each kind (the router picks among these).
CANDIDATES: dict[str, tuple[str, ...]] = {
    "retrieve": ("retriever",),
    "code": ("coder", "retriever"),
    "verify": ("verifier",),
    "answer": ("planner", "retriever"),
}


@dataclass
class Team:
    """The sub-agents a hybrid graph works with."""

    planner: Planner
    retriever: Retriever
    coder: Coder
    verifier: Verifier
    settings: Settings | None = None

    @property
    def hybrid(self) -> HybridSettings:
        return (self.settings or get_settings()).hybrid


@dataclass
class Outcome:
    status: str
    summary: str
    fields: dict[str, Any]
    problem: str | None = None  # why verification failed, when it did


def _is_remote(model: str, settings: Settings | None) -> bool:
    settings = settings or get_settings()
    target = resolve(model, settings)
    return own_locality(deployments(target.role, target.model, target.api_base, settings)) == "remote"


def _evidence_from(context: list[StepResult]) -> Evidence | None:
    snippets = [s for r in context if r.evidence for s in r.evidence.snippets]
    return Evidence(query="context", snippets=snippets) if snippets else None


async def _perform(team: Team, order: WorkOrder, agent: str, model: str | None) -> Outcome:
    step = order["assignment"].step
    context = order["context"]
    summaries = [r.summary for r in context]
    if agent == "retriever":
        evidence = await team.retriever.run(tag.as_tagged(tag.summary(step.description)), model=model)
        where = "; ".join(f"{s.path}:{s.start_line}-{s.end_line} {s.symbol or ''}".strip() for s in evidence.snippets)
        problem = None if evidence.snippets else "the search found nothing"
        return Outcome("ok", f"found {len(evidence.snippets)} snippet(s): {where}", {"evidence": evidence}, problem)
    if agent == "coder":
        evidence = _evidence_from(context)
        if evidence is None and team.retriever.index is not None:
            evidence = await team.retriever.run(tag.as_tagged(tag.summary(step.description)))
        code = await team.coder.run(tag.as_tagged(tag.summary(step.description)), evidence=evidence, model=model)
        problems = edit_problems(code)
        if not code.edits:
            problems.append("the coder returned no edits")
        touched = ", ".join(sorted({e.path for e in code.edits})) or "nothing"
        summary = f"edited {touched}: {code.explanation}"
        return Outcome("ok", summary, {"code": code, "evidence": evidence}, "; ".join(problems) or None)
    if agent == "verifier":
        verdict = await team.verifier.run(
            tag.compose("Step: {step}", step=tag.summary(step.description)),
            evidence=tag.join(tag.summary(s) for s in summaries),
            model=model,
        )
        summary = ("passed" if verdict.passed else "failed") + (": " + "; ".join(verdict.reasons) if verdict.reasons else "")
        return Outcome("ok" if verdict.passed else "failed", summary, {"verdict": verdict})
    answer = await team.planner.answer(order["task"], step, summaries, model=model)
    return Outcome("ok", answer.text, {"answer": answer.text})


async def _model_check(team: Team, order: WorkOrder, outcome: Outcome) -> str | None:
    if not team.hybrid.verify_with_model or outcome.problem:
        return outcome.problem
    step = order["assignment"].step
    verdict = await team.verifier.run(
        tag.compose("Step: {step}\nResult: {result}", step=tag.summary(step.description), result=tag.summary(outcome.summary))
    )
    return None if verdict.passed else "verifier: " + "; ".join(verdict.reasons or ["rejected"])


def _approved(model: str, assignment: Assignment) -> bool:
    answer = interrupt(
        {
            "question": f"Send step {assignment.index} ({assignment.step.kind}) to remote model {model}?",
            "model": model,
            "step": assignment.step.model_dump(),
        }
    )
    return bool(answer.get("approve") if isinstance(answer, dict) else answer)


async def run_step(team: Team, order: WorkOrder) -> dict[str, Any]:
    """The `work` node: returns one StepResult and this branch's usage."""
    assignment = order["assignment"]
    route = assignment.route
    agent = route.agent
    hybrid = team.hybrid
    remote = hybrid.escalate_to
    reasons = []
    if route.tier == "remote":
        reasons.append("the router asked for the remote tier")
    if route.confidence < hybrid.min_confidence:
        reasons.append(f"router confidence {route.confidence:.2f} < {hybrid.min_confidence:.2f}")
    tier: Tier = "remote" if reasons and remote else "local"
    escalation_reason = "; ".join(reasons) if reasons else None
    if reasons and not remote:
        escalation_reason = f"{escalation_reason} (no remote tier configured: stayed local)"

    with usage_meter() as meter, agent_span(agent, **{"turnout.step": assignment.index}) as span:
        try:
            outcome, tier, escalation_reason = await _attempt(team, order, agent, tier, escalation_reason)
        except (GraphBubbleUp, TurnoutSignal):  # an interrupt for approval, a replay stopping: control flow
            raise
        except TurnoutError as exc:
            outcome = Outcome("error", f"{agent} failed: {exc}", {}, None)
            outcome.fields["error"] = str(exc)
        except Exception as exc:  # a sub-agent's bug fails its branch, not the run
            outcome = Outcome("error", f"{agent} failed: {type(exc).__name__}: {exc}", {}, None)
            outcome.fields["error"] = f"{type(exc).__name__}: {exc}"
        if outcome.status == "error":
            mark_error(span, "step_error", outcome.fields["error"])
    model = remote if tier == "remote" and remote else _agent_model(team, agent)
    result = StepResult(
        index=assignment.index,
        round=assignment.round,
        kind=assignment.step.kind,
        agent=agent,
        tier=tier,
        model=model,
        status=outcome.status,  # type: ignore[arg-type]
        summary=outcome.summary,
        escalated=tier == "remote",
        escalation_reason=escalation_reason,
        usage=meter.totals,
        **outcome.fields,
    )
    return {"results": [result], "usage": meter.totals}


def _agent_model(team: Team, agent: str) -> str:
    return {"retriever": team.retriever, "coder": team.coder, "verifier": team.verifier}.get(agent, team.planner).model


async def _attempt(
    team: Team, order: WorkOrder, agent: str, tier: Tier, reason: str | None
) -> tuple[Outcome, Tier, str | None]:
    """Do the step on `tier`; a remote attempt the privacy policy refuses is done locally
    instead (rerouted, never sent), and the reason says so."""
    remote = team.hybrid.escalate_to
    if tier == "remote" and remote and not _allowed_remote(team, remote, order["assignment"]):
        tier, reason = "local", f"{reason}; remote call not approved"
    outcome = None
    if tier == "remote" and remote:
        try:
            outcome = await _perform(team, order, agent, remote)
        except EgressRefused as exc:
            tier, reason = "local", f"{reason}; {_rerouted(exc)}"
    if outcome is None:
        outcome = await _perform(team, order, agent, None)
    problem = await _model_check(team, order, outcome)
    if problem and tier == "local" and remote and _allowed_remote(team, remote, order["assignment"]):
        try:
            escalated = await _perform(team, order, agent, remote)
        except EgressRefused as exc:
            reason = f"local result failed verification: {problem}; {_rerouted(exc)}"
        else:
            reason = f"local result failed verification: {problem}"
            outcome, tier = escalated, "remote"
            problem = await _model_check(team, order, outcome)
    if problem:
        outcome.status = "failed"
        outcome.summary = f"{outcome.summary} [verification failed: {problem}]"
    return outcome, tier, reason


def _rerouted(exc: EgressRefused) -> str:
    return f"the remote tier was refused by privacy policy {exc.policy} ({exc.part or 'any remote call'}): stayed local"


def _allowed_remote(team: Team, model: str, assignment: Assignment) -> bool:
    if not team.hybrid.approve_remote or not _is_remote(model, team.settings):
        return True
    return _approved(model, assignment)
