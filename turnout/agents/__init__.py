"""Agents. `Agent` and `tool` for your own (a model, instructions, tools, an output type);
and turnout's typed roles — planner, router, retriever, coder, verifier — each a LangGraph
node that calls its model through `turnout.engines.complete()` with a pydantic output schema."""

from turnout.agents._base import RoleAgent
from turnout.agents.agent import Agent, AgentResult
from turnout.agents.tools import Tool, ToolResult, tool
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
    "AgentResult",
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
    "RoleAgent",
    "Route",
    "Router",
    "SearchTerms",
    "Snippet",
    "StepKind",
    "Tool",
    "ToolResult",
    "Verdict",
    "Verifier",
    "edit_problems",
    "tool",
]
