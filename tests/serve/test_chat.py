"""Chat completions through the real OpenAI SDK: whole, streamed, as JSON, with usage."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.serve.conftest import (
    CITY_JSON,
    CITY_SCHEMA,
    Probe,
    client,
    health,
    served,
    user,
)
from turnout.engines import scripted
from turnout.engines.schema_budget import fit_to_budget

ANSWER = "The capital of France is Paris."


@pytest.fixture
def capital() -> Any:
    with scripted.scripted("capital", lambda messages: ANSWER) as script:
        yield script


def test_a_completion_answers_with_text_usage_and_finish_reason(capital: Any) -> None:
    with served(["scripted/capital"]) as url:
        response = client(url).chat.completions.create(
            model="scripted/capital",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        )
    [choice] = response.choices
    assert (choice.message.role, choice.message.content, choice.finish_reason) == ("assistant", ANSWER, "stop")
    assert response.model == "scripted/capital" and response.id.startswith("chatcmpl-")
    assert response.object == "chat.completion"
    # the scripted engine counts words: 2 + 3 in, 6 out
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (5, 6, 11)
    assert capital.calls == [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]]


def test_max_tokens_cuts_the_answer_and_says_length(capital: Any) -> None:
    with served(["scripted/capital"]) as url:
        response = client(url).chat.completions.create(model="scripted/capital", messages=user("hi"), max_tokens=3)
    assert response.choices[0].message.content == "The capital of"
    assert response.choices[0].finish_reason == "length"
    assert response.usage is not None and response.usage.completion_tokens == 3


def test_max_completion_tokens_is_honoured_too(probe: Probe) -> None:
    with served(["probe/json"]) as url:
        client(url).chat.completions.create(model="probe/json", messages=user("hi"), max_completion_tokens=5)
    assert probe.requests[0].max_tokens == 5


def test_a_stream_sends_role_deltas_finish_and_usage_chunks(capital: Any) -> None:
    with served(["scripted/capital"]) as url:
        chunks = list(client(url).chat.completions.create(
            model="scripted/capital", messages=user("Capital of France?"), stream=True,
            stream_options={"include_usage": True},
        ))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 6  # one per word
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (3, 6, 9)
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)


def test_a_stream_without_include_usage_carries_no_usage(capital: Any) -> None:
    with served(["scripted/capital"]) as url:
        chunks = list(client(url).chat.completions.create(model="scripted/capital", messages=user("hi"), stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_raw_event_stream_ends_with_done(capital: Any) -> None:
    import httpx

    with served(["scripted/capital"]) as url:
        body = {"model": "scripted/capital", "messages": user("hi"), "stream": True}
        with httpx.stream("POST", f"{url}/chat/completions", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    assert json.loads(events[-2].removeprefix("data: "))["choices"][0]["finish_reason"] == "stop"


def test_a_json_schema_reaches_the_engine_and_the_answer_validates(probe: Probe) -> None:
    with served(["probe/json"]) as url:
        response = client(url).chat.completions.create(
            model="probe/json", messages=user("Largest city of France?"),
            response_format={"type": "json_schema", "json_schema": {"name": "City", "schema": CITY_SCHEMA, "strict": True}},
        )
    content = response.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), CITY_SCHEMA)
    # The engine decodes under the client's schema, its free text bounded to close within the
    # answer budget (the server's cap, 2,048 tokens, when the client sets none).
    assert probe.requests[0].max_tokens == 2048
    assert probe.requests[0].json_schema == fit_to_budget(CITY_SCHEMA, 2048, 6).schema


def test_a_streamed_json_schema_reaches_the_engine(probe: Probe) -> None:
    with served(["probe/json"]) as url:
        chunks = client(url).chat.completions.create(
            model="probe/json", messages=user("city?"), stream=True,
            response_format={"type": "json_schema", "json_schema": {"name": "City", "schema": CITY_SCHEMA}},
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == json.loads(CITY_JSON)
    assert probe.requests[0].json_schema == fit_to_budget(CITY_SCHEMA, 2048, 6).schema


def test_json_object_asks_the_engine_for_any_object(probe: Probe) -> None:
    with served(["probe/json"]) as url:
        client(url).chat.completions.create(
            model="probe/json", messages=user("json please"), response_format={"type": "json_object"}
        )
    assert probe.requests[0].json_schema == {"type": "object"}


def test_plain_text_format_asks_for_no_schema(probe: Probe) -> None:
    with served(["probe/json"]) as url:
        client(url).chat.completions.create(model="probe/json", messages=user("x"), response_format={"type": "text"})
    assert probe.requests[0].json_schema is None


def test_sampling_arguments_reach_the_engine(probe: Probe) -> None:
    with served(["probe/json"], max_tokens=64) as url:
        client(url).chat.completions.create(
            model="probe/json", messages=[{"role": "developer", "content": "Be terse."}, *user("x")],
            temperature=0.3, top_p=0.9, stop=["\n\n", "END"], seed=42,
        )
        client(url).chat.completions.create(model="probe/json", messages=user("y"), stop="STOP")
    first, second = probe.requests
    assert (first.temperature, first.top_p, first.stop, first.seed) == (0.3, 0.9, ["\n\n", "END"], 42)
    assert first.max_tokens == 64  # none asked: the server's cap
    assert first.messages[0] == {"role": "system", "content": "Be terse."}  # developer is a system prompt
    assert second.stop == ["STOP"]


def test_text_content_parts_are_joined(capital: Any) -> None:
    with served(["scripted/capital"]) as url:
        client(url).chat.completions.create(
            model="scripted/capital",
            messages=[{"role": "user", "content": [{"type": "text", "text": "Capital "}, {"type": "text", "text": "of France?"}]}],
        )
    assert capital.calls[0] == [{"role": "user", "content": "Capital of France?"}]


def test_models_lists_exactly_what_is_served(capital: Any, probe: Probe) -> None:
    with served(["scripted/capital", "probe/json"]) as url:
        openai_client = client(url)
        listed = openai_client.models.list()
        one = openai_client.models.retrieve("probe/json")
    assert [m.id for m in listed.data] == ["scripted/capital", "probe/json"]
    assert all(m.object == "model" and m.owned_by == "turnout" for m in listed.data)
    assert one.id == "probe/json"


def test_health_reports_load_and_what_was_served(capital: Any) -> None:
    with served(["scripted/capital"], max_concurrency=2, max_queue=5) as url:
        before = health(url)
        client(url).chat.completions.create(model="scripted/capital", messages=user("hi"))
        after = health(url)
    assert before["status"] == "ok"
    assert before["load"] == {"active": 0, "queued": 0, "max_concurrency": 2, "max_queue": 5, "turned_away": 0}
    assert (before["served"]["calls"], after["served"]["calls"]) == (0, 1)
    assert after["served"]["tokens"] == 1 + 6


def test_each_request_is_a_traced_chat_call_under_the_callers_trace(capital: Any, spans: Any) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with served(["scripted/capital"]) as url:
        client(url).chat.completions.create(
            model="scripted/capital", messages=user("hi"),
            extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
    [chat] = [s for s in spans.get_finished_spans() if s.name == "chat capital"]
    assert f"{chat.context.trace_id:032x}" == trace_id
    assert chat.parent is not None and f"{chat.parent.span_id:016x}" == parent_id
    assert chat.attributes["gen_ai.usage.output_tokens"] == 6
