"""The `exllamav2/<model dir or alias>` engine: exllamav2's dynamic generator as an in-process
GPU sub-agent behind litellm (parallel sub-agents batch together with flash-attn; one at a
time without it). Everything but the backend is shared with `exllamav3` (`_gpu_engine`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from turnout.config import GpuEngineSettings
from turnout.engines._gpu_engine import GpuEngine

__all__ = ["ExLlamaV2Engine"]


class ExLlamaV2Engine(GpuEngine):
    provider: ClassVar[str] = "exllamav2"
    weights: ClassVar[str] = "EXL2, GPTQ or fp16 safetensors"

    def backend(self, model_dir: Path, settings: GpuEngineSettings) -> Any:
        from turnout.engines.gpu.exllamav2_backend import ExLlamaV2Backend

        return ExLlamaV2Backend(model_dir, settings)

