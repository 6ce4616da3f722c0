"""Every failure in OpenAI's error shape, so clients raise their usual exceptions with a
message that says what to fix; never FastAPI's 422, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.serve.conftest import Probe, client, served, user
from turnout.engines import scripted

URL_FIXTURE_MODELS = ["scripted/echo"]


@pytest.fixture
def url() -> Iterator[str]:
    with scripted.scripted("echo", lambda messages: "ok"), served(URL_FIXTURE_MODELS, max_tokens=512) as base:
        yield base


@pytest.mark.parametrize(
    ("arguments", "param", "message"),
    [
        ({"messages": []}, "messages", "at least one message is required"),
        ({"messages": [{"role": "bot", "content": "hi"}]}, "messages[0].role", "Input should be 'system', 'developer', 'user' or 'assistant'"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "Missing required parameter"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
         "messages[0].content", "only text content parts are supported"),
        ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "t"}]}, "messages[0].role", "Input should be"),
        ({"response_format": {"type": "xml"}}, "response_format.type", "Input should be 'text', 'json_object' or 'json_schema'"),
        ({"response_format": {"type": "json_schema"}}, "response_format", "json_schema is given with"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}},
         "response_format.json_schema.schema", "not a valid JSON schema"),
        ({"n": 2}, "n", "returns one choice per request"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tools is not supported"),
        ({"temperature": 3}, "temperature", "less than or equal to 2"),
        ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"max_tokens": 513}, "max_tokens", "over this server's limit of 512 tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4 stop sequences"),
        ({"extra_body": {"top_k": 5}}, "top_k", "Unrecognized request argument supplied: top_k"),
    ],
)
def test_a_bad_request_is_a_400_that_names_the_parameter(url: str, arguments: dict[str, Any], param: str, message: str) -> None:
    call: dict[str, Any] = {"model": "scripted/echo", "messages": user("hi"), **arguments}
    with pytest.raises(openai.BadRequestError) as error:
        client(url).chat.completions.create(**call)
    assert error.value.status_code == 400
    assert message in error.value.message
    assert error.value.body["param"] == param  # type: ignore[index]
    assert error.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_neutral_values_of_unsupported_arguments_are_accepted(url: str) -> None:
    response = client(url).chat.completions.create(
        model="scripted/echo", messages=user("hi"), n=1, presence_penalty=0, frequency_penalty=0.0,
        tools=[], logprobs=False, user="someone", metadata={"k": "v"}, store=False, parallel_tool_calls=False,
    )
    assert response.choices[0].message.content == "ok"


def test_an_echoed_assistant_message_is_accepted(url: str) -> None:
    previous = client(url).chat.completions.create(model="scripted/echo", messages=user("hi"))
    echoed = previous.choices[0].message.model_dump()  # refusal, tool_calls, … all None
    response = client(url).chat.completions.create(model="scripted/echo", messages=[*user("hi"), echoed, *user("again")])
    assert response.choices[0].message.content == "ok"


def test_an_unknown_model_is_404_model_not_found(url: str) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        client(url).chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=user("hi"))
    assert error.value.code == "model_not_found"
    assert "`anthropic/claude-sonnet-4-5` does not exist on this server; it serves scripted/echo" in error.value.message
    with pytest.raises(openai.NotFoundError):
        client(url).models.retrieve("llamacpp/other")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b'{"model": "scripted/echo", "messages": [', "invalid_json", "not valid JSON"),
        (b"[1, 2]", "invalid_json", "must be a JSON object"),
        (b"\xff\xfe", "invalid_json", "not valid JSON"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "missing_required_parameter", "Missing required parameter: 'model'."),
        (b'{"model": "scripted/echo", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid_json", "nests JSON too deeply"),
        (b'{"model": "scripted/echo", "messages": [{"role": "user", "content": "\\ud800"}]}', "invalid_json", "lone UTF-16 surrogate"),
    ],
)
def test_a_malformed_body_is_a_400_in_openai_shape(url: str, body: bytes, code: str, message: str) -> None:
    response = httpx.post(f"{url}/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and message in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def _deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "param", "message"),
    [
        ({"type": "array", "items": {"type": "integer"}, "minItems": 3000}, None, "minItems 3,000"),
        ({"type": "string", "pattern": "^(?=a)a+$"}, None, "(?…) groups"),
        ({"not": {"type": "string"}}, None, "uses 'not'"),
        ({"$ref": "#/$defs/n", "$defs": {"n": {"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}}}}, None, "recursive"),
        ({"$ref": "https://example.com/schema.json"}, "response_format.json_schema.schema", "nothing is fetched"),
        ({"enum": list(range(60_000))}, "response_format.json_schema.schema", "enum of 60,000 values"),
        ({"type": "object", "properties": {f"p{i}": {} for i in range(20_000)}}, "response_format.json_schema.schema",
         "20,000 properties"),
        (_deep(150), "response_format.json_schema.schema", "nests deeper than 32 levels"),
    ],
)
def test_a_schema_past_turnouts_limits_is_a_400_naming_the_limit(
    url: str, schema: dict[str, Any], param: str | None, message: str
) -> None:
    """Each of these once answered 500 with a traceback, or (maxItems, long patterns) killed
    the server; now each is the caller's mistake, said plainly."""
    response_format: Any = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with pytest.raises(openai.BadRequestError) as error:
        client(url).chat.completions.create(model="scripted/echo", messages=user("hi"), response_format=response_format)
    assert message in error.value.message
    assert error.value.body["param"] == param  # type: ignore[index]
    assert client(url).chat.completions.create(model="scripted/echo", messages=user("hi")).choices[0].message.content == "ok"


def test_unknown_urls_and_methods_answer_in_openai_shape(url: str) -> None:
    missing = httpx.get(f"{url}/embeddings")
    wrong_method = httpx.get(f"{url}/chat/completions")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "unknown_url")
    assert "Unknown request URL: GET /v1/embeddings." == missing.json()["error"]["message"]
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")


def test_a_crashing_engine_is_a_500_without_a_traceback(probe: Probe) -> None:
    with served(["probe/crash"]) as url:
        with pytest.raises(openai.InternalServerError) as error:
            client(url).chat.completions.create(model="probe/crash", messages=user("hi"))
        response = httpx.post(f"{url}/chat/completions", json={"model": "probe/crash", "messages": user("hi")})
    assert error.value.status_code == 500
    assert "probe/crash failed" in error.value.message and "server log" in error.value.message
    assert "Traceback" not in response.text and "/secret/internal" not in response.text
    assert response.json()["error"]["type"] == "server_error"


def test_a_stream_that_fails_before_its_first_word_is_a_500(probe: Probe) -> None:
    with served(["probe/crash"]) as url, pytest.raises(openai.InternalServerError):
        client(url).chat.completions.create(model="probe/crash", messages=user("hi"), stream=True)


def test_a_model_failure_says_what_went_wrong() -> None:
    with scripted.scripted("short", ["only one"]), served(["scripted/short"]) as url:
        client(url).chat.completions.create(model="scripted/short", messages=user("1"))
        with pytest.raises(openai.InternalServerError) as error:
            client(url).chat.completions.create(model="scripted/short", messages=user("2"))
    assert "script 'short' is exhausted" in error.value.message
    assert error.value.code == "model_error"
