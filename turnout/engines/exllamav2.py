"""The `exllamav2/<model dir or alias>` engine: in-process GPU sub-agents behind litellm.

One model + paged cache + dynamic generator per model directory per process, owned by a
worker thread; every concurrent `complete()` call is a job on that generator, so parallel
sub-agents batch together (with flash-attn; one at a time without it). Chat templates come
from the model's `tokenizer_config.json`, stop conditions from its EOS and end-of-turn
tokens, and output schemas are enforced token by token (llguidance) so a constrained call
always returns JSON that validates. Without CUDA the engine says so and names what can take
the role instead; `import turnout` never imports torch or exllamav2.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from turnout.config import get_settings
from turnout.engines._base import EngineChunk, EngineRequest, LocalEngine
from turnout.errors import EngineUnavailable, ModelNotFound

ALTERNATIVES = "use llamacpp/<gguf> (CPU/Metal) or a remote model for this role"


@lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """Why exllamav2 cannot run in this process, or None when it can (checked once)."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install 'turnout[exllamav2]' on a machine with an NVIDIA GPU)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is available (torch.cuda.is_available() is False)"
    if importlib.util.find_spec("exllamav2") is None:
        return "exllamav2 is not installed: pip install 'turnout[exllamav2]'"
    return None


def resolve_model_dir(name: str) -> Path:
    """An alias from `[exllamav2.models]` or a directory with config.json and tokenizer.json."""
    settings = get_settings().exllamav2
    path = settings.models.get(name, Path(name)).expanduser()
    missing = [f for f in ("config.json", "tokenizer.json") if not (path / f).is_file()]
    if not path.is_dir() or missing:
        aliases = ", ".join(sorted(settings.models)) or "none configured"
        what = "does not exist" if not path.is_dir() else f"has no {' or '.join(missing)}"
        raise ModelNotFound(
            f"model directory {path} {what}; give exllamav2/<model dir> (EXL2, GPTQ or fp16 "
            f"safetensors with config.json and tokenizer.json) or an alias ({aliases})"
        )
    return path


class ExLlamaV2Engine(LocalEngine):
    provider: ClassVar[str] = "exllamav2"

    def check(self, model: str) -> None:
        resolve_model_dir(model)
        reason = unavailable_reason()
        if reason is not None:
            raise EngineUnavailable(f"exllamav2/{model} cannot run here: {reason}; {ALTERNATIVES}")

    def describe(self, model: str) -> str:
        return str(resolve_model_dir(model))

    async def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        from turnout.engines.gpu import ChatTemplate
        from turnout.engines.gpu.exllamav2_backend import ExLlamaV2Backend
        from turnout.engines.gpu.worker import GenerationJob
        from turnout.engines.gpu.workers import get_worker, to_engine_chunks

        self.check(request.model)
        model_dir = resolve_model_dir(request.model)
        settings = get_settings().exllamav2
        worker = get_worker(
            ("exllamav2", str(model_dir), settings.model_dump_json()),
            lambda: ExLlamaV2Backend(model_dir, settings),
        )
        job = GenerationJob(
            prompt=ChatTemplate.from_model_dir(model_dir).render(request.messages),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop_strings=request.stop,
            json_schema=request.json_schema,
        )
        async for chunk in to_engine_chunks(worker.submit(job, cancel=request.cancel)):
            yield chunk
