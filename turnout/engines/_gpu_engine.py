"""What the in-process GPU engines (`exllamav2/…`, `exllamav3/…`) share above the generator.

One model + paged cache + generator per model directory per process, owned by a worker
thread; every concurrent `complete()` call is a job on that generator. Chat templates come
from the model's `tokenizer_config.json`, stop conditions from its EOS and end-of-turn
tokens, output schemas are enforced token by token (llguidance). An engine adds only its
package name, the weights it reads and its backend; without CUDA it says so and names what
can take the role instead, and `import turnout` never imports torch or the engine.
"""

from __future__ import annotations

import importlib.util
from abc import abstractmethod
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from turnout.config import GpuEngineSettings, get_settings
from turnout.engines._base import EngineChunk, EngineRequest, LocalEngine
from turnout.engines.repetition import sampler_stats
from turnout.errors import EngineUnavailable, ModelNotFound

ALTERNATIVES = "use llamacpp/<gguf> (CPU/Metal) or a remote model for this role"


@lru_cache(maxsize=8)
def unavailable_reason(package: str) -> str | None:
    """Why `package` cannot run in this process, or None when it can (checked once)."""
    if importlib.util.find_spec("torch") is None:
        return f"torch is not installed (pip install 'turnout[{package}]' on a machine with an NVIDIA GPU)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is available (torch.cuda.is_available() is False)"
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed: pip install 'turnout[{package}]'"
    return None


class GpuEngine(LocalEngine):
    """Base of the exllama engines; subclasses name their package, weights and backend."""

    provider: ClassVar[str]
    weights: ClassVar[str]  # what a model directory may hold, for error messages

    def settings(self) -> GpuEngineSettings:
        settings = getattr(get_settings(), self.provider)
        assert isinstance(settings, GpuEngineSettings)
        return settings

    @abstractmethod
    def backend(self, model_dir: Path, settings: GpuEngineSettings) -> Any:
        """The generation backend for one model directory (built in the worker thread)."""

    def resolve_model_dir(self, name: str) -> Path:
        """An alias from `[<engine>.models]` or a directory with config.json and tokenizer.json."""
        return self._model_dir(name, self.settings())

    def _model_dir(self, name: str, settings: GpuEngineSettings) -> Path:
        path = settings.models.get(name, Path(name)).expanduser()
        missing = [f for f in ("config.json", "tokenizer.json") if not (path / f).is_file()]
        if not path.is_dir() or missing:
            aliases = ", ".join(sorted(settings.models)) or "none configured"
            what = "does not exist" if not path.is_dir() else f"has no {' or '.join(missing)}"
            raise ModelNotFound(
                f"model directory {path} {what}; give {self.provider}/<model dir> ({self.weights} "
                f"with config.json and tokenizer.json) or an alias ({aliases})"
            )
        return path

    def _runnable_model_dir(self, model: str, settings: GpuEngineSettings) -> Path:
        """The model's directory, once it is known to exist and this process can run it."""
        model_dir = self._model_dir(model, settings)
        reason = unavailable_reason(self.provider)
        if reason is not None:
            raise EngineUnavailable(f"{self.provider}/{model} cannot run here: {reason}; {ALTERNATIVES}")
        return model_dir

    def check(self, model: str) -> None:
        self._runnable_model_dir(model, self.settings())

    def describe(self, model: str) -> str:
        return str(self.resolve_model_dir(model))

    async def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        from turnout.engines.gpu.chat_template import cached_chat_template
        from turnout.engines.gpu.worker import GenerationJob
        from turnout.engines.gpu.workers import get_worker, to_engine_chunks

        # The door has already called check(); the same checks here keep a direct call safe.
        settings = self.settings()
        model_dir = self._runnable_model_dir(request.model, settings)
        worker = get_worker(
            (self.provider, str(model_dir), settings.model_dump_json()),
            lambda: self.backend(model_dir, settings),
        )
        job = GenerationJob(
            prompt=cached_chat_template(model_dir).render(request.messages),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop_strings=request.stop,
            json_schema=request.json_schema,
        )
        async for chunk in to_engine_chunks(worker.submit(job, cancel=request.cancel)):
            if chunk.finish_reason is not None:
                chunk.extras.update(sampler_stats(settings.repeat_penalty))
            yield chunk
