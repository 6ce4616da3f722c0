"""`configure()`: the one place turnout touches the OpenTelemetry SDK.

Library code uses only the API, so nothing is recorded until `configure()` runs (the CLI
calls it for every command). It installs a TracerProvider once per process — or, when the
application already installed an SDK provider, adds turnout's trace files to that one.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from turnout.telemetry._files import TraceFileExporter

logger = logging.getLogger("turnout.telemetry")
DEFAULT_SERVICE_NAME = "turnout"
_OTLP_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)

_lock = threading.Lock()
_provider: TracerProvider | None = None
_processors: list[SpanProcessor] = []


class _WarnOnce(SpanExporter):
    """Wraps a network exporter: a failing collector is reported once, never raised."""

    def __init__(self, inner: SpanExporter, where: str) -> None:
        self.inner = inner
        self.where = where
        self.warned = False

    def export(self, spans: Any) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # an exporter must never break the program it observes
            result = SpanExportResult.FAILURE
            reason = str(exc)
        else:
            reason = "the collector did not accept the spans"
        if result is SpanExportResult.FAILURE and not self.warned:
            self.warned = True
            logger.warning(
                "OTLP export to %s failed (%s); spans are still in the trace files", self.where, reason
            )
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _FirstOnly(logging.Filter):
    """Lets one record through per logger: the OTLP exporters log every retry."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.seen:
            return False
        self.seen = True
        return True


def otlp_endpoint() -> str | None:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def otlp_exporter(endpoint: str | None = None, protocol: str | None = None) -> SpanExporter:
    """An OTLP span exporter for the standard `OTEL_EXPORTER_OTLP_*` variables (or `endpoint`)."""
    protocol = (
        protocol
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ImportError(
                "OTLP over gRPC needs opentelemetry-exporter-otlp-proto-grpc: "
                "pip install 'turnout[grpc]' (or use OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)"
            ) from None
        return OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    if endpoint and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return HttpExporter(endpoint=endpoint) if endpoint else HttpExporter()


def configure(
    *,
    traces_dir: Path | None | bool = True,
    console: bool | None = None,
    otlp: bool | None = None,
    service_name: str | None = None,
    exporters: tuple[SpanExporter, ...] = (),
) -> TracerProvider:
    """Start recording traces; safe to call any number of times (the first call wins).

    traces_dir: a directory, True for the configured one (`.turnout/traces`), or
    False/None for no trace files. console: print spans (default from config).
    otlp: send to OTLP (default: when `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set).
    exporters: more exporters of your own (each behind a batch processor).
    """
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        from turnout.config import get_settings

        settings = get_settings()
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current  # the application's own: add to it, never replace it
        else:
            name = os.environ.get("OTEL_SERVICE_NAME") or service_name or DEFAULT_SERVICE_NAME
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
        directory = settings.traces_path if traces_dir is True else (traces_dir or None)
        wanted: list[SpanExporter] = list(exporters)
        if directory is not None:
            wanted.append(TraceFileExporter(Path(directory).resolve()))
        if console if console is not None else settings.trace_console:
            wanted.append(ConsoleSpanExporter())
        endpoint = otlp_endpoint()
        if (otlp if otlp is not None else endpoint is not None) and provider is not current:
            wanted.append(_WarnOnce(otlp_exporter(), endpoint or "the default OTLP endpoint"))
            for name in _OTLP_LOGGERS:
                logging.getLogger(name).addFilter(_FirstOnly())
        for exporter in wanted:
            processor = BatchSpanProcessor(exporter)
            provider.add_span_processor(processor)
            _processors.append(processor)
        if provider is not current:
            trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def flush(timeout_ms: int = 10_000) -> None:
    """Export every finished span now (the CLI calls this at the end of each command)."""
    for processor in list(_processors):
        try:
            processor.force_flush(timeout_ms)
        except Exception:  # never break the program over telemetry
            logger.debug("flushing a span processor failed", exc_info=True)


def is_configured() -> bool:
    return _provider is not None
