"""Prompts and completions reach spans only when asked for, and never with secrets in them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from turnout.config import load_settings, use_settings
from turnout.engines import complete, scripted, stream
from turnout.telemetry import CaptureMode, redact
from turnout.telemetry._content import CAPTURE_VARIABLE, parse_capture_mode

ANTHROPIC_KEY = "sk-ant-api03-" + "x" * 40
PROMPT = f"Use key {ANTHROPIC_KEY} to call the API"


def _chat(spans: Any) -> Any:
    [chat] = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    return chat


async def test_content_is_absent_by_default(spans: Any) -> None:
    with scripted.scripted("s", ["answer"]):
        await complete("scripted/s", PROMPT)
    chat = _chat(spans)
    assert not any(k in chat.attributes for k in ("gen_ai.input.messages", "gen_ai.output.messages"))
    assert not chat.events


@pytest.mark.parametrize("value", ["SPAN_ONLY", "true", "span_and_event"])
async def test_span_capture_records_redacted_messages(
    value: str, spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_VARIABLE, value)
    with scripted.scripted("s", ["done, token Bearer abcdefghijklmnop used"]):
        await complete("scripted/s", PROMPT)
    chat = _chat(spans)
    assert json.loads(chat.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Use key [REDACTED] to call the API"}]}
    ]
    assert json.loads(chat.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "done, token [REDACTED] used"}],
            "finish_reason": "stop",
        }
    ]
    assert ANTHROPIC_KEY not in str(chat.attributes)


async def test_event_capture_puts_messages_on_an_event_only(spans: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE_VARIABLE, "EVENT_ONLY")
    with scripted.scripted("s", ["fine"]):
        await complete("scripted/s", "hello")
    chat = _chat(spans)
    assert "gen_ai.input.messages" not in chat.attributes
    names = [e.name for e in chat.events]
    assert names == ["gen_ai.client.inference.operation.details"] * 2
    assert "hello" in chat.events[0].attributes["gen_ai.input.messages"]
    assert "fine" in chat.events[1].attributes["gen_ai.output.messages"]


async def test_config_wins_over_the_environment(spans: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE_VARIABLE, "SPAN_ONLY")
    monkeypatch.setenv("TURNOUT_CAPTURE_CONTENT", "NO_CONTENT")
    use_settings(load_settings())
    with scripted.scripted("s", ["fine"]):
        await complete("scripted/s", "hello")
    assert "gen_ai.input.messages" not in _chat(spans).attributes


async def test_streamed_calls_get_a_span_too(spans: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE_VARIABLE, "SPAN_ONLY")
    with scripted.scripted("s", ["one two three"]):
        answer = stream("scripted/s", "count")
        assert [d async for d in answer] == ["one ", "two ", "three"]
    chat = _chat(spans)
    assert chat.attributes["gen_ai.request.stream"] is True
    assert chat.attributes["gen_ai.usage.output_tokens"] == 3
    assert "one two three" in chat.attributes["gen_ai.output.messages"]


def test_secrets_of_every_known_shape_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "hunter2-but-longer")
    samples = [
        "sk-proj-" + "a" * 40,
        "sk-" + "b" * 48,
        "AIza" + "c" * 35,
        "AKIA" + "D" * 16,
        "ghp_" + "e" * 36,
        "hf_" + "f" * 34,
        "xoxb-1234567890-abcdef",
        "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "hunter2-but-longer",
    ]
    for secret in samples:
        assert redact(f"before {secret} after") == "before [REDACTED] after", secret


def test_ordinary_text_is_left_alone() -> None:
    text = "def risky_task(): return 'sk' + 'ip'  # see https://example.com/docs?page=2"
    assert redact(text) == text


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, CaptureMode.NO_CONTENT),
        ("false", CaptureMode.NO_CONTENT),
        ("NO_CONTENT", CaptureMode.NO_CONTENT),
        ("true", CaptureMode.SPAN_ONLY),
        ("SPAN_ONLY", CaptureMode.SPAN_ONLY),
        ("event_only", CaptureMode.EVENT_ONLY),
        ("SPAN_AND_EVENT", CaptureMode.SPAN_AND_EVENT),
        ("garbage", CaptureMode.NO_CONTENT),
    ],
)
def test_capture_values(value: str | None, mode: CaptureMode) -> None:
    assert parse_capture_mode(value) is mode
