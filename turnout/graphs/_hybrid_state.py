"""The hybrid graph's state: typed, checkpointable, and small enough to read in a trace."""

from __future__ import annotations

import operator
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic reads it on 3.11 (LangGraph Server's schemas)

from turnout.agents.schemas import CodeResult, Evidence, PlanStep, Route, StepKind, Tier, Verdict
from turnout.engines import UsageTotals

# `finished`: an answer that says something a step found (`_answer_check`); `unanswered`: the
# planner stopped without one; `stuck`: no progress; `budget_exceeded`: a limit was reached.
RunStatus = Literal["running", "finished", "unanswered", "stuck", "budget_exceeded"]


class Assignment(BaseModel):
    """One step of the current plan, routed: what a fan-out worker receives."""

    index: int
    round: int
    step: PlanStep
    route: Route


class StepResult(BaseModel):
    index: int
    round: int
    kind: StepKind
    agent: str
    tier: Tier
    model: str
    status: Literal["ok", "failed", "error", "refused"]
    summary: str = Field(description="What the planner is shown: written by turnout or a local agent.")
    evidence: Evidence | None = None
    code: CodeResult | None = None
    verdict: Verdict | None = None
    answer: str | None = None
    escalated: bool = False
    escalation_reason: str | None = None
    error: str | None = None
    usage: UsageTotals = Field(default_factory=UsageTotals)


class Citation(BaseModel):
    """Where an answer's evidence is: a snippet a step found."""

    path: str
    line: int
    end_line: int
    symbol: str | None = None

    @property
    def text(self) -> str:
        return f"{self.path}:{self.line} {self.symbol}" if self.symbol else f"{self.path}:{self.line}"


class Budget(BaseModel):
    """Per-run limits; any that is exceeded stops the run with status `budget_exceeded`."""

    max_steps: int = 24
    max_rounds: int = 4
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_wall_s: float | None = None


class HybridState(TypedDict, total=False):
    task: str
    budget: Budget
    started_at: float
    round: int
    plan: list[PlanStep]
    plans_seen: list[str]
    pending: list[Assignment]
    results: Annotated[list[StepResult], operator.add]
    usage: Annotated[UsageTotals, operator.add]
    status: RunStatus
    reason: str
    answer: str
    citations: list[Citation]


class WorkOrder(TypedDict):
    """What `Send` hands one fan-out branch."""

    task: str
    assignment: Assignment
    context: list[StepResult]
