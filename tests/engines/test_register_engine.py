"""Engines of one's own: registered in one call, served behind litellm like the built-ins,
with whatever they report beyond usage kept on the result and the span."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from turnout.engines import EngineChunk, EngineRequest, LocalEngine, complete, register_engine


class EchoEngine(LocalEngine):
    """Answers with the last message reversed, and says it ran batched."""

    provider: ClassVar[str] = "echo"

    async def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        text = str(request.messages[-1]["content"])[::-1]
        yield EngineChunk(text=text)
        yield EngineChunk(finish_reason="stop", input_tokens=1, output_tokens=1,
                          extras={"batched": True, "queue_wait_s": 0.25, "note": "echo"})


async def test_a_registered_engine_answers_as_a_local_model(spans: Any) -> None:
    register_engine("echo", EchoEngine)
    result = await complete("echo/any", "olleh")
    assert (result.text, result.locality, result.provider) == ("hello", "local", "echo")
    assert result.engine_stats == {"batched": True, "queue_wait_s": 0.25, "note": "echo"}
    [chat] = [s for s in spans.get_finished_spans() if s.name == "chat any"]
    assert chat.attributes["turnout.engine_stats.batched"] is True
    assert chat.attributes["turnout.engine_stats.queue_wait_s"] == 0.25


def test_a_provider_name_must_be_an_identifier() -> None:
    with pytest.raises(ValueError, match="must be an identifier"):
        register_engine("my-engine", EchoEngine)
