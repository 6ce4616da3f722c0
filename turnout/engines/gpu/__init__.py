"""The GPU engine core that `exllamav2` and `exllamav3` share: what neither library provides.

Neither exllama library renders chat templates or derives stop conditions from a model
directory, and their tests need a model that no one has to download. The pieces live here
once, for both engines and their tests (the generation worker and schema constraints sit
beside them in this package):

- `ChatTemplate`: a model's Jinja chat template, rendered as transformers renders it.
- `StopConditions`, `stop_conditions`, `StopScanner`: stop token ids and strings for a
  model directory, and a streaming scanner that never emits part of a stop string.
- `make_tiny_llama`, `make_llama`, `write_safetensors`: random-weight fp16 Llama model
  directories built on the spot (well under a second for the tiny one), written tensor
  by tensor, for tests and throughput measurements.

Nothing here imports torch or an exllama library; jinja2, tokenizers and safetensors are
imported only inside the functions that need them, so importing this package is cheap.
"""

from turnout.engines.gpu.chat_template import ChatTemplate
from turnout.engines.gpu.model_maker import (
    LLAMA_SIZES,
    LlamaShape,
    make_llama,
    make_tiny_llama,
)
from turnout.engines.gpu.safetensors_writer import write_safetensors
from turnout.engines.gpu.stops import Scan, StopConditions, StopScanner, stop_conditions

__all__ = [
    "LLAMA_SIZES",
    "ChatTemplate",
    "LlamaShape",
    "Scan",
    "StopConditions",
    "StopScanner",
    "make_llama",
    "make_tiny_llama",
    "stop_conditions",
    "write_safetensors",
]
