"""JetBrains Mellum2 on llama.cpp, proven at the architecture level: a tiny random-weight GGUF of
llama.cpp's `mellum` architecture (Mellum2's: every layer a Mixture-of-Experts, sliding-window
attention on three layers in four, q/k norms), written here with the `gguf` package, loads
through `llamacpp/<path>`, generates, and answers a schema-constrained object.

What llama.cpp expects (src/models/mellum.cpp, src/llama-arch.cpp; the converter registers
`MellumForCausalLM`, and the pre-tokenizer hash is JetBrains/Mellum2-12B-A2.5B-Base's):
`mellum.expert_count`/`expert_used_count`/`expert_feed_forward_length`, no dense layers or
shared experts, softmax gating, `output.weight` required (no tied embeddings), key length =
value length = rope dimensions, NEOX rope.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel, Field

from turnout.engines import complete

gguf = pytest.importorskip("gguf")
pytest.importorskip("llama_cpp")

VOCAB = 100
EMBD, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 64, 4, 4, 2, 16
EXPERTS, EXPERTS_USED, EXPERT_FF = 4, 2, 32


def _byte_tokens() -> list[str]:
    """GPT-2 byte-level tokens for printable ASCII (each byte is its own character), plus `Ġ`
    (space), `Ċ` (newline) and the end token: enough to write any JSON object."""
    tokens = [chr(b) for b in range(33, 127)] + ["\u0120", "\u010a"]
    tokens += [f"<|unused{i}|>" for i in range(VOCAB - len(tokens) - 1)] + ["<|endoftext|>"]
    assert len(tokens) == VOCAB
    return tokens


@pytest.fixture(scope="module")
def tiny_mellum(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mellum") / "tiny-mellum.gguf"
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "mellum")
    writer.add_name("tiny-mellum")
    writer.add_context_length(512)
    writer.add_embedding_length(EMBD)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(EXPERT_FF * EXPERTS_USED)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_expert_count(EXPERTS)
    writer.add_expert_used_count(EXPERTS_USED)
    writer.add_expert_feed_forward_length(EXPERT_FF)
    writer.add_sliding_window(16)
    writer.add_sliding_window_pattern([True, True, True, False])  # Mellum2: three sliding-window layers, then a full one
    writer.add_rope_freq_base_swa(10000.0)
    tokens = _byte_tokens()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * 96 + [3] * (VOCAB - 96))
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(VOCAB - 1)
    writer.add_eos_token_id(VOCAB - 1)

    def weight(name: str, *ggml_shape: int) -> None:  # ggml order; numpy's is reversed
        writer.add_tensor(name, (rng.standard_normal(tuple(reversed(ggml_shape))) * 0.02).astype(np.float32))

    def ones(name: str, size: int) -> None:
        writer.add_tensor(name, np.ones(size, dtype=np.float32))

    weight("token_embd.weight", EMBD, VOCAB)
    ones("output_norm.weight", EMBD)
    output = (rng.standard_normal((VOCAB, EMBD)) * 0.02).astype(np.float32)
    output[VOCAB - 1] = 0.0  # the end token's logit stays 0: random weights do not end the answer at once
    writer.add_tensor("output.weight", output)
    for layer in range(LAYERS):
        block = f"blk.{layer}."
        ones(block + "attn_norm.weight", EMBD)
        weight(block + "attn_q.weight", EMBD, HEADS * HEAD_DIM)
        weight(block + "attn_k.weight", EMBD, KV_HEADS * HEAD_DIM)
        weight(block + "attn_v.weight", EMBD, KV_HEADS * HEAD_DIM)
        weight(block + "attn_output.weight", HEADS * HEAD_DIM, EMBD)
        ones(block + "attn_q_norm.weight", HEAD_DIM)
        ones(block + "attn_k_norm.weight", HEAD_DIM)
        ones(block + "ffn_norm.weight", EMBD)
        weight(block + "ffn_gate_inp.weight", EMBD, EXPERTS)
        weight(block + "ffn_gate_exps.weight", EMBD, EXPERT_FF, EXPERTS)
        weight(block + "ffn_up_exps.weight", EMBD, EXPERT_FF, EXPERTS)
        weight(block + "ffn_down_exps.weight", EXPERT_FF, EMBD, EXPERTS)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class Word(BaseModel):
    word: str = Field(max_length=12)
    count: int = Field(ge=0, le=9)


async def test_a_mellum_architecture_model_generates_through_the_door(tiny_mellum: Path) -> None:
    answer = await complete(f"llamacpp/{tiny_mellum}", "abc", max_tokens=8, temperature=0)
    assert answer.usage.output_tokens > 0 and answer.locality == "local"
    assert answer.model == f"llamacpp/{tiny_mellum}"


async def test_a_mellum_architecture_model_answers_a_schema_constrained_object(tiny_mellum: Path) -> None:
    answer = await complete(f"llamacpp/{tiny_mellum}", "Name a word and a count.", schema=Word,
                            temperature=0, max_tokens=96)
    assert isinstance(answer.output, Word) and answer.attempts == 1  # random weights, valid JSON all the same
