"""The shared GPU engine package: its public names, and that importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

from turnout.engines import gpu


def test_public_names_are_pinned() -> None:
    assert sorted(gpu.__all__) == sorted([
        "LLAMA_SIZES", "ChatTemplate", "LlamaShape", "Scan", "StopConditions", "StopScanner",
        "make_llama", "make_tiny_llama", "stop_conditions", "write_safetensors",
    ])
    assert all(hasattr(gpu, name) for name in gpu.__all__)


def test_importing_it_loads_no_template_tokenizer_or_tensor_library() -> None:
    heavy = ("jinja2", "tokenizers", "safetensors", "torch", "exllamav2", "exllamav3")
    code = f"import sys, turnout.engines.gpu; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
