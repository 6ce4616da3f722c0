"""Your own LangGraph graph with turnout's agents as nodes, on the local model, traced.

    python examples/custom_graph.py "Where is the invoice total computed?"
    turnout run examples.custom_graph:build_graph "Where is the invoice total computed?"

The graph is an ordinary `StateGraph`: a retriever finds the code on the local model, a
plain function writes a claim from the evidence, and a verifier checks it. turnout adds
the model door (config decides where each role runs) and the traces.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from turnout import telemetry
from turnout.agents import Evidence, Retriever, Verdict, Verifier
from turnout.tools import CodeIndex

SAMPLE_REPO = Path(__file__).resolve().parent / "sample_repo"


class State(TypedDict, total=False):
    task: str
    query: str
    evidence: Evidence
    claim: str
    verdict: Verdict


def ask(state: State) -> dict[str, Any]:
    return {"query": state["task"]}


def claim(state: State) -> dict[str, Any]:
    best = state["evidence"].snippets[:1]
    where = f"{best[0].symbol or 'code'} in {best[0].path}" if best else "nothing relevant"
    return {"claim": f"Question: {state['query']}\nClaim: the answer is {where}."}


def build_graph(repo: Path = SAMPLE_REPO) -> Any:
    """The compiled graph (a factory, so `turnout run` can build it with its checkpointer)."""
    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_node("retrieve", Retriever(CodeIndex.build(repo)))  # query → evidence
    builder.add_node("claim", claim)
    builder.add_node("verify", Verifier())  # claim → verdict
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "retrieve")
    builder.add_edge("retrieve", "claim")
    builder.add_edge("claim", "verify")
    builder.add_edge("verify", END)
    return builder.compile(name="custom")


async def main(question: str) -> None:
    telemetry.configure()  # trace files under .turnout/traces (and OTLP if configured)
    graph = telemetry.instrument(build_graph())
    state = await graph.ainvoke({"task": question})
    for snippet in state["evidence"].snippets:
        print(f"{snippet.path}:{snippet.start_line}-{snippet.end_line}  {snippet.symbol or ''}")
    print(state["claim"].splitlines()[-1])
    print("verified" if state["verdict"].passed else "not verified", state["verdict"].reasons)
    telemetry.flush()


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "Where is the invoice total computed?"))
