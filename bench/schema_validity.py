"""Schema validity of every agent on the embedded model: does each answer come back as a valid
object, within its token budget, and how fast?

    python3 bench/schema_validity.py                 # 30 inputs per agent, the embedded model
    python3 bench/schema_validity.py --per-agent 5 --agents router,coder

Each agent (planner, router, retriever, coder, verifier, refactor planner) runs through its
own `run()`, so prompts, schemas and budgets are the ones a real run uses, over inputs made
from `examples/sample_repo`: questions and tasks about its real symbols, the code the index
finds for them, diffs of real renames. Every model call is read from its OpenTelemetry span
(output tokens, `max_tokens`, finish reason), so a call the agent re-asked counts twice.

A row says, per agent: answers that came back as a valid object (the goal is all of them),
answers that ran out of their token budget (cut off, or JSON that never closed: a call that
fails its schema leaves no usage on its span), output tokens of the answered calls against
the budget (median / max), and p50/p90 latency per answer. Results go to bench/results/schema_validity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, percentile, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample_repo"
AGENTS = ("planner", "router", "retriever", "coder", "verifier", "refactor_planner")
MODEL = "llamacpp/smollm2"

QUESTION_FORMS = ("Where is {name} defined?", "What does {name} return?", "Which functions call {name}?",
                  "Explain what {name} does.", "Is {name} tested anywhere?")
TASK_FORMS = ("Rename {name} to {name}_v2", "Add a docstring to {name}", "Write a test for {name}",
              "Make {name} handle an empty input", "Find the bug in {name}")
REFACTOR_FORMS = ("Rename {name} to {name}_new", "Add type hints to {name}", "Inline {name}",
                  "Move {name} into stockroom.models", "Add a docstring to {name}")
STEP_FORMS = ("find where {name} is defined", "change {name} to log its input", "check that the tests of {name} pass",
              "plan how to split {name}", "explain the result of {name}")


def _inputs(names: list[str], forms: tuple[str, ...], count: int) -> list[tuple[str, str]]:
    """`count` (name, text) pairs, cycling through the forms and the names: varied, and the same every run."""
    pairs = [(name, form.format(name=name)) for name in names for form in forms]
    step = max(1, len(pairs) // count)
    return pairs[::step][:count]


def _diff(path: str, old: str, new: str) -> str:
    return (f"--- a/{path}\n+++ b/{path}\n@@ -1,3 +1,3 @@\n-def {old}(value):\n+def {new}(value):\n"
            f"     \"\"\"Unchanged body.\"\"\"\n     return value\n")


async def _calls(names: list[str], agent: str, count: int) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    from turnout.agents import Coder, Planner, Retriever, Router, Verifier
    from turnout.agents.refactor_planner import RefactorPlanner
    from turnout.agents.schemas import Evidence, Snippet
    from turnout.graphs import _refactor_steps as steps
    from turnout.tools.code_index import CodeIndex

    index = await asyncio.to_thread(CodeIndex.build, SAMPLE)
    short = [name.rsplit(".", 1)[-1] for name in names]

    def evidence(query: str) -> Evidence:
        hits = index.search(query, k=2)
        return Evidence(query=query, snippets=[
            Snippet(path=h.chunk.path, start_line=h.chunk.start_line, end_line=h.chunk.end_line, score=h.score,
                    symbol=h.chunk.symbol, text=h.chunk.text) for h in hits])

    if agent == "planner":
        planner = Planner()
        return [(text, lambda text=text: planner.run(text)) for _, text in _inputs(short, QUESTION_FORMS + TASK_FORMS, count)]
    if agent == "router":
        router = Router()
        return [(text, lambda text=text: router.run(text)) for _, text in _inputs(short, STEP_FORMS, count)]
    if agent == "retriever":
        retriever = Retriever(index=index)
        return [(text, lambda text=text: retriever.run(text)) for _, text in _inputs(short, QUESTION_FORMS, count)]
    if agent == "coder":
        coder = Coder()
        return [(text, lambda text=text: coder.run(text, evidence=evidence(text)))
                for _, text in _inputs(short, TASK_FORMS, count)]
    if agent == "verifier":
        verifier = Verifier()
        pairs = _inputs(short, ("Rename {name} to {name}_v2",), count)
        return [(text, lambda name=name, text=text: verifier.run(text, evidence=_diff("src/stockroom/x.py", name, f"{name}_v2")))
                for name, text in pairs]
    if agent == "refactor_planner":
        planner = RefactorPlanner()
        modules = steps.modules_of(index)
        return [(text, lambda text=text: planner.run(
            text, symbols=steps.candidate_symbols(index, text), modules=modules,
            new_names=steps.candidate_new_names(index, text)))
            for _, text in _inputs(short, REFACTOR_FORMS, count)]
    raise SystemExit(f"unknown agent {agent!r}: choose from {', '.join(AGENTS)}")


def _chat_spans(exporter: Any) -> list[dict[str, Any]]:
    found = []
    for span in exporter.get_finished_spans():
        if not span.name.startswith("chat "):
            continue
        attributes = span.attributes or {}
        reasons = attributes.get("gen_ai.response.finish_reasons") or ["?"]
        found.append({
            "output_tokens": int(attributes.get("gen_ai.usage.output_tokens") or 0),
            "max_tokens": attributes.get("gen_ai.request.max_tokens"),
            "finish_reason": reasons[0],
        })
    exporter.clear()
    return found


async def measure(agent: str, count: int, names: list[str], exporter: Any) -> dict[str, Any]:
    records = []
    for text, call in await _calls(names, agent, count):
        started = time.perf_counter()
        try:
            await call()
            outcome, error = "valid", None
        except Exception as exc:  # noqa: BLE001 - every failure is a measured outcome
            outcome, error = "invalid", f"{type(exc).__name__}: {str(exc)[:200]}"
        calls = _chat_spans(exporter)
        # A call that fails its schema leaves no usage on its span; JSON that never closed ran out of budget.
        out_of_budget = any(c["finish_reason"] == "length" for c in calls) or "EOF while parsing" in (error or "")
        records.append({"input": text, "outcome": outcome, "error": error, "seconds": time.perf_counter() - started,
                        "calls": calls, "out_of_budget": out_of_budget})
    calls = [c for r in records for c in r["calls"]]
    seconds = [r["seconds"] for r in records]
    used = [c["output_tokens"] for c in calls]
    budgets = sorted({c["max_tokens"] for c in calls if c["max_tokens"] is not None})
    return {
        "agent": agent, "inputs": len(records), "valid": sum(r["outcome"] == "valid" for r in records),
        "model_calls": len(calls), "cut_off": sum(r["out_of_budget"] for r in records),
        "budget": budgets, "median_tokens": statistics.median(used) if used else 0, "max_tokens_used": max(used, default=0),
        "p50_s": percentile(seconds, 0.5) if seconds else 0.0, "p90_s": percentile(seconds, 0.9) if seconds else 0.0,
        "records": records,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| agent | valid | calls | out of budget | tokens used (median / max, answered calls) | budget | p50 s | p90 s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        budget = "/".join(str(b) for b in r["budget"]) or "-"
        lines.append(f"| {r['agent']} | {r['valid']}/{r['inputs']} | {r['model_calls']} | {r['cut_off']} | "
                     f"{r['median_tokens']:g} / {r['max_tokens_used']} | {budget} | {r['p50_s']:.2f} | {r['p90_s']:.2f} |")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from turnout.config import load_settings, use_settings
    from turnout.tools.code_index import CodeIndex

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    roles = {role: {"model": args.model} for role in ("planner", "router", "retriever", "coder", "verifier")}
    use_settings(load_settings(roles=roles, traces_dir="off"))
    names = sorted(set((await asyncio.to_thread(CodeIndex.build, SAMPLE)).symbols()))
    agents = args.agents.split(",") if args.agents else list(AGENTS)
    rows = []
    for agent in agents:
        row = await measure(agent, args.per_agent, names, exporter)
        print(f"{agent}: {row['valid']}/{row['inputs']} valid, {row['cut_off']} cut off, p50 {row['p50_s']:.2f}s", flush=True)
        rows.append(row)
    print(table(rows))
    write_results(args.out, {"settings": {"model": args.model, "per_agent": args.per_agent, "agents": agents},
                             "environment": environment("turnout", "llama-cpp-python", "litellm"), "rows": rows})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-agent", type=int, default=30, help="inputs per agent (default 30)")
    parser.add_argument("--agents", help=f"comma-separated, from {', '.join(AGENTS)} (default: all)")
    parser.add_argument("--model", default=MODEL, help="the model every role uses (default: the embedded one)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "schema_validity.json")
    asyncio.run(main(parser.parse_args()))
