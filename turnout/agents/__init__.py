"""Typed roles — planner, router, retriever, coder, verifier — each a LangGraph node callable
that calls its model through `turnout.engines.complete()` with a pydantic output schema."""
