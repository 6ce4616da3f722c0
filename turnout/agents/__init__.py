"""Typed roles — planner, router, retriever, coder, verifier — each a LangGraph node callable
that calls its model through `turnout.engines.complete()` with a pydantic output schema."""

from turnout.agents._base import Agent
from turnout.agents.coder import Coder, edit_problems
from turnout.agents.planner import Planner
from turnout.agents.retriever import Retriever
from turnout.agents.router import Router
from turnout.agents.schemas import (
    STEP_KINDS,
    Answer,
    CodeResult,
    Decision,
    Evidence,
    FileEdit,
    Plan,
    PlanStep,
    Route,
    SearchTerms,
    Snippet,
    StepKind,
    Verdict,
)
from turnout.agents.verifier import Verifier

__all__ = [
    "STEP_KINDS",
    "Agent",
    "Answer",
    "CodeResult",
    "Coder",
    "Decision",
    "Evidence",
    "FileEdit",
    "Plan",
    "PlanStep",
    "Planner",
    "Retriever",
    "Route",
    "Router",
    "SearchTerms",
    "Snippet",
    "StepKind",
    "Verdict",
    "Verifier",
    "edit_problems",
]
