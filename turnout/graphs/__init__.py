"""LangGraph StateGraphs built from turnout's agents: `hybrid` (planner + local sub-agents)
and `refactor`. They are ordinary compiled graphs that users can extend or embed."""
