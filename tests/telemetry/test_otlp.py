"""Spans reach a real OTLP collector on loopback: live from a run, and re-sent from a file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.telemetry.otlp_receiver import otlp_receiver
from turnout.cli import app
from turnout.telemetry import read_trace, trace_files

ROOT = Path(__file__).resolve().parents[2]


def _run_graph(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tests.telemetry.run_traced_graph"],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=120,
    )


def test_a_run_streams_its_spans_to_an_otlp_collector(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        done = _run_graph(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SERVICE_NAME="my-agents")
        assert done.returncode == 0, done.stderr
    assert set(receiver.paths) == {"/v1/traces"}
    names = sorted(s.name for s in receiver.spans)
    assert names.count("research") == 3 and names.count("chat worker") == 3
    assert "invoke_workflow demo" in names and "invoke_agent summarizer" in names
    assert {s.resource["service.name"] for s in receiver.spans} == {"my-agents"}
    by_id = {s.span_id: s for s in receiver.spans}
    chat = next(s for s in receiver.spans if s.name == "chat planner")
    assert by_id[chat.parent_id].name == "plan"
    assert chat.attributes["gen_ai.usage.output_tokens"] == 1
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    # …and the same run is on disk, span for span.
    [path] = trace_files(tmp_path / ".turnout" / "traces")
    assert sorted(s.name for s in read_trace(path).spans) == names


def test_an_unreachable_collector_warns_once_and_never_fails_the_run(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    done = _run_graph(
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port}",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
    )
    assert done.returncode == 0, done.stderr
    assert "run finished" in done.stdout
    assert done.stderr.count("OTLP export to") == 1, done.stderr
    assert len(trace_files(tmp_path / ".turnout" / "traces")) == 1


def test_trace_export_resends_a_stored_run_intact(tmp_path: Path, spans: Any) -> None:
    from tests.telemetry.test_cli_trace import record_demo_run

    traces = record_demo_run(tmp_path, spans)
    [path] = trace_files(traces)
    stored = read_trace(path)
    with otlp_receiver() as receiver:
        result = CliRunner().invoke(app, ["trace", "export", path.stem[:8], "--otlp", receiver.url, "--dir", str(traces)])
        assert result.exit_code == 0, result.output
    assert f"sent {len(stored.spans)} spans" in result.stdout
    received = {s.span_id: s for s in receiver.spans}
    for span in stored.spans:
        got = received[span.span_id]
        assert (got.trace_id, got.parent_id, got.name) == (span.trace_id, span.parent_id, span.name)
        assert got.attributes == span.attributes


def test_export_to_a_dead_collector_is_a_clear_error(tmp_path: Path, spans: Any) -> None:
    from tests.telemetry.test_cli_trace import record_demo_run

    traces = record_demo_run(tmp_path, spans)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = CliRunner().invoke(
        app, ["trace", "export", trace_files(traces)[0].stem, "--otlp", f"http://127.0.0.1:{closed}", "--dir", str(traces)],
        env={"OTEL_EXPORTER_OTLP_TIMEOUT": "1", "COLUMNS": "300"},
    )
    assert result.exit_code == 1
    assert "did not accept run" in result.stderr
