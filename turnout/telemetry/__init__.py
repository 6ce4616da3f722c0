"""OpenTelemetry setup, GenAI spans for model calls and graph steps, trace files and viewers.

Library code uses only the OpenTelemetry API; nothing is recorded until `configure()` runs.
"""

from typing import Any

from turnout.telemetry._content import CaptureMode, capture_mode
from turnout.telemetry._calls import CallRecord, read_calls
from turnout.telemetry._files import SpanRecord, StoredTrace, read_trace, trace_files
from turnout.telemetry._manifest import run_context
from turnout.telemetry._redact import redact
from turnout.telemetry._setup import configure, flush, is_configured
from turnout.telemetry._spans import agent_node, agent_span, chat_span, tool_span, traced_tool


def __getattr__(name: str) -> Any:
    # instrument() needs langchain_core (~0.3 s to import): load it when first asked for.
    if name == "instrument":
        from turnout.telemetry._graph import instrument

        return instrument
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CallRecord",
    "CaptureMode",
    "SpanRecord",
    "StoredTrace",
    "agent_node",
    "agent_span",
    "capture_mode",
    "chat_span",
    "configure",
    "flush",
    "instrument",
    "is_configured",
    "read_calls",
    "read_trace",
    "redact",
    "run_context",
    "tool_span",
    "trace_files",
    "traced_tool",
]
