"""How well does a small local model call tools, with and without turnout's constraint, and what
does `Agent` cost over a hand-written LangGraph tool loop?

Part 1, on the embedded SmolLM2-135M (llamacpp/smollm2, temperature 0): 50 prompts, 10 for each
of 5 tools with typed arguments (a string, a bounded integer, a list). Each prompt is asked
twice with the same messages (the tools described in the system message as turnout writes
them for a local engine, `tool_choice="required"`):
  constrained    `complete(…, tools=…, tool_choice="required")`: the answer is decoded under
                 the schema that admits only a call to a declared tool with valid arguments.
  unconstrained  `complete(…)` on the same messages with no grammar; the text is read as the
                 same JSON turn (`ToolSet.read_local`) and checked the same way (`validated`).
Reported per mode: well-formed (a JSON turn with at least one call), arguments valid for the
tool named (every call), right tool (the first call names the prompt's tool), p50/p90 latency.

Part 2, on the scripted engine with tracing on (turnout's trace-file exporter): a run of
`--turns` tool-calling turns then an answer, as `Agent(…).run()` and as a hand-written
LangGraph loop (a model node calling `complete(…, tools=…)`, a tool node calling the function,
a conditional edge); `--runs` runs each, alternating, after a warm-up. Reported: median run
time, per-turn overhead and the median of paired ratios (goal <= 1.05).

    python bench/tool_calls.py [--prompts 50] [--turns 10] [--runs 30] [--no-model] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from pydantic import Field

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment, percentile, write_results  # noqa: E402


def search_code(query: str) -> str:
    """Search the repository's code for words; the best matches' locations."""
    return "shop/tax.py:3-9 tax_for_region"


def find_symbol(name: str) -> str:
    """Where a function or class is defined: file, lines and signature."""
    return "shop/tax.py:3-9 def tax_for_region(amount, region)"


def read_file(path: str, start: Annotated[int, Field(ge=1, le=10_000)] = 1) -> str:
    """Lines of a file of the repository from line `start`."""
    return "1: import decimal"


def run_tests(test_ids: list[str]) -> str:
    """Run the given pytest test ids; counts and failures."""
    return "3 passed"


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return "21 degrees"


PROMPTS: dict[str, list[str]] = {
    "search_code": [
        "Search the code for where invoices are totalled.", "Find code that mentions discounts.",
        "Look through the source for anything about currency rounding.", "Which code deals with refunds? Search for it.",
        "Search the repository for 'retry'.", "Find places in the code that parse dates.",
        "Search for code handling shipping costs.", "Look for code that talks about VAT.",
        "Search the source for logging setup.", "Find code about customer emails.",
    ],
    "find_symbol": [
        "Where is the function tax_for_region defined?", "Find the definition of the class Invoice.",
        "Where is load_inventory defined?", "Show me where the function apply_discount is declared.",
        "Locate the definition of format_money.", "Where is class Customer defined?",
        "Find where round_money is defined.", "Where does the function parse_date live?",
        "Find the definition of ShippingRate.", "Where is send_receipt defined?",
    ],
    "read_file": [
        "Open the file shop/tax.py.", "Show me the first lines of README.md.", "Read src/app/main.py from line 10.",
        "Print the contents of setup.py.", "Read the file docs/index.md.", "Show lines from shop/models.py starting at 40.",
        "Open pyproject.toml.", "Read tests/test_tax.py.", "Show me shop/__init__.py.", "Read the file config/settings.py.",
    ],
    "run_tests": [
        "Run the test tests/test_tax.py::test_uk.", "Run the tests in tests/test_invoice.py.",
        "Execute the test tests/test_money.py::test_round.", "Run tests/test_shipping.py to check it passes.",
        "Run the unit test tests/test_customers.py::test_email.", "Check that tests/test_dates.py passes.",
        "Run the tests tests/test_a.py and tests/test_b.py.", "Run tests/test_refunds.py::test_partial.",
        "Please run the test suite file tests/test_vat.py.", "Run tests/test_discounts.py::test_bulk.",
    ],
    "get_weather": [
        "What's the weather in Paris?", "How warm is it in Oslo right now?", "Is it raining in London?",
        "Tell me the weather in Tokyo.", "What is the temperature in Cairo?", "Weather for Lima, please.",
        "How cold is it in Helsinki today?", "Is it sunny in Madrid?", "What's the weather like in Toronto?",
        "Give me the current weather in Sydney.",
    ],
}


def tools() -> list[Any]:
    from turnout.agents import Tool

    return [Tool(f) for f in (search_code, find_symbol, read_file, run_tests, get_weather)]


async def one_prompt(prompt: str, expected: str, constrained: bool) -> dict[str, Any]:
    from turnout.engines import complete, tag
    from turnout.engines.tool_calls import tool_set
    from turnout.errors import SchemaError

    specs = [t.spec for t in tools()]
    messages = [{"role": "user", "content": tag.request(prompt)}]
    started = time.perf_counter()
    row: dict[str, Any] = {"prompt": prompt, "expected": expected, "constrained": constrained}
    toolset = tool_set(specs, "required")
    assert toolset is not None
    try:
        if constrained:
            answer = await complete("llamacpp/smollm2", messages, tools=specs, tool_choice="required",
                                    temperature=0, max_tokens=128)
            calls = [(c.id, c.name, c.arguments) for c in answer.tool_calls]
            row.update(well_formed=bool(calls), valid=bool(calls), attempts=answer.attempts, raw=None)
        else:
            answer = await complete("llamacpp/smollm2", toolset.local_messages(messages), temperature=0, max_tokens=128)
            _, raw_calls = toolset.read_local(answer.text)
            typed, problems = toolset.validated([(None, n, a) for n, a in raw_calls], salt="bench")
            calls = [(c.id, c.name, c.arguments) for c in typed]
            row.update(well_formed=bool(raw_calls), valid=bool(raw_calls) and problems is None, raw=answer.text[:200])
    except SchemaError as exc:
        calls = []
        row.update(well_formed=False, valid=False, raw=exc.raw_text[:200])
    row["latency_s"] = time.perf_counter() - started
    row["tool"] = calls[0][1] if calls else None
    row["right_tool"] = row["tool"] == expected
    return row


async def accuracy(prompts: int) -> list[dict[str, Any]]:
    from turnout.engines import complete

    await complete("llamacpp/smollm2", "hi", max_tokens=1)  # load the model outside the timings
    chosen = [(p, tool) for i in range(10) for tool, texts in PROMPTS.items() for p in texts[i:i + 1]][:prompts]
    rows = []
    for prompt, expected in chosen:
        for constrained in (True, False):
            rows.append(await one_prompt(prompt, expected, constrained))
    return rows


def summarise_accuracy(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out = {}
    for mode, constrained in (("constrained", True), ("unconstrained", False)):
        mine = [r for r in rows if r["constrained"] is constrained]
        latencies = [r["latency_s"] for r in mine]
        out[mode] = {"prompts": len(mine),
                     "well_formed": sum(r["well_formed"] for r in mine) / len(mine),
                     "valid_arguments": sum(r["valid"] for r in mine) / len(mine),
                     "right_tool": sum(r["right_tool"] for r in mine) / len(mine),
                     "p50_ms": percentile(latencies, 0.5) * 1e3, "p90_ms": percentile(latencies, 0.9) * 1e3}
    return out


# --- part 2: Agent against a hand-written LangGraph loop ------------------------------------


class LoopState(TypedDict):
    messages: list[dict[str, Any]]


def turns_script(turns: int) -> Any:
    from turnout.engines.scripted import Script

    def respond(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> Any:
        made = sum(1 for m in messages if m.get("role") == "user" and "Result of" in str(m.get("content")))
        if made < turns:
            return {"tool_calls": [{"name": "search_code", "arguments": {"query": f"q{made}"}}]}
        return {"answer": "done"}

    return Script(respond, name="bench-tools")


def hand_written_loop(model: str) -> Any:
    from langgraph.graph import END, START, StateGraph

    from turnout.engines import complete, tag

    specs = [t.spec for t in tools()]
    functions = {f.__name__: f for f in (search_code, find_symbol, read_file, run_tests, get_weather)}

    async def call_model(state: LoopState) -> dict[str, Any]:
        answer = await complete(model, state["messages"], tools=specs, temperature=0, max_tokens=128)
        return {"messages": [*state["messages"], answer.message()]}

    async def call_tools(state: LoopState) -> dict[str, Any]:
        calls = state["messages"][-1]["tool_calls"]
        results = []
        for call in calls:
            import json

            arguments = json.loads(call["function"]["arguments"])
            text = functions[call["function"]["name"]](**arguments)
            results.append({"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"],
                            "content": tag.tool_output(text)})
        return {"messages": [*state["messages"], *results]}

    def route(state: LoopState) -> str:
        return "tools" if state["messages"][-1].get("tool_calls") else END

    builder = StateGraph(LoopState)
    builder.add_node("model", call_model)
    builder.add_node("tools", call_tools)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", route, ["tools", END])
    builder.add_edge("tools", "model")
    return builder.compile()


async def overhead(turns: int, runs: int) -> dict[str, Any]:
    from turnout import telemetry
    from turnout.agents import Agent
    from turnout.engines import tag

    traces = Path(tempfile.mkdtemp(prefix="bench-tool-calls-"))
    telemetry.configure(traces_dir=traces)
    script = turns_script(turns)
    agent = Agent("bench", model=script, tools=tools(), max_turns=turns + 1, max_tokens=128)
    loop = hand_written_loop(script.model)
    question = [{"role": "user", "content": tag.request("find it")}]

    async def run_agent() -> None:
        result = await agent.run(question)
        assert result.tool_calls == turns

    async def run_loop() -> None:
        state = await loop.ainvoke({"messages": list(question)}, {"recursion_limit": 4 * turns + 4})
        assert sum(1 for m in state["messages"] if m["role"] == "tool") == turns

    variants = {"agent": run_agent, "langgraph": run_loop}
    for run in variants.values():
        await run()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    pairs = []
    for index in range(runs):
        order = list(variants) if index % 2 == 0 else list(reversed(variants))
        this: dict[str, float] = {}
        for name in order:
            started = time.perf_counter()
            await variants[name]()
            this[name] = time.perf_counter() - started
            times[name].append(this[name])
        pairs.append(this["agent"] / this["langgraph"])
    telemetry.flush()
    summary = {name: {"median_ms": statistics.median(v) * 1e3, "p90_ms": percentile(v, 0.9) * 1e3,
                      "per_turn_us": statistics.median(v) / turns * 1e6} for name, v in times.items()}
    return {"turns": turns, "runs": runs, "summary": summary,
            "median_ratio": summary["agent"]["median_ms"] / summary["langgraph"]["median_ms"],
            "median_paired_ratio": statistics.median(pairs),
            "overhead_per_turn_us": summary["agent"]["per_turn_us"] - summary["langgraph"]["per_turn_us"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-model", action="store_true", help="skip part 1 (the embedded model)")
    parser.add_argument("--out", type=Path, default=RESULTS / "tool_calls.json")
    args = parser.parse_args()
    report: dict[str, Any] = {"environment": environment("turnout", "litellm", "llama-cpp-python", "langgraph")}
    if not args.no_model:
        rows = asyncio.run(accuracy(args.prompts))
        report["accuracy"] = summarise_accuracy(rows)
        report["calls"] = rows
        print(f"{'mode':<15} {'prompts':>7} {'well-formed':>12} {'valid args':>11} {'right tool':>11} {'p50 ms':>8} {'p90 ms':>8}")
        for mode, s in report["accuracy"].items():
            print(f"{mode:<15} {s['prompts']:>7} {s['well_formed']:>12.0%} {s['valid_arguments']:>11.0%} "
                  f"{s['right_tool']:>11.0%} {s['p50_ms']:>8.0f} {s['p90_ms']:>8.0f}")
        print()
    report["overhead"] = asyncio.run(overhead(args.turns, args.runs))
    o = report["overhead"]
    print(f"{'variant':<12} {'median ms':>10} {'p90 ms':>8} {'per turn µs':>12}")
    for name, s in o["summary"].items():
        print(f"{name:<12} {s['median_ms']:>10.2f} {s['p90_ms']:>8.2f} {s['per_turn_us']:>12.0f}")
    print(f"Agent / hand-written loop: median {o['median_ratio']:.3f}, paired {o['median_paired_ratio']:.3f} "
          f"(goal <= 1.05); {o['overhead_per_turn_us']:.0f} µs per turn")
    write_results(args.out, report)


if __name__ == "__main__":
    main()
