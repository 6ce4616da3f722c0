"""LangGraph StateGraphs built from turnout's agents: `hybrid` (planner + local sub-agents)
and `refactor`. They are ordinary compiled graphs that users can extend or embed."""

from turnout.graphs._hybrid_state import Assignment, Budget, HybridState, StepResult
from turnout.graphs.hybrid import build_hybrid_graph
from turnout.graphs.refactor import build_refactor_graph
from turnout.graphs.refactor_run import refactor_settings, run_refactor
from turnout.graphs.replay import ReplayResult, replay

__all__ = [
    "Assignment", "Budget", "HybridState", "StepResult", "build_hybrid_graph", "build_refactor_graph", "refactor_settings",
    "ReplayResult", "replay", "run_refactor",
]
