"""configure() in fresh processes, as applications and the CLI use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from turnout.telemetry import read_trace, trace_files

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, cwd: Path, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TURNOUT_"))}
    environment.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_configure_is_idempotent_and_names_the_service(tmp_path: Path) -> None:
    code = (
        "from turnout import telemetry; from opentelemetry import trace\n"
        "a = telemetry.configure(); b = telemetry.configure()\n"
        "print(a is b, trace.get_tracer_provider() is a, a.resource.attributes['service.name'])"
    )
    assert _python(code, tmp_path) == "True True turnout"
    assert _python(code, tmp_path, OTEL_SERVICE_NAME="billing-agents") == "True True billing-agents"


def test_an_application_provider_is_kept_and_gets_the_trace_files(tmp_path: Path) -> None:
    code = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "mine = TracerProvider(); seen = InMemorySpanExporter()\n"
        "mine.add_span_processor(SimpleSpanProcessor(seen)); trace.set_tracer_provider(mine)\n"
        "from turnout import telemetry\n"
        "from turnout.engines import complete_sync, scripted\n"
        "assert telemetry.configure() is mine\n"
        "scripted.register('s', ['ok'])\n"
        "complete_sync('scripted/s', 'hi'); telemetry.flush()\n"
        "print([s.name for s in seen.get_finished_spans()])"
    )
    assert _python(code, tmp_path) == "['chat s']"
    [path] = trace_files(tmp_path / ".turnout" / "traces")
    assert [s.name for s in read_trace(path).spans] == ["chat s"]


def test_trace_files_can_be_moved_or_turned_off(tmp_path: Path) -> None:
    code = (
        "from turnout import telemetry\n"
        "from turnout.engines import complete_sync, scripted\n"
        "telemetry.configure(); scripted.register('s', ['ok'])\n"
        "complete_sync('scripted/s', 'hi'); telemetry.flush(); print('done')"
    )
    _python(code, tmp_path, TURNOUT_TRACES_DIR=str(tmp_path / "elsewhere"))
    assert len(trace_files(tmp_path / "elsewhere")) == 1
    _python(code, tmp_path, TURNOUT_TRACES_DIR="off")
    assert not (tmp_path / ".turnout").exists()


def test_every_cli_run_leaves_a_trace_file(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(["a recorded answer"]))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TURNOUT_"))}
    done = subprocess.run(
        [sys.executable, "-m", "turnout", "ask", "--role", f"scripted/{answers}", "question"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "a recorded answer" in done.stdout
    [path] = trace_files(tmp_path / ".turnout" / "traces")
    [span] = read_trace(path).spans
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["turnout.model"] == f"scripted/{answers}"
