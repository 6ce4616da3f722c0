"""GPU engines on a GPU machine: exllamav2 and exllamav3 through turnout against the
memory-bandwidth bound and against HF transformers `generate`, on the same weights, in one run.

Not yet run: written on a machine without a GPU; the first GPU session runs it and fixes
what the hardware disagrees with. What it does, in one process:
1. Makes sure each engine's extension can build (TORCH_CUDA_ARCH_LIST from the device's compute
   capability, CUDA_HOME defaulting to /usr/local/cuda) and imports it (the first import
   JIT-compiles the extension; the time is reported). An engine that is not installed or
   fails to build is reported and skipped; the others still run.
2. Writes a ~1B-parameter random-weight fp16 Llama (`turnout.engines.gpu.make_llama`) unless
   `--model DIR` names one.
3. Per engine, batch-1 decode tokens/s through `turnout.engines.complete("<engine>/DIR")`,
   against the bound: bandwidth ÷ bytes read per token (the fp16 weights, once per token).
4. Per engine, aggregate tokens/s for 1, 4 and 16 concurrent jobs (exllamav2 batches them
   when flash-attn is present; exllamav3 always, with its own paged attention).
5. The same prompts through transformers `generate` (greedy, batch 1 and padded batches),
   when transformers is installed.

    CUDA_HOME=/usr/local/cuda TORCH_CUDA_ARCH_LIST=9.0 python bench/gpu_engines.py [--model DIR] [--tokens 128]
        [--engines exllamav2,exllamav3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import environment, write_results

# Peak memory bandwidth in GB/s of the cards this project is lent (vendor figures).
BANDWIDTH_GBPS = {"H200": 4800.0, "H100 SXM": 3350.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100": 2039.0}
PROMPT = "Write a short note about trains, stations and turnouts."


def prepare_device() -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        raise SystemExit("this benchmark needs torch with CUDA: pip install -e '.[exllamav3]' on a GPU machine")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU (see README, 'GPU engines')")
    major, minor = torch.cuda.get_device_capability()
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    os.environ.setdefault("CUDA_HOME", "/usr/local/cuda")
    return {"device": torch.cuda.get_device_name(), "arch": os.environ["TORCH_CUDA_ARCH_LIST"],
            "flash_attn": importlib.util.find_spec("flash_attn") is not None}


def prepare_engine(engine: str) -> dict[str, Any]:
    """Import `engine` (the first import JIT-builds its extension): its import time, or why not."""
    if importlib.util.find_spec(engine) is None:
        return {"available": False, "reason": f"{engine} is not installed: pip install -e '.[{engine}]'"}
    started = time.perf_counter()
    try:
        importlib.import_module(engine)
    except Exception as exc:  # a failed extension build: report it, run the other engines
        return {"available": False, "reason": f"import failed: {type(exc).__name__}: {exc}"}
    return {"available": True, "extension_import_s": time.perf_counter() - started}


def bandwidth_for(device: str, override: float | None) -> float | None:
    if override:
        return override
    return next((gbps for name, gbps in BANDWIDTH_GBPS.items() if name in device), None)


async def turnout_run(engine: str, model_dir: Path, concurrency: int, tokens: int) -> dict[str, Any]:
    from turnout.engines import complete

    started = time.perf_counter()
    results = await asyncio.gather(*(
        complete(f"{engine}/{model_dir}", f"{PROMPT} ({i})", max_tokens=tokens, temperature=0)
        for i in range(concurrency)
    ))
    wall = time.perf_counter() - started
    generated = sum(r.usage.output_tokens for r in results)
    return {"concurrency": concurrency, "wall_s": wall, "generated": generated, "aggregate_tps": generated / wall,
            "decode_tps_median": statistics.median(r.timings.tokens_per_s or 0.0 for r in results),
            "batched": [r.engine_stats.get("batched") for r in results]}


def transformers_run(model_dir: Path, concurrency: int, tokens: int) -> dict[str, Any] | None:
    if importlib.util.find_spec("transformers") is None:
        return None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float16).cuda().eval()
    batch = tokenizer([f"{PROMPT} ({i})" for i in range(concurrency)], return_tensors="pt", padding=True).to("cuda")
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.no_grad():
        model.generate(**batch, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
    torch.cuda.synchronize()
    wall = time.perf_counter() - started
    del model
    torch.cuda.empty_cache()
    return {"concurrency": concurrency, "wall_s": wall, "aggregate_tps": concurrency * tokens / wall}


async def main(args: argparse.Namespace) -> None:
    from turnout.engines.gpu import LLAMA_SIZES, make_llama

    setup = prepare_device()
    engines = {name: prepare_engine(name) for name in args.engines.split(",")}
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="turnout-1b-") as tmp:
        model_dir = args.model or make_llama(Path(tmp), "1b")
        shape = LLAMA_SIZES.get("1b")
        weight_bytes = sum(f.stat().st_size for f in Path(model_dir).glob("*.safetensors"))
        for name, state in engines.items():
            if not state["available"]:
                continue
            await turnout_run(name, Path(model_dir), 1, 8)  # warm-up: load, first kernels
            runs[name] = [await turnout_run(name, Path(model_dir), n, args.tokens) for n in (1, 4, 16)]
        hf = [transformers_run(Path(model_dir), n, args.tokens) for n in (1, 4, 16)]
    bandwidth = bandwidth_for(setup["device"], args.bandwidth_gbps)
    bound = bandwidth * 1e9 / weight_bytes if bandwidth else None
    print(f"{setup['device']}  arch {setup['arch']}  flash-attn {setup['flash_attn']}  weights {weight_bytes / 1e9:.2f} GB"
          + (f"  bound {bound:.0f} tok/s" if bound else ""))
    for name, state in engines.items():
        if not state["available"]:
            print(f"{name}: skipped ({state['reason']})")
            continue
        batch1 = runs[name][0]["decode_tps_median"]
        ratio = f" = {batch1 / bound:.2f} of the bandwidth bound" if bound else ""
        print(f"{name}: extension import {state['extension_import_s']:.1f}s, batch-1 decode {batch1:.0f} tok/s{ratio}")
    print(f"{'jobs':>5} " + " ".join(f"{name + ' tok/s':>16}" for name in runs) + f" {'transformers tok/s':>19}")
    for row, concurrency in enumerate((1, 4, 16)):
        other = hf[row]
        print(f"{concurrency:>5} " + " ".join(f"{runs[name][row]['aggregate_tps']:>16.0f}" for name in runs)
              + f" {other['aggregate_tps'] if other else float('nan'):>19.0f}")
    write_results(args.out, {
        "settings": {"tokens": args.tokens, "model": str(args.model or "generated 1b"), "shape": repr(shape),
                     **setup, **environment("exllamav2", "exllamav3", "torch", "flash-attn", "transformers")},
        "engines": engines, "weight_bytes": weight_bytes, "bandwidth_gbps": bandwidth, "bound_tps": bound,
        "batch1_decode_tps": {name: r[0]["decode_tps_median"] for name, r in runs.items()},
        "turnout": runs, "transformers": hf,
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: generate a ~1B fp16 Llama)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated per job")
    parser.add_argument("--engines", default="exllamav2,exllamav3", help="comma-separated engines to compare")
    parser.add_argument("--bandwidth-gbps", type=float, help="peak memory bandwidth, if the card is not in the table")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_engines.json"))
    asyncio.run(main(parser.parse_args()))
