"""The refactor graph's state and its final report."""

from __future__ import annotations

import operator
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic reads it on 3.11 (LangGraph Server's schemas)

from turnout.agents.refactor_planner import RefactorPlan
from turnout.agents.schemas import Evidence, Verdict
from turnout.engines import UsageTotals
from turnout.tools.operations import Plan
from turnout.tools.test_env import TestEnvironment
from turnout.tools.test_runner import TestReport

RefactorStatus = Literal[
    "running", "succeeded", "partial", "nothing_to_change", "failed", "baseline_failing", "no_test_command",
    "no_test_environment",
]


class Attempt(BaseModel):
    number: int
    method: str = Field(description="codemod:<name>, or model:<model string> for model-written edits.")
    tier: Literal["local", "remote"] = "local"
    changed_files: list[str] = Field(default_factory=list)
    problem: str | None = Field(None, description="Why this attempt was not accepted.")
    remaining: list[str] = Field(
        default_factory=list, description="What the codemod left for a person (docs, unconvertible sites)."
    )
    plan: Plan | None = Field(
        None, description="The plan as its codemods ran, each operation resolved on the tree it ran on."
    )
    missing: list[str] = Field(
        default_factory=list, description="Postconditions that do not hold after tests passed (the run is partial)."
    )
    tests: TestReport | None = None


def merge_attempts(existing: list[Attempt], updates: list[Attempt]) -> list[Attempt]:
    """Reducer: an attempt replaces the one with its number (verification completes what the
    edit started), or is appended."""
    merged = {a.number: a for a in existing}
    for attempt in updates:
        merged[attempt.number] = attempt
    return [merged[n] for n in sorted(merged)]


class RefactorState(TypedDict, total=False):
    request: str
    repo: str
    run_id: str
    workspace: str
    run_folder: str  # every attempt's diff and test output, kept after the workspace is removed
    test_command: list[str] | str | None
    python: str | None
    sandbox: Literal["auto", "bubblewrap", "off"]  # what the repository's code runs under ([refactor] sandbox)
    pass_env: list[str]  # variables the repository's code gets besides the allowlist (--pass-env)
    test_env: TestEnvironment
    allow_failing_baseline: bool
    max_attempts: int
    baseline: TestReport
    plan: Plan  # given (plan file, command line) or made (phrasing, model); checked against the workspace
    plan_source: Literal["phrasing", "model", "plan file", "command line"]
    planner_answer: RefactorPlan  # the model's raw answer, when the model planned
    uncovered: list[str]  # clauses of the request no operation covers: the run cannot succeed
    evidence: Evidence
    attempts: Annotated[list[Attempt], merge_attempts]
    review: Verdict
    review_usable: bool  # whether any of its reasons says something about the diff
    review_problem: str  # why there is no review (the verifier's answer did not fit its schema)
    status: RefactorStatus
    reason: str
    patch: str
    changed_files: list[str]
    usage: Annotated[UsageTotals, operator.add]
