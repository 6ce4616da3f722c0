"""The `exllamav3/<model dir or alias>` engine: exllamav3's generator as an in-process GPU
sub-agent behind litellm. exllamav3 is exllamav2's maintained successor: its own Triton
paged attention (continuous batching without flash-attn), MoE models, EXL3 and fp16 weights.
Everything but the backend is shared with `exllamav2` (`_gpu_engine`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from turnout.config import GpuEngineSettings
from turnout.engines._gpu_engine import GpuEngine

__all__ = ["ExLlamaV3Engine"]


class ExLlamaV3Engine(GpuEngine):
    provider: ClassVar[str] = "exllamav3"
    weights: ClassVar[str] = "EXL3 or fp16 safetensors"

    def backend(self, model_dir: Path, settings: GpuEngineSettings) -> Any:
        from turnout.engines.gpu.exllamav3_backend import ExLlamaV3Backend

        return ExLlamaV3Backend(model_dir, settings)

