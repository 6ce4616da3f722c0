"""The scripted engine pins model behaviour; these tests pin the scripted engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from turnout.engines import complete, scripted
from turnout.errors import ConfigError, ModelNotFound, SchemaError, ScriptExhausted


class Route(BaseModel):
    agent: str
    confidence: float


async def test_responses_are_given_in_order_and_requests_recorded() -> None:
    with scripted.scripted("s", ["first answer", Route(agent="coder", confidence=0.9)]) as script:
        first = await complete("scripted/s", "one")
        second = await complete("scripted/s", [{"role": "user", "content": "two"}])
    assert first.text == "first answer"
    assert json.loads(second.text) == {"agent": "coder", "confidence": 0.9}
    assert [call[-1]["content"] for call in script.calls] == ["one", "two"]
    assert script.remaining == 0


async def test_an_exhausted_script_says_so() -> None:
    with scripted.scripted("short", ["only one"]):
        await complete("scripted/short", "a")
        with pytest.raises(ScriptExhausted, match="'short' is exhausted: it holds 1 response"):
            await complete("scripted/short", "b")


async def test_a_callable_sees_the_messages() -> None:
    with scripted.scripted("echo", lambda messages: messages[-1]["content"].upper()):
        result = await complete("scripted/echo", "shout this")
    assert result.text == "SHOUT THIS"


async def test_an_async_callable_is_awaited() -> None:
    async def answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"agent": "retriever", "confidence": 0.5}

    with scripted.scripted("async", answer):
        result = await complete("scripted/async", "route", schema=Route)
    assert result.output == Route(agent="retriever", confidence=0.5)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
async def test_a_recorded_file_is_replayed(tmp_path: Path, suffix: str) -> None:
    items = ["plain text", {"agent": "coder", "confidence": 1.0}]
    path = tmp_path / f"recording{suffix}"
    path.write_text(json.dumps(items) if suffix == ".json" else "\n".join(map(json.dumps, items)))
    assert (await complete(f"scripted/{path}", "x")).text == "plain text"
    assert (await complete(f"scripted/{path}", "y", schema=Route)).output == Route(agent="coder", confidence=1.0)
    scripted.unregister(str(path))


def test_a_corrupt_recording_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('"fine"\n{not json\n')
    with pytest.raises(ConfigError, match="not valid JSON"):
        scripted.Script.from_file(path)


async def test_an_unknown_script_names_the_registered_ones() -> None:
    with scripted.scripted("known", ["x"]):
        with pytest.raises(ModelNotFound, match=r"no script named 'unknown' \(registered: known\)"):
            await complete("scripted/unknown", "hi")


def test_a_bare_string_is_not_a_script() -> None:
    with pytest.raises(ConfigError, match="ambiguous"):
        scripted.Script("just one string")  # type: ignore[arg-type]


async def test_usage_counts_words() -> None:
    with scripted.scripted("words", ["three little words"]):
        result = await complete("scripted/words", "count these four words")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (4, 3)


async def test_max_tokens_truncates_with_finish_reason_length() -> None:
    with scripted.scripted("long", ["one two three four five"]):
        result = await complete("scripted/long", "x", max_tokens=2)
    assert (result.text, result.finish_reason, result.usage.output_tokens) == ("one two", "length", 2)


async def test_invalid_output_is_reasked_once_with_the_error() -> None:
    responses = ['{"agent": "coder"}', '{"agent": "coder", "confidence": 0.7}']
    with scripted.scripted("fixes", responses) as script:
        result = await complete("scripted/fixes", "route this", schema=Route)
    assert result.output == Route(agent="coder", confidence=0.7)
    assert result.attempts == 2
    reask = script.calls[1]
    assert reask[-2] == {"role": "assistant", "content": '{"agent": "coder"}'}
    assert "confidence: Field required" in reask[-1]["content"]
    assert result.usage.input_tokens == sum(len(m["content"].split()) for c in script.calls for m in c)


async def test_output_that_never_validates_raises_schema_error_with_raw_text() -> None:
    with scripted.scripted("stubborn", ["not json", "still not json"]):
        with pytest.raises(SchemaError, match="answered 2 time") as caught:
            await complete("scripted/stubborn", "route this", schema=Route)
    assert caught.value.raw_text == "still not json"
    assert caught.value.model == "scripted/stubborn"


async def test_a_call_that_fails_its_schema_leaves_its_usage_and_finish_reason_on_the_span(spans: Any) -> None:
    cut = scripted.Reply(text='{"agent": "cod', finish_reason="length", output_tokens=7)
    with scripted.scripted("cut", [cut, cut]):
        with pytest.raises(SchemaError) as caught:
            await complete("scripted/cut", "route this", schema=Route)
    assert (caught.value.output_tokens, caught.value.finish_reason) == (14, "length")
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert span.attributes["gen_ai.usage.output_tokens"] == 14
    assert list(span.attributes["gen_ai.response.finish_reasons"]) == ["length"]


async def test_fenced_json_is_accepted() -> None:
    with scripted.scripted("fenced", ['```json\n{"agent": "coder", "confidence": 1}\n```']):
        result = await complete("scripted/fenced", "x", schema=Route)
    assert result.output == Route(agent="coder", confidence=1.0)


def test_litellm_called_directly_reaches_turnout_engines_sync_and_streaming() -> None:
    from turnout.engines._provider import litellm_module

    litellm = litellm_module()
    with scripted.scripted("direct", ["plain answer here", "streamed answer here"]):
        response = litellm.completion(model="scripted/direct", messages=[{"role": "user", "content": "a"}])
        chunks = litellm.completion(
            model="scripted/direct", messages=[{"role": "user", "content": "b"}], stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert response.choices[0].message.content == "plain answer here"
    assert response.usage.completion_tokens == 3
    assert streamed == "streamed answer here"
