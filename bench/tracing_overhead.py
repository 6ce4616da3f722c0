"""How much does turnout's tracing cost a LangGraph run, with spans written to trace files?

Runs a linear 50-node LangGraph graph (each async node makes one `complete()` call to the
deterministic `scripted/bench` engine) with tracing OFF and ON in one process, alternating
which mode goes first per iteration to cancel drift, after one unmeasured warm-up per mode.

The global OpenTelemetry provider can be installed only once per process, so both modes
share one SDK `TracerProvider` whose sampler is switched by a flag (the SDK 1.45 tracer
ignores the `_SUPPRESS_INSTRUMENTATION_KEY` context value, so suppression cannot do it):
  OFF  the plain compiled graph (never instrumented: no node spans); the sampler drops,
       so `complete()`'s `chat` span is a non-recording no-op, as for a user who never
       calls `configure()` (the SDK still makes ids for it: OFF is, if anything, slower).
  ON   the same builder compiled again and passed through `telemetry.instrument`; the
       sampler records, and `telemetry.configure(traces_dir=...)` adds turnout's JSONL
       file exporter (a BatchSpanProcessor) to the provider. `telemetry.flush()` follows
       every ON run, timed apart: the ratio uses run time alone, a second one adds flush.
A short block of plain runs before any provider exists ("api no-op", the true untraced
path) is printed for reference only; it is not alternated and not in the ratios. The ON
trace files are read back and checked for 1 workflow + 50 node + 50 chat spans per run.

    python bench/tracing_overhead.py [--runs 20] [--steps 50] [--checkpointer none|memory] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

from _common import (
    RESULTS,
    TracingSwitch,
    check_traces,
    environment,
    overhead_ratios,
    print_overhead_table,
    summarise_runs,
    write_results,
)

MODEL = "scripted/bench"
TRACING = TracingSwitch()
ROWS: tuple[tuple[str, str], ...] = (
    ("api no-op (reference)", "noop"), ("off (sampler drops)", "off"), ("on (file exporter)", "on"))
RATIO_LABELS: dict[str, str] = {
    "overhead_per_step_us": "overhead per step (on - off median)",
    "median_run": "ratio (on/off median)",
    "median_run_incl_flush": "ratio (on incl. flush/off median)",
    "median_paired": "median of paired on/off ratios",
}


class State(TypedDict):
    count: int


def build_graphs(steps: int, checkpointer: str) -> tuple[Any, Any]:
    """The same linear graph compiled twice: (plain, instrumented)."""
    from langgraph.graph import END, START, StateGraph

    from turnout import telemetry
    from turnout.engines import complete

    def make_step(i: int) -> Any:
        async def step(state: State) -> dict[str, int]:
            await complete(MODEL, f"step {i}")
            return {"count": state["count"] + 1}
        return step

    builder = StateGraph(State)
    previous = START
    for i in range(steps):
        builder.add_node(f"step_{i}", make_step(i))
        builder.add_edge(previous, f"step_{i}")
        previous = f"step_{i}"
    builder.add_edge(previous, END)

    def compile_one() -> Any:
        if checkpointer == "memory":
            from langgraph.checkpoint.memory import InMemorySaver
            return builder.compile(checkpointer=InMemorySaver(), name="bench")
        return builder.compile(name="bench")

    return compile_one(), telemetry.instrument(compile_one())


async def run_once(graph: Any, mode: str, index: int, checkpointer: str) -> dict[str, Any]:
    from turnout import telemetry

    config = {"configurable": {"thread_id": f"{mode}-{index}"}} if checkpointer == "memory" else None
    TRACING.on = mode == "on"
    gc.collect()
    started = time.perf_counter()
    out = await graph.ainvoke({"count": 0}, config)
    run_s = time.perf_counter() - started
    flush_s = 0.0
    if mode == "on":
        started = time.perf_counter()
        telemetry.flush()
        flush_s = time.perf_counter() - started
    TRACING.on = False
    return {"mode": mode, "index": index, "run_s": run_s, "flush_s": flush_s, "count": out["count"]}


async def main(args: argparse.Namespace) -> None:
    from turnout.engines import scripted

    scripted.register("bench", lambda messages: "ok answer")
    plain, traced = build_graphs(args.steps, args.checkpointer)
    records: list[dict[str, Any]] = []
    await run_once(plain, "noop", -1, args.checkpointer)  # warm-up: litellm, langgraph
    reference = [await run_once(plain, "noop", i, args.checkpointer) for i in range(args.runs)]

    with tempfile.TemporaryDirectory(prefix="turnout-bench-traces-") as tmp:
        traces_dir = Path(tmp)
        TRACING.install(traces_dir)
        graphs = {"off": plain, "on": traced}
        for mode in ("off", "on"):
            await run_once(graphs[mode], mode, -1, args.checkpointer)  # warm-ups, unmeasured
        for i in range(args.runs):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for mode in order:
                rec = await run_once(graphs[mode], mode, i, args.checkpointer)
                records.append(rec | {"order": order.index(mode)})
        check = check_traces(traces_dir, args.runs + 1, args.steps,  # + the ON warm-up
                             is_node_span=lambda name: name.startswith("step_"))

    assert all(r["count"] == args.steps for r in records + reference)
    summary = {"noop": summarise_runs(reference, args.steps)}
    summary |= {m: summarise_runs([r for r in records if r["mode"] == m], args.steps) for m in ("off", "on")}
    ratios = overhead_ratios(summary, records, "mode", "on", "off", args.steps)
    print_overhead_table("mode", ROWS, summary, ratios, check, RATIO_LABELS)

    report = {
        "settings": {
            "runs": args.runs, "steps": args.steps, "checkpointer": args.checkpointer, "model": MODEL,
            **environment("opentelemetry-sdk", "langgraph", "litellm"),
        },
        "records": reference + records,
        "summary": summary,
        "trace_check": check,
        "ratios": ratios,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per mode")
    parser.add_argument("--steps", type=int, default=50, help="nodes in the linear graph")
    parser.add_argument("--checkpointer", choices=("none", "memory"), default="none")
    parser.add_argument("--out", type=Path, default=RESULTS / "tracing_overhead.json")
    asyncio.run(main(parser.parse_args()))
