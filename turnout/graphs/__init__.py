"""LangGraph StateGraphs built from turnout's agents: `hybrid` (planner + local sub-agents)
and `refactor`. They are ordinary compiled graphs that users can extend or embed."""

from turnout.graphs._hybrid_state import Assignment, Budget, HybridState, StepResult
from turnout.graphs.hybrid import build_hybrid_graph

__all__ = ["Assignment", "Budget", "HybridState", "StepResult", "build_hybrid_graph"]
