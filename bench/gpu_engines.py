"""GPU engines on a GPU machine: exllamav2 and exllamav3 through turnout, against the
memory-bandwidth bound and against HF transformers `generate`, on the same weights, in one run.

`bench/gpu/run` runs it twice (a tiny model, then a ~1B one) after building the engines'
extensions; it also runs alone. In one process, for each engine (an engine that is missing,
fails to build or fails mid-run is reported and the others still run):
1. Load and warm up: the first call's time (model load, first kernels).
2. Batch-1 decode tokens/s through `turnout.engines.complete("<engine>/DIR")` (median of three),
   against the bound: bandwidth ÷ bytes read per token (the fp16 weights, once per token).
3. Aggregate tokens/s for 1, 4 and 16 concurrent jobs, and whether the engine batched them
   (exllamav2 batches only with flash-attn; exllamav3 always, with its own paged attention).
4. Prefix-cache reuse: two calls sharing a long system prompt; cached tokens and time to first
   token of the second against the first.
5. Schema-constrained decode overhead: decode tokens/s with a JSON-schema constraint against
   the same call without one.
Then the same prompts through transformers `generate` (greedy, batch 1 and padded batches).

    python bench/gpu_engines.py --size 1b [--model-dir DIR] [--tokens 128] [--engines exllamav2,exllamav3]
    python bench/gpu_engines.py --size tiny --model-dir DIR --make-only   # only write the model
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from _common import environment, write_results
from pydantic import BaseModel, Field

# Peak memory bandwidth in GB/s of the cards this project is lent (vendor figures).
BANDWIDTH_GBPS = {"H200": 4800.0, "H100 SXM": 3350.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100": 2039.0}
PROMPT = "Write a short note about trains, stations and turnouts."
CONCURRENCY = (1, 4, 16)
SHARED_SYSTEM_PROMPT = "You are a careful assistant. " * 40  # more than one 256-token cache page


class Numbers(BaseModel):
    """A schema whose answer is long enough to measure decode speed under the constraint."""

    values: list[int] = Field(min_length=16, max_length=16)


def make_model(size: str, directory: Path) -> Path:
    """The random-weight fp16 Llama for `size` in `directory`, unless a whole one is there
    already (written beside it, then renamed: a write cut short leaves no model). Tiny is the
    GPU tests' shape (head size 64)."""
    from turnout.engines.gpu import make_llama, make_tiny_llama

    if (directory / "model.safetensors").exists():
        return directory
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if size == "tiny":
        make_tiny_llama(partial, hidden_size=256, heads=4, kv_heads=2)
    else:
        make_llama(partial, size)
    shutil.rmtree(directory, ignore_errors=True)
    return partial.rename(directory)


def prepare_device() -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        raise SystemExit("this benchmark needs torch with CUDA (a GPU machine)")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU (README, 'Running the GPU checks')")
    major, minor = torch.cuda.get_device_capability()
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    os.environ.setdefault("CUDA_HOME", "/usr/local/cuda")
    return {"device": torch.cuda.get_device_name(), "arch": os.environ["TORCH_CUDA_ARCH_LIST"],
            "flash_attn": importlib.util.find_spec("flash_attn") is not None}


def prepare_engine(engine: str) -> dict[str, Any]:
    """Import `engine`'s extension (built on first import): its import time, or why not."""
    if importlib.util.find_spec(engine) is None:
        return {"available": False, "reason": f"{engine} is not installed: pip install -e '.[{engine}]'"}
    started = time.perf_counter()
    try:
        importlib.import_module(f"{engine}.ext")
    except Exception as exc:  # a failed extension build: report it, run the other engines
        return {"available": False, "reason": f"import failed: {type(exc).__name__}: {exc}"}
    return {"available": True, "extension_import_s": time.perf_counter() - started}


def bandwidth_for(device: str, override: float | None) -> float | None:
    if override:
        return override
    return next((gbps for name, gbps in BANDWIDTH_GBPS.items() if name in device), None)


async def concurrent_run(model: str, concurrency: int, tokens: int) -> dict[str, Any]:
    from turnout.engines import complete

    started = time.perf_counter()
    results = await asyncio.gather(*(
        complete(model, f"{PROMPT} ({i})", max_tokens=tokens, temperature=0) for i in range(concurrency)
    ))
    wall = time.perf_counter() - started
    generated = sum(r.usage.output_tokens for r in results)
    return {"concurrency": concurrency, "wall_s": wall, "generated": generated, "aggregate_tps": generated / wall,
            "decode_tps_median": statistics.median(r.timings.tokens_per_s or 0.0 for r in results),
            "batched": [r.engine_stats.get("batched") for r in results]}


async def prefix_reuse(model: str) -> dict[str, Any]:
    from turnout.engines import complete

    system = {"role": "system", "content": SHARED_SYSTEM_PROMPT}
    calls = []
    for question in ("First question.", "Second question."):
        result = await complete(model, [system, {"role": "user", "content": question}], max_tokens=4, temperature=0)
        calls.append({"input_tokens": result.usage.input_tokens, "ttft_s": result.timings.ttft_s,
                      "cached_tokens": result.engine_stats.get("cached_tokens"),
                      "prefill_s": result.engine_stats.get("prefill_s")})
    first, second = calls
    speedup = first["ttft_s"] / second["ttft_s"] if first["ttft_s"] and second["ttft_s"] else None
    return {"first": first, "second": second, "ttft_speedup": speedup}


async def schema_overhead(model: str) -> dict[str, Any]:
    from turnout.engines import complete

    plain = await complete(model, PROMPT, max_tokens=96, temperature=0)
    constrained = await complete(model, PROMPT, schema=Numbers, max_tokens=96, temperature=0)
    rate = constrained.timings.tokens_per_s
    return {"plain_tps": plain.timings.tokens_per_s, "schema_tps": rate,
            "schema_tokens": constrained.usage.output_tokens,
            "schema_valid": isinstance(constrained.output, Numbers),
            "slowdown": plain.timings.tokens_per_s / rate if rate and plain.timings.tokens_per_s else None}


async def engine_runs(engine: str, model_dir: Path, tokens: int) -> dict[str, Any]:
    """Every measurement for one engine; a failure is recorded where it happened."""
    model = f"{engine}/{model_dir}"
    report: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        await concurrent_run(model, 1, 8)  # load and first kernels
        report["load_s"] = time.perf_counter() - started
        batch1 = [await concurrent_run(model, 1, tokens) for _ in range(3)]
        report["batch1_decode_tps"] = statistics.median(r["decode_tps_median"] for r in batch1)
        report["concurrent"] = [batch1[0]] + [await concurrent_run(model, n, tokens) for n in CONCURRENCY[1:]]
        report["prefix_reuse"] = await prefix_reuse(model)
        report["schema"] = await schema_overhead(model)
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["traceback"] = traceback.format_exc(limit=8)
    return report


def transformers_run(model_dir: Path, concurrency: int, tokens: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float16).cuda().eval()
    batch = tokenizer([f"{PROMPT} ({i})" for i in range(concurrency)], return_tensors="pt", padding=True).to("cuda")
    with torch.no_grad():
        model.generate(**batch, max_new_tokens=4, do_sample=False)  # warm-up
        torch.cuda.synchronize()
        started = time.perf_counter()
        model.generate(**batch, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    del model
    torch.cuda.empty_cache()
    return {"concurrency": concurrency, "wall_s": wall, "aggregate_tps": concurrency * tokens / wall}


def transformers_runs(model_dir: Path, tokens: int) -> dict[str, Any]:
    if importlib.util.find_spec("transformers") is None:
        return {"error": "transformers is not installed"}
    try:
        return {"concurrent": [transformers_run(model_dir, n, tokens) for n in CONCURRENCY]}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _tps(value: float | None) -> str:
    return f"{value:.0f}" if value else "-"


def print_report(setup: dict[str, Any], runs: dict[str, dict[str, Any]], hf: dict[str, Any],
                 weight_bytes: int, bound: float | None) -> None:
    print(f"{setup['device']}  arch {setup['arch']}  flash-attn {setup['flash_attn']}  "
          f"weights {weight_bytes / 1e9:.3f} GB" + (f"  bandwidth bound {bound:.0f} tok/s" if bound else ""))
    for name, state in setup["engines"].items():
        if not state["available"]:
            print(f"{name}: skipped ({state['reason']})")
        elif "error" in runs[name]:
            print(f"{name}: failed after extension import: {runs[name]['error']}")
    good = {name: r for name, r in runs.items() if "concurrent" in r}
    header = f"{'':<30}" + "".join(f"{name:>14}" for name in good) + f"{'transformers':>14}"
    print(header)
    print(f"{'load + first call, s':<30}" + "".join(f"{r['load_s']:>14.1f}" for r in good.values()))
    print(f"{'batch-1 decode, tok/s':<30}" + "".join(f"{_tps(r['batch1_decode_tps']):>14}" for r in good.values()))
    if bound:
        print(f"{'  of the bandwidth bound':<30}" + "".join(f"{r['batch1_decode_tps'] / bound:>14.2f}" for r in good.values()))
    hf_rows = hf.get("concurrent", [])
    for row, jobs in enumerate(CONCURRENCY):
        other = _tps(hf_rows[row]["aggregate_tps"]) if row < len(hf_rows) else "-"
        print(f"{f'{jobs} jobs, aggregate tok/s':<30}"
              + "".join(f"{_tps(r['concurrent'][row]['aggregate_tps']):>14}" for r in good.values()) + f"{other:>14}")
    print(f"{'16 jobs batched':<30}" + "".join(f"{all(r['concurrent'][-1]['batched'])!s:>14}" for r in good.values()))
    print(f"{'prefix: cached tokens, 2nd':<30}"
          + "".join(f"{r['prefix_reuse']['second']['cached_tokens']!s:>14}" for r in good.values()))
    print(f"{'prefix: TTFT 1st / 2nd':<30}"
          + "".join(f"{(r['prefix_reuse']['ttft_speedup'] or float('nan')):>14.2f}" for r in good.values()))
    print(f"{'schema: plain / constrained':<30}"
          + "".join(f"{(r['schema']['slowdown'] or float('nan')):>14.2f}" for r in good.values()))
    if "error" in hf:
        print(f"transformers: {hf['error']}")


async def main(args: argparse.Namespace) -> None:
    if args.make_only:
        if args.model_dir is None:
            raise SystemExit("--make-only needs --model-dir")
        print(f"model written to {make_model(args.size, args.model_dir)}")
        return
    setup = prepare_device()
    setup["engines"] = {name: prepare_engine(name) for name in args.engines.split(",")}
    with tempfile.TemporaryDirectory(prefix=f"turnout-{args.size}-") as tmp:
        model_dir = make_model(args.size, args.model_dir or Path(tmp))
        weight_bytes = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
        runs = {name: await engine_runs(name, model_dir, args.tokens)
                for name, state in setup["engines"].items() if state["available"]}
        hf = transformers_runs(model_dir, args.tokens) if not args.no_transformers else {"error": "not asked for"}
    bandwidth = bandwidth_for(setup["device"], args.bandwidth_gbps)
    bound = bandwidth * 1e9 / weight_bytes if bandwidth else None
    print_report(setup, runs, hf, weight_bytes, bound)
    write_results(args.out or Path(f"bench/results/gpu/gpu_engines-{args.size}.json"), {
        "settings": {"tokens": args.tokens, "size": args.size, **setup,
                     **environment("exllamav2", "exllamav3", "torch", "flash-attn", "transformers", "llguidance")},
        "weight_bytes": weight_bytes, "bandwidth_gbps": bandwidth, "bound_tps": bound,
        "turnout": runs, "transformers": hf,
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "1b"], default="1b", help="the random-weight model to make")
    parser.add_argument("--model-dir", type=Path, help="where the model is (made there if missing)")
    parser.add_argument("--make-only", action="store_true", help="write the model and stop")
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated per job")
    parser.add_argument("--engines", default="exllamav2,exllamav3", help="comma-separated engines to compare")
    parser.add_argument("--no-transformers", action="store_true", help="skip the transformers comparison")
    parser.add_argument("--bandwidth-gbps", type=float, help="peak memory bandwidth, if the card is not in the table")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/gpu/gpu_engines-SIZE.json)")
    asyncio.run(main(parser.parse_args()))
