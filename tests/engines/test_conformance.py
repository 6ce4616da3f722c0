"""One contract, every engine: what `turnout.engines.complete()` promises whatever runs the model."""

from __future__ import annotations

import asyncio
import time

import litellm
import pytest

from tests.engines.conftest import Answer, EngineUnderTest
from turnout.engines import complete, stream

PROMPT = "Pick a color and name one thing of that color, with a count."


async def test_plain_text_answer_with_usage_and_locality(engine: EngineUnderTest) -> None:
    result = await complete(engine.model, PROMPT, temperature=0, max_tokens=24)
    assert result.text.strip()
    assert result.model == engine.model
    assert result.provider == engine.name
    assert result.locality == "local"
    assert result.cost_usd == 0.0
    assert result.finish_reason in {"stop", "length"}
    assert result.usage.input_tokens > 0
    assert 0 < result.usage.output_tokens <= 24
    assert result.timings.total_s > 0
    assert result.timings.ttft_s is not None and result.timings.ttft_s <= result.timings.total_s


async def test_schema_call_returns_a_validated_object(engine: EngineUnderTest) -> None:
    result = await complete(engine.model, PROMPT, schema=Answer, temperature=0)
    assert isinstance(result.output, Answer)
    assert result.output.color in {"red", "green", "blue"}
    assert Answer.model_validate_json(result.text) == result.output


async def test_streaming_yields_the_same_answer_as_complete(engine: EngineUnderTest) -> None:
    whole = await complete(engine.model, PROMPT, temperature=0, max_tokens=24)
    answer = stream(engine.model, PROMPT, temperature=0, max_tokens=24)
    deltas = [delta async for delta in answer]
    assert len(deltas) > 1
    assert answer.result is not None
    assert "".join(deltas) == answer.result.text == whole.text
    assert answer.result.usage == whole.usage
    assert answer.result.timings.ttft_s is not None


async def test_streamed_schema_output_is_validated(engine: EngineUnderTest) -> None:
    answer = stream(engine.model, PROMPT, schema=Answer, temperature=0)
    async for _ in answer:
        pass
    assert answer.result is not None and isinstance(answer.result.output, Answer)


async def test_concurrent_calls_all_complete(engine: EngineUnderTest) -> None:
    results = await asyncio.gather(
        *(complete(engine.model, f"{PROMPT} ({i})", temperature=0, max_tokens=12) for i in range(4))
    )
    assert all(r.text and r.usage.output_tokens > 0 for r in results)


async def test_a_hung_call_times_out_as_litellm_timeout(engine: EngineUnderTest) -> None:
    with pytest.raises(litellm.Timeout):
        await complete(engine.slow_model or engine.model, PROMPT, timeout=0.3, **engine.slow)
    after = await complete(engine.model, PROMPT, temperature=0, max_tokens=8)
    assert after.text


async def test_a_cancelled_call_frees_the_engine(engine: EngineUnderTest) -> None:
    task = asyncio.create_task(complete(engine.slow_model or engine.model, PROMPT, **engine.slow))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await asyncio.wait_for(complete(engine.model, PROMPT, temperature=0, max_tokens=8), 30)
    assert after.text


async def test_a_cancelled_call_stops_the_engine_within_a_second(engine: EngineUnderTest) -> None:
    """The next call waits for the engine only while it notices the cancellation: under a
    second (a long schema-constrained generation is under way when it is cancelled)."""
    task = asyncio.create_task(complete(engine.slow_model or engine.model, PROMPT, **engine.slow))
    await asyncio.sleep(0.5)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await complete(engine.model, PROMPT, temperature=0, max_tokens=1)
    waited_s = time.monotonic() - cancelled_at - after.timings.total_s
    assert waited_s < 1.0


async def test_a_local_engine_puts_its_repetition_penalty_on_the_call(engine: EngineUnderTest) -> None:
    if engine.name == "scripted":
        pytest.skip("a script samples nothing")
    result = await complete(engine.model, PROMPT, temperature=0, max_tokens=8)
    assert result.engine_stats["repeat_penalty"] == 1.1 and result.engine_stats["repeat_last_n"] == 64
