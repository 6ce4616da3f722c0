"""Whether prompts and completions are recorded on spans, and in what shape.

Off by default. `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` accepts what the
OpenTelemetry GenAI instrumentations accept — SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT,
NO_CONTENT — and true/false (true = SPAN_ONLY); config `capture_content` wins over it.
"""

from __future__ import annotations

import json
import os
from enum import Enum
from typing import Any

from turnout.telemetry._redact import redact

CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


class CaptureMode(str, Enum):
    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"

    @property
    def on_span(self) -> bool:
        return self in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def as_event(self) -> bool:
        return self in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)


def parse_capture_mode(value: str | None) -> CaptureMode:
    if value is None:
        return CaptureMode.NO_CONTENT
    normalized = value.strip().upper()
    if normalized in ("TRUE", "1", "YES"):
        return CaptureMode.SPAN_ONLY
    if normalized in ("FALSE", "0", "NO", ""):
        return CaptureMode.NO_CONTENT
    try:
        return CaptureMode(normalized)
    except ValueError:
        return CaptureMode.NO_CONTENT


def capture_mode(configured: str | None = None) -> CaptureMode:
    """The mode in force: config first, then the environment variable, else NO_CONTENT."""
    return parse_capture_mode(configured if configured is not None else os.environ.get(CAPTURE_VARIABLE))


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": redact(content)}]
    parts = []
    for part in content or []:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append({"type": "text", "content": redact(str(part.get("text", "")))})
        elif isinstance(part, dict):
            parts.append({"type": str(part.get("type", "unknown"))})
    return parts


def input_messages(messages: list[dict[str, Any]]) -> str:
    """`gen_ai.input.messages` as the conventions shape it (role + parts), redacted, as JSON."""
    return json.dumps(
        [{"role": m.get("role", "user"), "parts": _parts(m.get("content"))} for m in messages],
        ensure_ascii=False,
    )


def output_messages(text: str, finish_reason: str | None) -> str:
    """`gen_ai.output.messages` for one assistant answer, redacted, as JSON."""
    return json.dumps(
        [{"role": "assistant", "parts": _parts(text), "finish_reason": finish_reason or "stop"}],
        ensure_ascii=False,
    )
