"""`complete()` and `stream()` read every answer through one exchange: on every engine, local or
remote, both give the same `Completion` (usage, cost, engine stats, locality, egress record)
and the same recording."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.engines.conftest import Answer, EngineUnderTest
from tests.privacy.fake_provider import FakeProvider, fake_provider_fixture  # noqa: F401
from turnout.config import load_settings, use_settings
from turnout.engines import Completion, EngineChunk, EngineRequest, LocalEngine, complete, register_engine, stream
from turnout.telemetry._calls import CALLS_DIR, read_calls

PROMPT = "Pick a color and name one thing of that color, with a count."
ANSWER = '{"color": "blue", "detail": {"name": "sky", "count": 1}}'
SAME = ("text", "output", "model", "requested", "role", "provider", "locality", "finish_reason", "usage",
        "cost_usd", "attempts", "engine_stats", "egress")


class BatchedEngine(LocalEngine):
    """Answers with the Answer JSON in three pieces and reports how it ran, as a GPU engine does."""

    provider: ClassVar[str] = "batched"

    async def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        for piece in (ANSWER[:10], ANSWER[10:30], ANSWER[30:]):
            yield EngineChunk(text=piece)
        yield EngineChunk(finish_reason="stop", input_tokens=12, output_tokens=9,
                          extras={"batched": True, "queue_wait_s": 0.0, "cached_tokens": 4})


async def _both(model: str, **kwargs: Any) -> tuple[Completion[Any], Completion[Any]]:
    whole = await complete(model, PROMPT, schema=Answer, temperature=0, **kwargs)
    answer = stream(model, PROMPT, schema=Answer, temperature=0, **kwargs)
    async for _ in answer:
        pass
    assert answer.result is not None
    return whole, answer.result


def _assert_same(whole: Completion[Any], streamed: Completion[Any]) -> None:
    for field in SAME:
        assert getattr(streamed, field) == getattr(whole, field), field
    recordings = sorted((Path(".turnout/traces") / CALLS_DIR).glob("*.jsonl"))  # one per trace: one per call here
    calls = [call.model_dump(exclude={"trace_id", "span_id", "duration_s"}) for path in recordings for call in read_calls(path)]
    assert len(calls) == 2 and calls[0] == calls[1]


async def test_every_engine_gives_the_same_completion_either_way(engine: EngineUnderTest, spans: Any) -> None:
    whole, streamed = await _both(engine.model)
    _assert_same(whole, streamed)


async def test_what_an_engine_reports_beyond_usage_comes_through_a_stream_too(spans: Any) -> None:
    register_engine("batched", BatchedEngine)
    whole, streamed = await _both("batched/any")
    assert streamed.engine_stats == {"batched": True, "queue_wait_s": 0.0, "cached_tokens": 4}
    _assert_same(whole, streamed)
    (chat, _) = [s for s in spans.get_finished_spans() if s.name == "chat any"]
    assert chat.attributes["turnout.engine_stats.batched"] is True


@pytest.fixture
def cloud(fake_provider: FakeProvider) -> Iterator[FakeProvider]:
    fake_provider.answer = lambda request: ANSWER
    use_settings(load_settings(roles={"planner": {"model": "openai/gpt-4o-mini", "api_base": fake_provider.base_url,
                                                  "locality": "remote"}}, remote_retries=0))
    yield fake_provider


async def test_a_remote_model_streamed_reports_its_cost(cloud: FakeProvider, spans: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    whole, streamed = await _both("planner")
    assert whole.locality == "remote" and whole.cost_usd is not None and whole.cost_usd > 0
    _assert_same(whole, streamed)
    assert [bool(r.get("stream")) for r in cloud.requests] == [False, True]  # complete() asks for the whole answer


async def test_a_remote_model_litellm_cannot_price_has_no_cost_not_a_free_one(
    fake_provider: FakeProvider, spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fake_provider.answer = lambda request: ANSWER
    use_settings(load_settings(roles={"planner": {"model": "openai/our-own-finetune", "api_base": fake_provider.base_url,
                                                  "locality": "remote"}}, remote_retries=0))
    whole, streamed = await _both("planner")
    assert whole.locality == "remote" and whole.cost_usd is None and streamed.cost_usd is None


def test_complete_and_stream_take_the_one_signature_of_a_model_call() -> None:
    import inspect

    from turnout.engines._door import call_arguments

    parameters = inspect.signature(call_arguments).parameters
    assert inspect.signature(complete).parameters == inspect.signature(stream).parameters == parameters
    assert {"schema", "json_schema", "tools", "tool_choice", "temperature", "max_tokens", "settings", "params"} <= set(parameters)
    assert str(inspect.signature(complete).return_annotation) == "Completion[OutputT]"
    assert (complete.__name__, stream.__name__) == ("complete", "stream")
