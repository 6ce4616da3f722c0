"""Re-send a stored trace to an OTLP collector (`turnout trace export RUN --otlp URL`)."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from turnout.errors import TurnoutError
from turnout.telemetry._files import SpanRecord, StoredTrace
from turnout.telemetry._setup import otlp_exporter


def _context(trace_id: str, span_id: str) -> SpanContext:
    return SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )


def readable_span(record: SpanRecord) -> ReadableSpan:
    """A stored span as the SDK's exporters expect it."""
    return ReadableSpan(
        name=record.name,
        context=_context(record.trace_id, record.span_id),
        parent=_context(record.trace_id, record.parent_id) if record.parent_id else None,
        resource=Resource(record.resource),
        attributes=record.attributes,
        events=[Event(e.name, e.attributes, e.time_ns) for e in record.events],
        kind=SpanKind[record.kind],
        status=Status(StatusCode[record.status], record.status_message),
        start_time=record.start_ns,
        end_time=record.end_ns,
        instrumentation_scope=InstrumentationScope(record.scope or "turnout"),
    )


def export_trace(trace: StoredTrace, endpoint: str, protocol: str | None = None) -> int:
    """Send every span of `trace` to the collector at `endpoint`; returns how many were sent."""
    exporter = otlp_exporter(endpoint, protocol)
    try:
        result = exporter.export([readable_span(r) for r in trace.spans])
    finally:
        exporter.shutdown()
    if result is not SpanExportResult.SUCCESS:
        raise TurnoutError(
            f"the collector at {endpoint} did not accept run {trace.run_id[:12]}; "
            "check that it is running and speaks OTLP"
        )
    return len(trace.spans)
