"""How much does turnout's door cost over raw llama-cpp-python on the embedded model?

Sends the same fixed short prompts through (a) a bare `llama_cpp.Llama` with turnout's
load settings (non-streaming `create_chat_completion`) and (b)
`turnout.engines.complete("llamacpp/smollm2", ...)` (litellm → custom provider → engine
thread → streamed llama.cpp), in one process, alternating which path goes first per
prompt to cancel drift, after one unmeasured warm-up call on each. Both run at
temperature 0 with seed 0 and no repetition penalty (turnout's default, 1.1 over the
answer, is set to 1.0 here unless TURNOUT_LLAMACPP__REPEAT_PENALTY says otherwise), so the
texts should match and only the door's cost differs.

    python bench/engine_overhead.py [--prompts 20] [--max-tokens 64] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, environment, percentile, write_results

PROMPTS: list[str] = [
    "What does the Python keyword `yield` do?",
    "What is the capital of Australia?",
    "What is 17 multiplied by 6?",
    "Give three tips for writing readable code.",
    "Explain what a hash map is in one sentence.",
    "Which river flows through Cairo?",
    "Is 91 a prime number? Explain briefly.",
    "How do I boil an egg?",
    "What is the difference between a list and a tuple in Python?",
    "Name the largest ocean on Earth.",
    "What is the square root of 144?",
    "Write a one-line shell command that counts lines in a file.",
    "What does HTTP status code 404 mean?",
    "Which mountain range separates Europe and Asia?",
    "Convert 3/4 to a percentage.",
    "List the steps to make a cup of tea.",
    "What is recursion in programming?",
    "What language is spoken in Brazil?",
    "If a train travels 60 km in 45 minutes, what is its speed in km/h?",
    "How should I apologise to a friend for being late?",
]
MODEL = "llamacpp/smollm2"


def load_raw() -> Any:
    """A Llama of its own, loaded exactly as turnout loads the embedded model."""
    from llama_cpp import Llama

    from turnout.config import get_settings
    from turnout.engines.llamacpp import embedded_model_path

    s = get_settings().llamacpp
    return Llama(model_path=str(embedded_model_path()), n_ctx=s.n_ctx, n_threads=s.n_threads,
                 n_gpu_layers=s.n_gpu_layers, seed=s.seed, verbose=False)


def call_raw(llm: Any, prompt: str, max_tokens: int) -> dict[str, Any]:
    started = time.perf_counter()
    out = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}],
                                     temperature=0, max_tokens=max_tokens, seed=0)
    latency = time.perf_counter() - started
    text = out["choices"][0]["message"]["content"] or ""
    return {"latency_s": latency, "output_tokens": out["usage"]["completion_tokens"], "text": text}


async def call_turnout(prompt: str, max_tokens: int) -> dict[str, Any]:
    from turnout.engines import complete

    started = time.perf_counter()
    result = await complete(MODEL, prompt, temperature=0, max_tokens=max_tokens)
    latency = time.perf_counter() - started
    return {"latency_s": latency, "output_tokens": result.usage.output_tokens, "text": result.text}




def summarise(records: list[dict[str, Any]]) -> dict[str, float]:
    latencies = [r["latency_s"] for r in records]
    per_token = [r["latency_s"] / r["output_tokens"] for r in records if r["output_tokens"]]
    return {
        "median_latency_s": statistics.median(latencies),
        "p90_latency_s": percentile(latencies, 0.9),
        "median_tokens_per_s": statistics.median(r["tokens_per_s"] for r in records),
        "median_s_per_token": statistics.median(per_token) if per_token else float("nan"),
        "total_output_tokens": sum(r["output_tokens"] for r in records),
        "total_latency_s": sum(latencies),
    }


def print_table(summary: dict[str, dict[str, float]], ratios: dict[str, float], matches: int, n: int) -> None:
    header = f"{'path':<26} {'median s':>9} {'p90 s':>9} {'median tok/s':>13} {'total out tok':>14}"
    print(header)
    print("-" * len(header))
    for label, key in (("raw llama-cpp-python", "raw"), ("turnout.engines.complete", "turnout")):
        s = summary[key]
        print(f"{label:<26} {s['median_latency_s']:>9.3f} {s['p90_latency_s']:>9.3f} "
              f"{s['median_tokens_per_s']:>13.1f} {s['total_output_tokens']:>14d}")
    print(f"\ntexts matched: {matches}/{n}")
    print(f"ratio (turnout/raw median latency) = {ratios['median_latency']:.3f} (goal <= 1.05)")
    print(f"ratio (turnout/raw median s/token) = {ratios['median_s_per_token']:.3f} (goal <= 1.05)")


async def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("TURNOUT_LLAMACPP__REPEAT_PENALTY", "1.0")  # the same sampling as the raw path
    from turnout.engines.llamacpp import embedded_model_path

    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.prompts)]
    llm = load_raw()
    call_raw(llm, "Say hello.", args.max_tokens)  # warm-ups: model load, litellm import
    await call_turnout("Say hello.", args.max_tokens)

    records: list[dict[str, Any]] = []
    for i, prompt in enumerate(prompts):
        order = ("raw", "turnout") if i % 2 == 0 else ("turnout", "raw")
        for path in order:
            rec = call_raw(llm, prompt, args.max_tokens) if path == "raw" else await call_turnout(prompt, args.max_tokens)
            rec.update(prompt_index=i, path=path, order=order.index(path),
                       tokens_per_s=rec["output_tokens"] / rec["latency_s"])
            records.append(rec)

    by_path = {p: [r for r in records if r["path"] == p] for p in ("raw", "turnout")}
    summary = {p: summarise(rs) for p, rs in by_path.items()}
    matches = sum(a["text"] == b["text"] for a, b in zip(by_path["raw"], by_path["turnout"]))
    ratios = {
        "median_latency": summary["turnout"]["median_latency_s"] / summary["raw"]["median_latency_s"],
        "median_s_per_token": summary["turnout"]["median_s_per_token"] / summary["raw"]["median_s_per_token"],
    }
    print_table(summary, ratios, matches, len(prompts))

    report = {
        "settings": {
            "prompts": len(prompts), "max_tokens": args.max_tokens, "model": MODEL,
            "model_path": str(embedded_model_path()),
            **environment("llama-cpp-python", "litellm"),
        },
        "records": records,
        "summary": summary,
        "text_matches": matches,
        "ratios": ratios,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=20, help="how many prompts (cycles the fixed 20)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS / "engine_overhead.json")
    asyncio.run(main(parser.parse_args()))
