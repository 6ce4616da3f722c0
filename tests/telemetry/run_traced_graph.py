"""Run the fixture graph in a fresh process with `turnout.telemetry.configure()` as an
application would: `python -m tests.telemetry.run_traced_graph` (used by the OTLP tests)."""

from __future__ import annotations

import asyncio

from tests.telemetry.graph_fixture import build_graph
from turnout import telemetry
from turnout.engines import scripted


async def main() -> None:
    telemetry.configure()
    scripted.register("planner", ["alpha,beta,gamma"])
    scripted.register("worker", lambda messages: "found it")
    scripted.register("summarizer", ["covered"])
    graph = telemetry.instrument(build_graph())
    await graph.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "otlp"}})
    telemetry.flush()
    print("run finished")


if __name__ == "__main__":
    asyncio.run(main())
