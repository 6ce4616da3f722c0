"""The GPU engines (exllamav2, exllamav3): their CPU side everywhere, their GPU side (marked
`gpu`) where CUDA is. Every test runs against both: they share everything but the backend.

The GPU tests build a tiny random-weight Llama at test time (no download) and run it
through `turnout.engines.complete()`, the same door as every other engine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from turnout.cli import app
from turnout.config import load_settings, use_settings
from turnout.engines import complete, stream
from turnout.engines._base import EngineRequest
from turnout.engines._gpu_engine import unavailable_reason
from turnout.errors import ConfigError, EngineUnavailable, ModelNotFound


@pytest.fixture
def tiny_model(tiny_gpu_model: Path) -> Path:
    return tiny_gpu_model


@pytest.fixture(params=["exllamav2", "exllamav3"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_without_cuda_the_engine_says_why_and_what_else_can_take_the_role(engine: str, tiny_model: Path) -> None:
    if unavailable_reason(engine) is None:
        pytest.skip(f"this machine can run {engine}")
    with pytest.raises(EngineUnavailable, match=r"cannot run here: .*llamacpp/<gguf>.*remote model"):
        await complete(f"{engine}/{tiny_model}", "hello")


async def test_a_model_directory_without_a_tokenizer_is_named(engine: str, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFound, match=r"has no tokenizer.json"):
        await complete(f"{engine}/{tmp_path}", "hello")


async def test_an_alias_from_config_names_a_model_directory(engine: str, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"TURNOUT_{engine.upper()}__MODELS", f'{{"tiny": "{tiny_model}"}}')
    use_settings(load_settings())
    from turnout.engines._registry import get_engine

    assert get_engine(engine).resolve_model_dir("tiny") == tiny_model  # type: ignore[attr-defined]


async def _drain(engine: str, model: str) -> None:
    """Call the engine's `stream()` directly, without the door's `check()` before it."""
    from turnout.engines._registry import get_engine

    request = EngineRequest(model=model, messages=[{"role": "user", "content": "hello"}])
    async for _ in get_engine(engine).stream(request):
        pass


async def test_stream_called_directly_names_a_model_directory_without_a_tokenizer(engine: str, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFound, match=r"has no tokenizer.json"):
        await _drain(engine, str(tmp_path))


async def test_stream_called_directly_says_why_the_engine_cannot_run(engine: str, tiny_model: Path) -> None:
    if unavailable_reason(engine) is None:
        pytest.skip(f"this machine can run {engine}")
    with pytest.raises(EngineUnavailable, match=r"cannot run here: .*llamacpp/<gguf>"):
        await _drain(engine, str(tiny_model))


def test_cache_sizes_must_be_whole_pages(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"TURNOUT_{engine.upper()}__CACHE_TOKENS", "1000")
    with pytest.raises(ConfigError, match=f"{engine}.cache_tokens: .*multiple of 256"):
        load_settings()


def test_turnout_engines_reports_why_a_gpu_role_is_unavailable(engine: str, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if unavailable_reason(engine) is None:
        pytest.skip(f"this machine can run {engine}")
    monkeypatch.setenv("TURNOUT_ROLES__CODER", f"{engine}/{tiny_model}")
    result = CliRunner().invoke(app, ["engines"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    coder = next(line for line in result.stdout.splitlines() if "coder" in line)
    assert "local" in coder and "cannot run here" in coder


class Pick(BaseModel):
    color: Literal["red", "green", "blue"]
    count: int


@pytest.mark.gpu
async def test_gpu_plain_generation_and_usage(engine: str, tiny_model: Path) -> None:
    result = await complete(f"{engine}/{tiny_model}", "Say something.", max_tokens=16, temperature=0)
    assert result.locality == "local" and result.provider == engine
    assert result.usage.input_tokens > 0 and 0 < result.usage.output_tokens <= 16


@pytest.mark.gpu
async def test_gpu_streaming_matches_complete(engine: str, tiny_model: Path) -> None:
    whole = await complete(f"{engine}/{tiny_model}", "Count.", max_tokens=12, temperature=0)
    answer = stream(f"{engine}/{tiny_model}", "Count.", max_tokens=12, temperature=0)
    assert "".join([d async for d in answer]) == whole.text


@pytest.mark.gpu
async def test_gpu_sixteen_concurrent_calls_complete(engine: str, tiny_model: Path) -> None:
    results = await asyncio.gather(
        *(complete(f"{engine}/{tiny_model}", f"Job {i}.", max_tokens=8, temperature=0) for i in range(16))
    )
    assert all(r.usage.output_tokens > 0 for r in results)


@pytest.mark.gpu
async def test_gpu_schema_constrained_output_validates(engine: str, tiny_model: Path) -> None:
    result = await complete(f"{engine}/{tiny_model}", "Pick one.", schema=Pick, max_tokens=64, temperature=1.0)
    assert isinstance(result.output, Pick)


@pytest.mark.gpu
async def test_gpu_a_shared_prompt_prefix_is_reused_from_the_cache(engine: str, tiny_model: Path) -> None:
    system = {"role": "system", "content": "You are a careful assistant. " * 40}
    first = await complete(f"{engine}/{tiny_model}", [system, {"role": "user", "content": "One."}], max_tokens=4)
    second = await complete(f"{engine}/{tiny_model}", [system, {"role": "user", "content": "Two."}], max_tokens=4)
    assert first.engine_stats.get("cached_tokens", 0) == 0
    assert second.engine_stats["cached_tokens"] >= 256  # at least one whole page of the shared prefix
