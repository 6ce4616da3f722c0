"""Trace files: one JSONL file per run (per trace) under `.turnout/traces/`, one span a line.

Written by a span exporter, so every run can be read offline; read back tolerantly, so a
file cut short by a killed process still yields every complete span.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from pydantic import BaseModel, Field

logger = logging.getLogger("turnout.telemetry")
TRACE_SUFFIX = ".jsonl"


class SpanEvent(BaseModel):
    name: str
    time_ns: int
    attributes: dict[str, Any] = Field(default_factory=dict)


class SpanRecord(BaseModel):
    """One finished span as stored in a trace file."""

    trace_id: str
    span_id: str
    parent_id: str | None = None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str = "UNSET"
    status_message: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: list[SpanEvent] = Field(default_factory=list)
    resource: dict[str, Any] = Field(default_factory=dict)
    scope: str = ""

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def failed(self) -> bool:
        return self.status == "ERROR"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def span_record(span: ReadableSpan) -> SpanRecord:
    context = span.get_span_context()
    assert context is not None
    return SpanRecord(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_id=f"{span.parent.span_id:016x}" if span.parent else None,
        name=span.name,
        kind=span.kind.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        status=span.status.status_code.name,
        status_message=span.status.description,
        attributes={k: _plain(v) for k, v in (span.attributes or {}).items()},
        events=[
            SpanEvent(
                name=e.name,
                time_ns=e.timestamp,
                attributes={k: _plain(v) for k, v in (e.attributes or {}).items()},
            )
            for e in span.events
        ],
        resource={k: _plain(v) for k, v in span.resource.attributes.items()},
        scope=span.instrumentation_scope.name if span.instrumentation_scope else "",
    )


class TraceFileExporter(SpanExporter):
    """Appends each finished span to `<directory>/<trace id>.jsonl`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._warned = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        by_trace: dict[str, list[str]] = defaultdict(list)
        for span in spans:
            record = span_record(span)
            by_trace[record.trace_id].append(record.model_dump_json(exclude_defaults=True))
        try:
            with self._lock:
                self.directory.mkdir(parents=True, exist_ok=True)
                for trace_id, lines in by_trace.items():
                    with open(self.directory / f"{trace_id}{TRACE_SUFFIX}", "a", encoding="utf-8") as f:
                        f.write("\n".join(lines) + "\n")
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("cannot write trace files to %s: %s", self.directory, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class StoredTrace(BaseModel):
    """A trace file's spans, ordered by start time, and what could not be read."""

    run_id: str
    path: Path
    spans: list[SpanRecord]
    warnings: list[str] = Field(default_factory=list)

    def roots(self) -> list[SpanRecord]:
        ids = {s.span_id for s in self.spans}
        return [s for s in self.spans if s.parent_id is None or s.parent_id not in ids]

    def children(self, span: SpanRecord) -> list[SpanRecord]:
        return [s for s in self.spans if s.parent_id == span.span_id]


def read_trace(path: Path) -> StoredTrace:
    """Every complete span in `path`; a torn or corrupt line ends the read with a warning."""
    spans: list[SpanRecord] = []
    warnings: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                spans.append(SpanRecord.model_validate_json(line))
            except ValueError:
                warnings.append(
                    f"{path.name}: line {number} is incomplete or corrupt; "
                    f"read the {len(spans)} span(s) before it"
                )
                logger.warning(warnings[-1])
                break
    spans.sort(key=lambda s: s.start_ns)
    return StoredTrace(run_id=path.stem, path=path, spans=spans, warnings=warnings)


def trace_files(directory: Path) -> list[Path]:
    """Trace files, newest first."""
    if not directory.is_dir():
        return []
    files = [p for p in directory.glob(f"*{TRACE_SUFFIX}") if p.is_file()]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)
