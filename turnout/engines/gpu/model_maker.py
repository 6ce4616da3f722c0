"""Random-weight fp16 Llama model directories, made on the spot, for GPU engine tests and
benchmarks: no download, no torch, no hub.

`make_tiny_llama` writes a complete model directory in well under a second (a 2-layer,
64-wide Llama with a 512-token vocabulary) so GPU tests can load a real model through the
real engine. `make_llama(size="1b")` writes a TinyLlama-shaped model (~1.1B parameters,
2.2 GB) whose weights are random but whose memory traffic per token is that of a real 1B
model, which is all a throughput measurement needs. Both write the same files:

- `config.json`: a `LlamaForCausalLM` config that transformers, exllamav2 and exllamav3 load;
- `model.safetensors`: float16 weights under the Hugging Face Llama tensor names, written
  tensor by tensor (`write_safetensors`), so the 1B model never sits in memory whole;
- `tokenizer.json`: a byte-level BPE trained right here with `tokenizers` on a small
  built-in English and code corpus, with exactly `vocab_size` tokens;
- `tokenizer_config.json`: special tokens and a ChatML `chat_template` (`eos_token` is
  `<|im_end|>`, the end of an assistant turn), and `generation_config.json`.

The output of a random model is noise, so tests check mechanics (lengths, stops, batching,
schema constraints), never content.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

from turnout.engines.gpu.chat_template import CHATML_FALLBACK
from turnout.engines.gpu.safetensors_writer import Shape, write_safetensors

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>")
INIT_STD = 0.02  # transformers' initializer_range for Llama
BLOCK_VALUES = 1 << 24  # random values generated at a time: 64 MB of float32
CORPUS = """\
The quick brown fox jumps over the lazy dog. A small model answers short questions
about files, functions and tests. Rename the function load_inventory to read_inventory
and update every caller in the repository. The planner reads the task, the router picks
a sub-agent, and each sub-agent returns a JSON object that matches its schema.
Please summarize the changes in one sentence. The tests passed; the build is green.
What is the capital of France? Paris is the capital of France. Thank you, that helps.

def read_inventory(path: str) -> dict[str, int]:
    \"\"\"Read an inventory file: one item and count per line.\"\"\"
    items = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            name, count = line.split(",")
            items[name.strip()] = int(count)
    return items


class Invoice:
    def __init__(self, number: int, total: float) -> None:
        self.number = number
        self.total = total

    def __repr__(self) -> str:
        return f"Invoice(number={self.number}, total={self.total:.2f})"


for index, value in enumerate([1, 2, 3]):
    if value % 2 == 0:
        print(index, value)
    else:
        continue

{"name": "read_inventory", "count": 3, "color": "green", "detail": {"ok": true}}
import json, os, sys
x = [i * i for i in range(10) if i > 2]
"""


@dataclass(frozen=True)
class LlamaShape:
    """The dimensions of a Llama model (names as in `make_tiny_llama`'s arguments)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    layers: int
    heads: int
    kv_heads: int
    max_positions: int

    def __post_init__(self) -> None:
        if self.hidden_size % self.heads or self.heads % self.kv_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must divide by heads ({self.heads}) "
                f"and heads by kv_heads ({self.kv_heads})"
            )
        if self.vocab_size < 256 + len(SPECIAL_TOKENS):
            raise ValueError(
                f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} "
                "(256 byte tokens plus the special tokens)"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads

    def tensors(self) -> list[tuple[str, Shape]]:
        """Every weight's Hugging Face name and shape ([out, in] for linear layers)."""
        hidden, kv = self.hidden_size, self.kv_heads * self.head_dim
        inner = self.intermediate_size
        embedding = (self.vocab_size, hidden)
        tensors: list[tuple[str, Shape]] = [("model.embed_tokens.weight", embedding)]
        for i in range(self.layers):
            layer = f"model.layers.{i}"
            tensors += [
                (f"{layer}.input_layernorm.weight", (hidden,)),
                (f"{layer}.self_attn.q_proj.weight", (hidden, hidden)),
                (f"{layer}.self_attn.k_proj.weight", (kv, hidden)),
                (f"{layer}.self_attn.v_proj.weight", (kv, hidden)),
                (f"{layer}.self_attn.o_proj.weight", (hidden, hidden)),
                (f"{layer}.post_attention_layernorm.weight", (hidden,)),
                (f"{layer}.mlp.gate_proj.weight", (inner, hidden)),
                (f"{layer}.mlp.up_proj.weight", (inner, hidden)),
                (f"{layer}.mlp.down_proj.weight", (hidden, inner)),
            ]
        return [*tensors, ("model.norm.weight", (hidden,)), ("lm_head.weight", embedding)]

    def parameter_count(self) -> int:
        """All weights; at float16, twice this many bytes are read per generated token."""
        return sum(prod(shape) for _, shape in self.tensors())


# TinyLlama-1.1B's shape: the smallest widely used Llama, for throughput measurements.
LLAMA_SIZES = {
    "1b": LlamaShape(
        vocab_size=32000, hidden_size=2048, intermediate_size=5632, layers=22, heads=32,
        kv_heads=4, max_positions=2048,
    ),
}


def make_tiny_llama(
    directory: Path,
    *,
    vocab_size: int = 512,
    hidden_size: int = 64,
    intermediate_size: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    max_positions: int = 1024,
    seed: int = 0,
) -> Path:
    """Write a tiny random-weight Llama model directory (created if missing) and return it."""
    shape = LlamaShape(
        vocab_size, hidden_size, intermediate_size, layers, heads, kv_heads, max_positions
    )
    return write_llama(directory, shape, seed=seed)


def make_llama(directory: Path, size: str = "1b", *, seed: int = 0) -> Path:
    """Write a realistic-size random-weight Llama (`LLAMA_SIZES`) for throughput runs."""
    if size not in LLAMA_SIZES:
        raise ValueError(f"unknown model size {size!r}; known: {', '.join(sorted(LLAMA_SIZES))}")
    return write_llama(directory, LLAMA_SIZES[size], seed=seed)


def write_llama(directory: Path, shape: LlamaShape, *, seed: int = 0) -> Path:
    """Write a random-weight Llama of any `shape` into `directory`; same seed, same files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(shape.vocab_size, seed=seed)
    tokenizer.save(str(directory / "tokenizer.json"))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    _write_json(directory / "config.json", _config(shape, ids))
    _write_json(directory / "generation_config.json", {
        "bos_token_id": ids["<s>"], "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<pad>"], "transformers_version": "4.46.0",
    })
    _write_json(directory / "tokenizer_config.json", _tokenizer_config(shape, ids))
    write_safetensors(directory / "model.safetensors", shape.tensors(), _random_weights(seed))
    return directory


def train_tokenizer(vocab_size: int, *, seed: int = 0) -> Any:
    """A byte-level BPE `tokenizers.Tokenizer` with exactly `vocab_size` tokens.

    The corpus is `CORPUS`, repeated so its merges come first, then made-up words (from
    `seed`) so that even a 32000-token vocabulary finds enough merges to fill up.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(2 * vocab_size, seed), trainer)
    if tokenizer.get_vocab_size() != vocab_size:
        raise RuntimeError(
            f"the tokenizer trainer found {tokenizer.get_vocab_size()} tokens, not {vocab_size}"
        )
    return tokenizer


def _corpus(made_up_words: int, seed: int) -> Iterator[str]:
    for _ in range(20):
        yield CORPUS
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = [
        "".join(rng.choice(letters) for _ in range(rng.randint(3, 10)))
        for _ in range(made_up_words)
    ]
    for start in range(0, len(words), 12):
        yield " ".join(words[start : start + 12]) + "\n"


def _random_weights(seed: int) -> Any:
    """Block generator for `write_safetensors`: N(0, 0.02) weights, norms at 1 (as a fresh
    transformers Llama), a few rows at a time."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def blocks(name: str, shape: Shape) -> Iterator[Any]:
        if len(shape) == 1:
            yield np.ones(shape, dtype=np.float16)
            return
        rows, columns = shape
        step = max(1, BLOCK_VALUES // columns)
        for start in range(0, rows, step):
            block = rng.standard_normal((min(step, rows - start), columns), dtype=np.float32)
            block *= INIT_STD
            yield block.astype(np.float16)

    return blocks


def _config(shape: LlamaShape, ids: dict[str, int]) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "num_hidden_layers": shape.layers,
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "max_position_embeddings": shape.max_positions,
        "vocab_size": shape.vocab_size,
        "bos_token_id": ids["<s>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<pad>"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": INIT_STD,
        "pretraining_tp": 1,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_cache": True,
        "transformers_version": "4.46.0",
    }


def _tokenizer_config(shape: LlamaShape, ids: dict[str, int]) -> dict[str, Any]:
    added = {
        str(token_id): {
            "content": token, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True,
        }
        for token, token_id in sorted(ids.items(), key=lambda item: item[1])
    }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": "<s>",
        "eos_token": "<|im_end|>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": shape.max_positions,
        "chat_template": CHATML_FALLBACK,
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

