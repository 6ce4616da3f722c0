"""Questions with known answers through the hybrid graph: is the right place cited, is an
unanswerable question left `unanswered`, and is any wrong answer reported as `finished`?

    python3 bench/hybrid_questions.py                   # both planners, every question
    python3 bench/hybrid_questions.py --planner scripted --limit 5

Questions are asked of `examples/sample_repo` and of tabulate 0.9.0 (2,716 lines, vendored in
bench/fixtures/): "where / which function / what calls" questions, each with the places that
answer it (a path and a symbol), plus questions the repository cannot answer. Every role runs
on the embedded model (`llamacpp/smollm2`), except in the `scripted` variant, whose planner
writes a good plan (one retrieve step for the question) and finishes citing the first
evidence id it is shown: that separates planning from the sub-agents (router, retriever).

Per question: the run's status, its citations, and the verdict:
  right       finished, and a citation is one of the expected places
  wrong       finished, but no citation is an expected place (or the question has no answer)
  honest      not finished, on a question the repository cannot answer
  missed      not finished, on a question it can answer
The goal is 0 wrong. Results go to bench/results/hybrid_questions.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, percentile, write_results  # noqa: E402

BENCH = Path(__file__).resolve().parent
SAMPLE = BENCH.parent / "examples" / "sample_repo"
TABULATE = BENCH / "fixtures" / "tabulate-0.9.0"
PRICING, INVOICES, INVENTORY = (f"src/stockroom/{name}.py" for name in ("pricing", "invoices", "inventory"))
TAB = "tabulate/__init__.py"

# (repository, question, the (path, symbol) places that answer it; empty: it has no answer here)
QUESTIONS: list[tuple[Path, str, list[tuple[str, str]]]] = [
    (SAMPLE, "Where is the tax for a region computed?", [(PRICING, "tax_for_region"), (PRICING, "tax_rate_for_region")]),
    (SAMPLE, "Which function rounds money to two decimal places?", [(PRICING, "round_money")]),
    (SAMPLE, "Where is the bulk discount rate decided?", [(PRICING, "bulk_discount_rate")]),
    (SAMPLE, "Which function loads the inventory from a CSV file?", [(INVENTORY, "load_inventory")]),
    (SAMPLE, "Where is the inventory saved to disk?", [(INVENTORY, "save_inventory")]),
    (SAMPLE, "Which function reserves stock for an order?", [(INVENTORY, "reserve")]),
    (SAMPLE, "Where is the next invoice number generated?", [(INVOICES, "InvoiceNumberSequence.next_number"),
                                                            (INVOICES, "InvoiceNumberSequence")]),
    (SAMPLE, "Which function renders an invoice as text?", [(INVOICES, "render_invoice")]),
    (SAMPLE, "Where is the invoice total computed?", [(INVOICES, "invoice_total")]),
    (SAMPLE, "Which function finds the top selling products?", [("src/stockroom/reports.py", "top_sellers")]),
    (SAMPLE, "Where are customers searched by name?", [("src/stockroom/customers.py", "search_customers_by_name")]),
    (SAMPLE, "Which function calls tax_for_region?", [(INVOICES, "invoice_tax")]),
    (SAMPLE, "What calls reserve when a line is added?", [(INVOICES, "add_line")]),
    (SAMPLE, "Which error is raised for an unknown product?", [("src/stockroom/errors.py", "UnknownProductError")]),
    (TABULATE, "Which function formats a table from rows?", [(TAB, "tabulate"), (TAB, "_format_table")]),
    (TABULATE, "Where is the visible width of a string computed?", [(TAB, "_visible_width")]),
    (TABULATE, "Which function strips ANSI escape codes?", [(TAB, "_strip_ansi")]),
    (TABULATE, "Where is a string padded on the left?", [(TAB, "_padleft")]),
    (TABULATE, "Which function decides the type of a column?", [(TAB, "_column_type")]),
    (TABULATE, "Where is the width of a multiline cell measured?", [(TAB, "_multiline_width")]),
    (TABULATE, "Which function wraps text to column widths?", [(TAB, "_wrap_text_to_colwidths")]),
    (TABULATE, "Where are the rows of a table normalized?", [(TAB, "_normalize_tabular_data")]),
    (SAMPLE, "Where is the database connection pool configured?", []),
    (SAMPLE, "Which function sends emails to customers?", []),
    (TABULATE, "Where is the HTTP server started?", []),
    (TABULATE, "Which function encrypts passwords?", []),
]
SCRIPTED_PLANNER = "bench-planner"


def good_planner(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The scripted planner: one retrieve step for the question, then finish citing E1."""
    prompt = messages[-1]["content"]
    if "Evidence:" in prompt:
        first = re.search(r"^(E\d+) ", prompt, re.MULTILINE)
        return {"action": "finish", "cites": [first.group(1)] if first else [], "answer": "", "steps": []}
    question = re.search(r"Task: (.*)", prompt)
    return {"steps": [{"kind": "retrieve", "description": question.group(1) if question else "find it", "depends_on": []}]}


def verdict(status: str, cited: list[tuple[str, str | None]], expected: list[tuple[str, str]]) -> str:
    if status == "finished":
        return "right" if any(place in expected for place in cited) else "wrong"
    return "missed" if expected else "honest"


async def ask(repo: Path, question: str) -> dict[str, Any]:
    from langgraph.checkpoint.memory import InMemorySaver

    from turnout.graphs import build_hybrid_graph

    graph = build_hybrid_graph(repo=repo, checkpointer=InMemorySaver())
    started = time.perf_counter()
    try:
        state = await graph.ainvoke({"task": question}, {"configurable": {"thread_id": "q"}})
    except Exception as exc:  # a crash is a result too: recorded, not fatal to the bench
        return {"status": "error", "reason": f"{type(exc).__name__}: {exc}", "answer": "", "cited": [],
                "seconds": time.perf_counter() - started}
    return {
        "status": state.get("status"),
        "reason": state.get("reason"),
        "answer": state.get("answer", ""),
        "cited": [(c.path, c.symbol) for c in state.get("citations") or []],
        "seconds": time.perf_counter() - started,
    }


async def measure(planner: str, questions: list[tuple[Path, str, list[tuple[str, str]]]]) -> dict[str, Any]:
    from turnout.config import load_settings, use_settings
    from turnout.engines import scripted

    if planner == "scripted":
        os.environ["TURNOUT_ROLES__PLANNER"] = f"scripted/{SCRIPTED_PLANNER}"
        scripted.register(SCRIPTED_PLANNER, good_planner)
    else:
        os.environ.pop("TURNOUT_ROLES__PLANNER", None)
    use_settings(load_settings())
    records = []
    for repo, question, expected in questions:
        found = await ask(repo, question)
        found["verdict"] = verdict(found["status"], [tuple(c) for c in found["cited"]], expected)
        records.append({"repo": repo.name, "question": question, "expected": expected, **found})
        print(f"  [{planner}] {found['verdict']:7} {found['status']:11} {found['seconds']:5.1f}s  {question}  "
              f"-> {found['answer'][:70]!r}{' / ' + (found['reason'] or '')[:80] if found['status'] != 'finished' else ''}",
              flush=True)
    counts = {name: sum(r["verdict"] == name for r in records) for name in ("right", "wrong", "honest", "missed")}
    seconds = [r["seconds"] for r in records]
    return {
        "planner": planner,
        "questions": len(records),
        "answerable": sum(bool(r["expected"]) for r in records),
        **counts,
        "p50_s": statistics.median(seconds),
        "p90_s": percentile(seconds, 0.9),
        "records": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--planner", choices=("model", "scripted", "both"), default="both")
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N questions")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "hybrid_questions.json")
    args = parser.parse_args()
    questions = QUESTIONS[: args.limit] if args.limit else QUESTIONS
    planners = ("scripted", "model") if args.planner == "both" else (args.planner,)
    rows = [asyncio.run(measure(planner, questions)) for planner in planners]
    print()
    print(f"{'planner':10} {'questions':>9} {'right':>6} {'wrong':>6} {'honest':>7} {'missed':>7} {'p50 s':>7} {'p90 s':>7}")
    for row in rows:
        print(f"{row['planner']:10} {row['questions']:>9} {row['right']:>6} {row['wrong']:>6} {row['honest']:>7} "
              f"{row['missed']:>7} {row['p50_s']:>7.1f} {row['p90_s']:>7.1f}")
    report = {
        "settings": {"model": "llamacpp/smollm2", "questions": len(questions)},
        "environment": environment("turnout", "llama_cpp_python", "litellm", "langgraph"),
        "rows": rows,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    main()
