"""The test-model maker writes complete, consistent Llama model directories on the spot."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from turnout.engines.gpu import (
    LLAMA_SIZES,
    ChatTemplate,
    LlamaShape,
    make_llama,
    make_tiny_llama,
    stop_conditions,
    write_safetensors,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny"))


def config(model: Path) -> dict[str, Any]:
    return json.loads((model / "config.json").read_text(encoding="utf-8"))


def weights(model: Path) -> dict[str, np.ndarray]:
    return weights_at(model / "model.safetensors")


def weights_at(path: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as file:
        return {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118


def tokenizer(model: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model / "tokenizer.json"))


def test_the_tiny_model_is_built_in_well_under_five_seconds(tmp_path: Path) -> None:
    started = time.perf_counter()
    make_tiny_llama(tmp_path / "model")
    assert time.perf_counter() - started < 5


def test_the_directory_holds_every_file_a_loader_reads(tiny: Path) -> None:
    assert sorted(p.name for p in tiny.iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_config_is_a_float16_llama_for_causal_lm(tiny: Path) -> None:
    cfg = config(tiny)
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert (cfg["model_type"], cfg["torch_dtype"]) == ("llama", "float16")
    assert cfg["tie_word_embeddings"] is False
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]) == (64, 2, 512)


def test_weights_have_the_hugging_face_llama_names(tiny: Path) -> None:
    per_layer = [
        "input_layernorm", "post_attention_layernorm", "mlp.down_proj", "mlp.gate_proj",
        "mlp.up_proj", "self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj",
        "self_attn.v_proj",
    ]
    expected = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    expected |= {f"model.layers.{i}.{part}.weight" for i in range(2) for part in per_layer}
    assert set(weights(tiny)) == expected


def test_weight_shapes_follow_the_config_with_grouped_query_attention(tiny: Path) -> None:
    cfg, tensors = config(tiny), weights(tiny)
    hidden, inner, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kv = cfg["num_key_value_heads"] * hidden // cfg["num_attention_heads"]
    assert kv == 32
    assert tensors["model.embed_tokens.weight"].shape == (vocab, hidden)
    assert tensors["lm_head.weight"].shape == (vocab, hidden)
    assert tensors["model.layers.1.self_attn.q_proj.weight"].shape == (hidden, hidden)
    assert tensors["model.layers.1.self_attn.k_proj.weight"].shape == (kv, hidden)
    assert tensors["model.layers.1.self_attn.v_proj.weight"].shape == (kv, hidden)
    assert tensors["model.layers.1.mlp.gate_proj.weight"].shape == (inner, hidden)
    assert tensors["model.layers.1.mlp.down_proj.weight"].shape == (hidden, inner)
    assert tensors["model.norm.weight"].shape == (hidden,)


def test_weights_are_finite_float16_with_norms_at_one(tiny: Path) -> None:
    tensors = weights(tiny)
    assert all(t.dtype == np.float16 and np.isfinite(t).all() for t in tensors.values())
    assert (tensors["model.norm.weight"] == 1).all()
    assert 0.015 < float(tensors["lm_head.weight"].astype(np.float32).std()) < 0.025


def test_the_same_seed_gives_the_same_files_and_another_seed_other_weights(tmp_path: Path) -> None:
    a, b = make_tiny_llama(tmp_path / "a", seed=0), make_tiny_llama(tmp_path / "b", seed=0)
    c = make_tiny_llama(tmp_path / "c", seed=1)
    assert all((a / f.name).read_bytes() == f.read_bytes() for f in b.iterdir())
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_tokenizer_vocabulary_is_exactly_the_configured_size(tiny: Path) -> None:
    assert tokenizer(tiny).get_vocab_size() == config(tiny)["vocab_size"]


def test_tokenizer_round_trips_english_and_code(tiny: Path) -> None:
    text = "Rename load_inventory to read_inventory.\n    return {'é': 1}  # ünïcode 🚀"
    tok = tokenizer(tiny)
    assert tok.decode(tok.encode(text).ids) == text


def test_special_tokens_are_single_ids_matching_the_config(tiny: Path) -> None:
    tok, cfg = tokenizer(tiny), config(tiny)
    encoded = tok.encode("<|im_start|>user\nhi<|im_end|>")
    assert encoded.tokens[0] == "<|im_start|>" and encoded.tokens[-1] == "<|im_end|>"
    assert cfg["eos_token_id"] == tok.token_to_id("<|im_end|>")
    assert cfg["bos_token_id"] == tok.token_to_id("<s>")
    assert cfg["pad_token_id"] == tok.token_to_id("<pad>")


def test_the_chat_template_renders_through_chat_template(tiny: Path) -> None:
    template = ChatTemplate.from_model_dir(tiny)
    assert not template.is_fallback
    assert template.eos_token == "<|im_end|>"
    assert template.render([{"role": "user", "content": "hi"}]) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_stop_conditions_find_im_end_as_the_eos_id(tiny: Path) -> None:
    stops = stop_conditions(tiny)
    assert tokenizer(tiny).token_to_id("<|im_end|>") in stops.token_ids
    assert "<|im_end|>" in stops.strings


def test_other_shapes_follow_the_arguments(tmp_path: Path) -> None:
    model = make_tiny_llama(tmp_path, vocab_size=300, hidden_size=32, heads=2, kv_heads=1, layers=1)
    tensors = weights(model)
    assert tensors["model.layers.0.self_attn.k_proj.weight"].shape == (16, 32)
    assert tokenizer(model).get_vocab_size() == 300
    assert "model.layers.1.mlp.up_proj.weight" not in tensors


def test_shapes_whose_heads_do_not_divide_are_refused() -> None:
    with pytest.raises(ValueError, match="must divide"):
        LlamaShape(512, 64, 128, 2, heads=4, kv_heads=3, max_positions=1024)


def test_the_1b_size_is_tinyllama_shaped() -> None:
    shape = LLAMA_SIZES["1b"]
    assert shape.head_dim == 64
    assert 1.0e9 < shape.parameter_count() < 1.2e9


def test_an_unknown_size_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: 1b"):
        make_llama(tmp_path / "model", size="7b")
    assert not (tmp_path / "model").exists()


# --- the streaming safetensors writer


def test_tensors_written_in_blocks_load_with_safetensors(tmp_path: Path) -> None:
    def blocks(name: str, shape: tuple[int, ...]) -> Any:
        values = np.arange(np.prod(shape), dtype=np.float16).reshape(shape)
        yield from np.array_split(values, 3)  # row blocks of uneven size

    path = write_safetensors(tmp_path / "w.safetensors", [("a", (5, 4)), ("b", (3,))], blocks)
    loaded = weights_at(path)
    assert loaded["a"].tolist() == np.arange(20, dtype=np.float16).reshape(5, 4).tolist()
    assert loaded["b"].tolist() == [0, 1, 2]


def test_the_header_is_padded_to_eight_bytes_and_says_pt(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "w.safetensors", [("x", (1,))], lambda n, s: [np.ones(s)])
    length = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + length])
    assert length % 8 == 0
    assert header["__metadata__"] == {"format": "pt"}
    assert header["x"] == {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}


def test_blocks_of_the_wrong_size_are_refused_and_leave_no_file(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    with pytest.raises(ValueError, match="needs 6 values; its blocks held 4"):
        write_safetensors(path, [("x", (2, 3))], lambda n, s: [np.zeros((2, 2))])
    assert not path.exists()

