"""How does `turnout serve` hold up under concurrent clients, and does it say no cleanly?

Starts `turnout serve` as a subprocess on a free loopback port (`--port 0`; the URL is read
from what it prints) on the embedded model (llamacpp/smollm2), with `--max-concurrency C
--max-queue Q`. After one unmeasured warm-up request (model load), for each level N in
`--clients` it runs N concurrent clients (openai.AsyncOpenAI, no retries), each making
`--requests` short requests one after another (fixed prompts, temperature 0,
`--max-tokens`), stopping early at `--time-limit` seconds per level. Reported per level:
requests answered, requests/s, p50/p99 latency of answered requests, completion tokens/s,
errors (anything but an answer or a 429: must be 0 while N <= C + Q) and 429s, counted
apart. A last level with N = 2 x (C + Q) goes past the queue limit on purpose: its 429s show
the server turning work away at once instead of queueing it without bound.

    python bench/serve_load.py [--clients 1 4 8] [--requests 5] [--max-tokens 16]
                               [--max-concurrency 4] [--max-queue 8] [--time-limit 60] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import selectors
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, environment, percentile, write_results

MODEL = "llamacpp/smollm2"
PROMPTS = [
    "What is the capital of Australia?",
    "Give one tip for writing readable code.",
    "What does HTTP status code 404 mean?",
    "Name the largest ocean on Earth.",
    "What is recursion in programming?",
    "Which river flows through Cairo?",
    "What is 17 multiplied by 6?",
    "What language is spoken in Brazil?",
]
URL = re.compile(r"http://127\.0\.0\.1:\d+/v1")


def start_server(max_concurrency: int, max_queue: int) -> tuple[subprocess.Popen[str], str]:
    """`turnout serve` on a free port; returns the process and its OpenAI base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "turnout", "serve", "--port", "0", "--model", MODEL,
         "--max-concurrency", str(max_concurrency), "--max-queue", str(max_queue)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline and selector.select(timeout=max(0.0, deadline - time.monotonic())):
            line = process.stderr.readline()
            if not line:
                break
            seen += line
            if "serving" in line and (match := URL.search(seen)):
                threading.Thread(target=_drain, args=(process,), daemon=True).start()
                return process, match.group(0)
    process.kill()
    raise SystemExit(f"turnout serve did not start; it printed:\n{seen}")


def _drain(process: subprocess.Popen[str]) -> None:
    """Read the server's log so its pipe never fills; echo only warnings and errors."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith(("WARNING", "ERROR")):
            print(f"[server] {line}", end="", file=sys.stderr)


async def one_client(client: Any, index: int, requests: int, max_tokens: int, deadline: float) -> list[dict[str, Any]]:
    import openai

    records = []
    for n in range(requests):
        if time.monotonic() > deadline:
            break
        prompt = PROMPTS[(index + n) % len(PROMPTS)]
        started = time.perf_counter()
        record: dict[str, Any] = {"client": index, "prompt": prompt}
        try:
            response = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0,
            )
            record.update(outcome="ok", completion_tokens=response.usage.completion_tokens)
        except openai.RateLimitError as exc:
            record.update(outcome="429", retry_after=exc.response.headers.get("retry-after"))
        except Exception as exc:  # noqa: BLE001 - every other failure is an error to count
            record.update(outcome="error", error=f"{type(exc).__name__}: {exc}")
        record["latency_s"] = time.perf_counter() - started
        records.append(record)
    return records


async def run_level(url: str, clients: int, args: argparse.Namespace) -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=args.time_limit + 60)
    deadline = time.monotonic() + args.time_limit
    started = time.perf_counter()
    per_client = await asyncio.gather(*(
        one_client(client, i, args.requests, args.max_tokens, deadline) for i in range(clients)
    ))
    wall = time.perf_counter() - started
    await client.close()
    records = [r for rs in per_client for r in rs]
    ok = [r for r in records if r["outcome"] == "ok"]
    latencies = [r["latency_s"] for r in ok]
    return {
        "clients": clients,
        "attempted": len(records),
        "ok": len(ok),
        "rejected_429": sum(r["outcome"] == "429" for r in records),
        "errors": sum(r["outcome"] == "error" for r in records),
        "wall_s": wall,
        "requests_per_s": len(ok) / wall if wall else 0.0,
        "p50_latency_s": statistics.median(latencies) if latencies else None,
        "p99_latency_s": percentile(latencies, 0.99) if latencies else None,
        "completion_tokens_per_s": sum(r["completion_tokens"] for r in ok) / wall if wall else 0.0,
        "records": records,
    }


def print_table(levels: list[dict[str, Any]], capacity: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"turnout serve · {MODEL} · capacity {capacity} (concurrency + queue)")
    for column in ("clients", "answered", "req/s", "p50 s", "p99 s", "tok/s", "errors", "429s"):
        table.add_column(column, justify="right")
    for level in levels:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        past = " (past queue)" if level["clients"] > capacity else ""
        table.add_row(
            f"{level['clients']}{past}", f"{level['ok']}/{level['attempted']}", f"{level['requests_per_s']:.2f}",
            seconds(level["p50_latency_s"]), seconds(level["p99_latency_s"]),
            f"{level['completion_tokens_per_s']:.1f}", str(level["errors"]), str(level["rejected_429"]),
        )
    Console().print(table)


async def measure(url: str, args: argparse.Namespace, capacity: int) -> list[dict[str, Any]]:
    import openai

    warm = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    await warm.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=4)
    await warm.close()
    levels = [await run_level(url, n, args) for n in args.clients]
    levels.append(await run_level(url, 2 * capacity, args))
    return levels


def main(args: argparse.Namespace) -> None:
    capacity = args.max_concurrency + args.max_queue
    process, url = start_server(args.max_concurrency, args.max_queue)
    try:
        levels = asyncio.run(measure(url, args, capacity))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    print_table(levels, capacity)
    under = [level for level in levels if level["clients"] <= capacity]
    if any(level["errors"] for level in levels) or any(level["rejected_429"] for level in under):
        print("FAIL: errors, or 429s below the queue limit")
    report = {
        "settings": {
            "model": MODEL, "clients": args.clients, "requests_per_client": args.requests,
            "max_tokens": args.max_tokens, "max_concurrency": args.max_concurrency, "max_queue": args.max_queue,
            "time_limit_s": args.time_limit, **environment("llama-cpp-python", "fastapi", "uvicorn", "openai"),
        },
        "levels": levels,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8], help="concurrent clients per level")
    parser.add_argument("--requests", type=int, default=5, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--max-concurrency", type=int, default=4)
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per level before clients stop")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_load.json")
    main(parser.parse_args())
