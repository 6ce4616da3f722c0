"""The use it is built for: a turnout role on another machine pointed at a served model.

litellm's `hosted_vllm` provider speaks OpenAI's API to any base URL and reads its key from
HOSTED_VLLM_API_KEY; turnout's door on the calling side sends the output schema as
`response_format`, which the server hands to its engine as the decoding constraint.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel

from tests.serve.conftest import served
from turnout.config import load_settings, use_settings
from turnout.engines import complete, scripted, stream

KEY = "shared-between-the-two-machines"


class Route(BaseModel):
    agent: Literal["retriever", "coder", "verifier"]
    confidence: float


async def test_a_role_calls_the_served_model_with_a_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def route(messages: list[dict[str, Any]]) -> str:
        seen.append(messages)
        return '{"agent": "coder", "confidence": 0.9}'

    with scripted.scripted("route", route), served(["scripted/route"], api_key=KEY) as url:
        monkeypatch.setenv("HOSTED_VLLM_API_KEY", KEY)
        use_settings(load_settings(roles={"router": {"model": "hosted_vllm/scripted/route", "api_base": url}}))
        whole = await complete("router", "Who should edit inventory.py?", schema=Route)
        streamed = stream("router", "And who checks it?", schema=Route)
        _ = [delta async for delta in streamed]

    assert whole.output == Route(agent="coder", confidence=0.9)
    assert whole.model == "hosted_vllm/scripted/route" and whole.locality == "local"  # loopback
    assert (whole.usage.input_tokens, whole.usage.output_tokens) == (4, 4)
    assert streamed.result is not None and streamed.result.output == whole.output
    assert [m[-1]["content"] for m in seen] == ["Who should edit inventory.py?", "And who checks it?"]
